"""session_queryset(): every fetch gives each session its dispenses, flags and reactions as lists,
read by compiled queries, the same rows and related objects Django's own prefetch gives."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.sessions import SessionOut
from inventory.selectors import without_product_notes
from tests.factories import (
    AdverseReactionFactory,
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    PatientFactory,
    PresentationFactory,
    UserFactory,
)
from tests.core.test_compiled import same_tree
from traceability.models import BrandSwitchFlag, InfusionSession
from traceability.selectors import dispense_queryset, patient_history, reaction_queryset, session_queryset

pytestmark = pytest.mark.django_db


def prefetched() -> list[InfusionSession]:
    """The sessions as Django's prefetch_related gives them, for comparison."""
    flags = without_product_notes(
        BrandSwitchFlag.objects.select_related("from_product__manufacturer", "to_product__manufacturer", "acknowledged_by"),
        "from_product", "to_product",
    )
    return list(
        InfusionSession.objects.select_related("patient", "authorisation").prefetch_related(
            Prefetch("dispenses", queryset=dispense_queryset().order_by("dispensed_at", "id"), to_attr="dispense_list"),
            Prefetch("flags", queryset=flags.order_by("raised_at", "id"), to_attr="flag_list"),
            Prefetch("reactions", queryset=reaction_queryset().order_by("onset_at", "id"), to_attr="reaction_list"),
        ).order_by("pk")
    )


@pytest.fixture
def sessions():
    now = timezone.now()
    patient = PatientFactory()
    busy, quiet, other = (InfusionSessionFactory(patient=patient) for _ in range(3))
    # Written out of order: each list is oldest first, then by id. Three vials of one presentation
    # by one technician (the rows share those instances), one of another.
    presentation, technician = PresentationFactory(), UserFactory()
    for minutes in (30, 5, 5):
        DispenseFactory(session=busy, dispensed_at=now - timedelta(minutes=minutes), dispensed_by=technician,
                        vial__presentation=presentation)
    DispenseFactory(session=busy, dispensed_at=now - timedelta(minutes=60))
    DispenseFactory(session=other)
    BrandSwitchFlagFactory(session=busy)
    BrandSwitchFlagFactory(session=busy)
    AdverseReactionFactory(session=busy, onset_at=now)
    AdverseReactionFactory(session=busy, onset_at=now - timedelta(hours=1))
    AdverseReactionFactory(session=other)
    return busy, quiet, other


def test_the_lists_hold_the_rows_and_related_objects_djangos_prefetch_gives(sessions):
    ours, theirs = list(session_queryset().order_by("pk")), prefetched()
    assert [s.pk for s in ours] == [s.pk for s in theirs]
    assert [len(s.dispense_list) for s in ours] == [4, 0, 1]
    for mine, expected in zip(ours, theirs):
        with CaptureQueriesContext(connection) as queries:
            for attr in ("dispense_list", "flag_list", "reaction_list"):
                assert [r.pk for r in getattr(mine, attr)] == [r.pk for r in getattr(expected, attr)]
                for row, other in zip(getattr(mine, attr), getattr(expected, attr)):
                    same_tree(row, other)
                    assert row.session is mine  # pointing back at its session, as a prefetch leaves it
            for row, other in zip(mine.dispense_list, expected.dispense_list):
                for path in ("vial", "vial.lot", "vial.presentation", "vial.presentation.product", "product",
                             "product.manufacturer", "dispensed_by"):
                    a, b = row, other
                    for name in path.split("."):
                        a, b = getattr(a, name), getattr(b, name)
                    same_tree(a, b)
            for row, other in zip(mine.flag_list, expected.flag_list):
                same_tree(row.from_product.manufacturer, other.from_product.manufacturer)
        assert len(queries) == 0, [q["sql"] for q in queries.captured_queries]
        assert SessionOut(mine).data == SessionOut(expected).data
    # The rows that name one presentation share its instance along each path, not across paths.
    busy = ours[0]
    same = [d for d in busy.dispense_list if d.dispensed_by_id == busy.dispense_list[-1].dispensed_by_id]
    assert len(same) == 3
    assert len({id(d.vial.presentation) for d in same}) == 1 and len({id(d.dispensed_by) for d in same}) == 1
    assert len({id(d.vial) for d in same}) == 3
    assert same[0].product is not same[0].vial.presentation.product  # two paths: two instances


def test_four_queries_for_a_page_of_any_length_and_every_way_of_fetching_gives_the_lists(sessions):
    busy, quiet, other = sessions
    for pks in ([busy.pk], [busy.pk, quiet.pk, other.pk]):
        with CaptureQueriesContext(connection) as queries:
            found = session_queryset().in_bulk(pks)
        assert len(queries) == 4 and set(found) == set(pks)
        assert all(hasattr(s, "dispense_list") for s in found.values())
    assert len(session_queryset().get(pk=busy.pk).dispense_list) == 4
    assert [len(s.reaction_list) for s in patient_history(busy.patient)[:2]] == [1, 0]  # newest first: other, quiet
    assert session_queryset().filter(pk=quiet.pk)[0].flag_list == []
    # Rows that are not sessions get no lists, and cost no further query.
    with CaptureQueriesContext(connection) as queries:
        assert sorted(session_queryset().values_list("pk", flat=True)) == sorted(s.pk for s in sessions)
        assert session_queryset().count() == 3
    assert len(queries) == 2
    assert session_queryset().filter(pk=-1).first() is None
