"""Recalls recorded before schemes existed stay valid: FDA, with their class and no deadline."""

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("recalls", "0002_tables_renamed")]


def test_recalls_from_before_the_schemes_become_fda_recalls_of_the_same_class():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="before")
    Recall = old.get_model("recalls", "Recall")
    for reference, recall_class in (("OLD-1", "I"), ("OLD-2", "II"), ("OLD-3", "III")):
        Recall.objects.create(reference=reference, source="regulator", recall_class=recall_class, reason="x",
                              recall_date=date(2025, 1, 2), created_by=user)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from recalls.models import Recall as Current

    rows = list(Current.objects.order_by("reference").values_list("reference", "scheme", "recall_class", "action_due"))
    assert rows == [("OLD-1", "fda", "I", None), ("OLD-2", "fda", "II", None), ("OLD-3", "fda", "III", None)]
    assert [r.class_text for r in Current.objects.order_by("reference")][1] == (
        "FDA class II: temporary or medically reversible harm possible"
    )
