"""core.compiled: a queryset compiled once gives what the queryset itself gives, call after call,
with its related objects, deferred fields, annotations and database conversions."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from core.compiled import CompiledQuery, Ids
from inventory.models import Vial
from inventory.selectors import _scan_vials
from tests.factories import LotFactory, VialFactory

pytestmark = pytest.mark.django_db

by_serial = CompiledQuery(lambda gtin, serial: _scan_vials().filter(presentation__gtin=gtin, serial=serial)[:1], str, str)
by_pk = CompiledQuery(lambda pk: Vial.objects.select_related("lot", "location").filter(pk=pk).order_by(), int)


def fields_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields
            if f.attname not in obj.get_deferred_fields()}


def same_tree(compiled, orm) -> None:
    assert type(compiled) is type(orm)
    assert fields_of(compiled) == fields_of(orm)
    assert {k: type(v) for k, v in fields_of(compiled).items()} == {k: type(v) for k, v in fields_of(orm).items()}
    assert compiled.get_deferred_fields() == orm.get_deferred_fields()
    assert compiled._state.adding is False and compiled._state.db == orm._state.db


def test_a_compiled_read_gives_the_querysets_rows_with_their_related_objects_loaded():
    vials = [VialFactory(), VialFactory(location=None, status=Vial.Status.DISPENSED), VialFactory(serial="O'Brien %s")]
    for vial in vials * 2:  # the second round runs the kept SQL only
        [orm] = _scan_vials().filter(presentation__gtin=vial.presentation.gtin, serial=vial.serial)[:1]
        with CaptureQueriesContext(connection) as queries:
            [compiled] = by_serial(vial.presentation.gtin, vial.serial)
            same_tree(compiled, orm)
            same_tree(compiled.presentation, orm.presentation)
            same_tree(compiled.presentation.product, orm.presentation.product)
            same_tree(compiled.presentation.product.manufacturer, orm.presentation.product.manufacturer)
            same_tree(compiled.lot, orm.lot)
            assert compiled.location_id == vial.location_id
            if vial.location_id is None:
                assert compiled.location is None
            else:
                same_tree(compiled.location, orm.location)
        assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
        # The product's notes stay deferred, as in the queryset, and are read when asked for.
        assert "storage_notes" in compiled.presentation.product.get_deferred_fields()


def test_each_call_takes_its_own_values_and_finds_nothing_where_nothing_matches():
    first, second = VialFactory(), VialFactory()
    assert by_serial(first.presentation.gtin, first.serial)[0].pk == first.pk
    assert by_serial(second.presentation.gtin, second.serial)[0].pk == second.pk
    assert by_serial(first.presentation.gtin, second.serial) == []
    assert by_pk.get(second.pk).pk == second.pk
    with pytest.raises(Vial.DoesNotExist):
        by_pk.get(second.pk + 1000)


def test_a_value_used_twice_and_annotations_come_back_as_the_queryset_gives_them():
    lot = LotFactory()
    VialFactory.create_batch(2, lot=lot, presentation__product=lot.product)
    twice = CompiledQuery(
        lambda number: lot.__class__.objects.filter(lot_number=number, product__lots__lot_number=number)
        .annotate(vials_count=Count("vials", distinct=True), doubled=F("pk") * 2).order_by("pk"),
        str,
    )
    [found] = twice(lot.lot_number)
    assert (found.pk, found.vials_count, found.doubled) == (lot.pk, 2, lot.pk * 2)
    assert twice("NO-SUCH-LOT") == []


def test_it_refuses_values_of_another_type_or_number_and_a_builder_that_drops_a_value():
    with pytest.raises(TypeError):
        by_pk("1")
    with pytest.raises(TypeError):
        by_serial("0123")
    with pytest.raises(TypeError):
        CompiledQuery(lambda when: Vial.objects.all(), float)(1.5)
    with pytest.raises(ValueError, match="does not reach the SQL"):
        CompiledQuery(lambda serial: Vial.objects.all(), str)("SN1")


def test_in_ids_selects_what_in_selects_with_one_parameter_however_many_ids():
    vials = VialFactory.create_batch(4)
    pks = [v.pk for v in vials]
    for wanted in ([], [pks[0]], pks[1:3], pks + [pks[0], 10**9]):
        assert sorted(Vial.objects.filter(pk__in_ids=wanted).values_list("pk", flat=True)) == sorted(
            Vial.objects.filter(pk__in=wanted).values_list("pk", flat=True)
        )
    # A foreign key takes it too (Django keeps the lookups of relations apart).
    assert set(Vial.objects.filter(lot_id__in_ids=[vials[0].lot_id]).values_list("pk", flat=True)) == {pks[0]}
    few, many = (Vial.objects.filter(pk__in_ids=ids).query.sql_with_params() for ids in ([1], pks))
    assert few[0] == many[0] and len(few[1]) == len(many[1]) == 1
    for bad in ("1,2", [1, "2"], [1.0], [True], None):
        with pytest.raises(TypeError):
            Vial.objects.filter(pk__in_ids=bad).count()


def test_a_compiled_read_by_ids_takes_any_number_of_ids_in_one_query():
    vials = VialFactory.create_batch(3)
    pks = [v.pk for v in vials]
    by_ids = CompiledQuery(lambda ids: Vial.objects.select_related("lot").filter(pk__in_ids=ids).order_by("pk"), Ids)
    for wanted in (pks, pks[:1], (pks[2], pks[0]), [], [10**9]):
        with CaptureQueriesContext(connection) as queries:
            found = by_ids(wanted)
        assert [v.pk for v in found] == sorted(pk for pk in wanted if pk in pks)
        assert all(v.lot.pk == v.lot_id for v in found) and len(queries) == 1
    for bad in ([1, "2"], "12", 3, [1.5]):
        with pytest.raises(TypeError):
            by_ids(bad)


@pytest.mark.django_db(transaction=True)
def test_a_compiled_row_lock_outside_a_transaction_fails_where_the_orms_does():
    vial = VialFactory()
    locked = CompiledQuery(lambda pk: Vial.objects.select_for_update().filter(pk=pk).order_by(), int)
    with transaction.atomic():
        locked.get(vial.pk)
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            list(Vial.objects.select_for_update().filter(pk=vial.pk))
        with pytest.raises(TransactionManagementError):
            locked.get(vial.pk)
    else:  # SQLite: both ignore the lock
        assert list(Vial.objects.select_for_update().filter(pk=vial.pk))[0].pk == locked.get(vial.pk).pk


def _prepared(sql: str) -> bool:
    """Whether this connection holds `sql` (Django's %s placeholders) as a prepared statement."""
    numbered = iter(range(1, 100))
    statement = re.sub("%s", lambda _: f"${next(numbered)}", sql)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = %s", [statement])
        return cursor.fetchone()[0] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_on_postgresql_a_compiled_read_is_prepared_from_its_third_run_and_logged_with_its_values():
    vial = VialFactory()
    read = CompiledQuery(lambda pk: Vial.objects.filter(pk=pk, serial__startswith="SN").order_by(), int)
    with CaptureQueriesContext(connection) as queries:
        for run in range(4):
            assert read.get(vial.pk).pk == vial.pk
            assert _prepared(read._compiled.sql) == (run >= 2)
    # Logged as Django logs any query: the SQL with its values.
    reads = [q["sql"] for q in queries.captured_queries if "pg_prepared_statements" not in q["sql"]]
    assert len(reads) == 4 and all(f'"id" = {vial.pk}' in sql and "%s" not in sql for sql in reads)


def test_prepared_statements_can_be_turned_off_for_a_connection_pooler():
    code = ("import django, json; django.setup(); from django.conf import settings; "
            "o = settings.DATABASES['default']['OPTIONS']; "
            "print(json.dumps([o.get('server_side_binding'), o.get('prepare_threshold')]))")

    def options(**env) -> list:
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1",
                       "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", **env}
        done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                              cwd=settings.BASE_DIR, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert options() == [True, 2]
    assert options(PG_PREPARED_STATEMENTS="0") == [None, None]
