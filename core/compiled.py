"""A queryset compiled to SQL once and run again with new values.

The busiest reads of the day (the scan's vial, the dispense's locked rows, the API token) are a
few-table `select_related` query by one or two values. Building and compiling that queryset costs
the ORM more Python than the database takes to answer it (about 0.8 ms of a 1.2 ms read of the
scan's vial), every time, for the same SQL. `CompiledQuery` builds it once with marker values, keeps
the SQL and how its columns map onto model instances, and from then on only runs the SQL with the
call's values: the same rows, the same converters (SQLite's dates and decimals), the same related
objects and annotations as the queryset's own iteration gives. On PostgreSQL the same SQL text each
time also lets the connection prepare it (config/settings.py): it is then planned once per connection.

Note: this follows Django's `ModelIterable` (django/db/models/query.py, Django 5.2), whose pieces
it uses; tests compare it with the queryset it replaces, field by field, on both databases.

What the builder is given is the only thing that varies: anything else it reads (the clock, a
setting) is fixed at the first call. A builder takes strings, integers and lists of ids (`Ids`,
for `field__in_ids=ids`: one parameter however many ids, so a page of 5 and of 50 share one SQL).
"""

import json
from collections.abc import Callable, Sequence
from itertools import count

from django.db import connections
from django.db.models import Field, Lookup, Model, QuerySet
from django.db.models.fields.related import ForeignObject
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

_markers = count(1)


class Ids(list):
    """A list of integer ids, the CompiledQuery kind for `field__in_ids=ids` (see InIds): the
    builder is given an `Ids`, each call a list or tuple of ints."""

    @staticmethod
    def param(vendor: str, ids: list[int]):
        return list(ids) if vendor == "postgresql" else json.dumps(list(ids))


class InIds(Lookup):
    """`field__in_ids=[1, 2, 3]`: `field IN (1, 2, 3)` with the ids as one parameter, so the SQL
    text is the same however many there are: `= ANY(%s)` on PostgreSQL (an index scan, as IN
    gives), `IN (SELECT value FROM json_each(%s))` on SQLite."""

    lookup_name = "in_ids"
    prepare_rhs = False

    def get_prep_lookup(self):
        return _checked_ids(self.rhs)

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        param = Ids.param(connection.vendor, self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, param]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, param]


# Fields and foreign keys (whose lookups Django keeps apart) both take it.
Field.register_lookup(InIds)
ForeignObject.register_lookup(InIds)


def _checked_ids(ids) -> list[int]:
    if not isinstance(ids, (list, tuple)) or any(type(i) is not int for i in ids):
        raise TypeError(f"Ids are a list or tuple of int, not {ids!r}")
    return list(ids)


def _marker(kind: type):
    """A value no real call passes, of the type a field's lookup expects."""
    number = next(_markers)
    if kind is int:
        return -(2**62) - number
    if kind is str:
        return f"\x00compiled-{number}\x00"
    if kind is Ids:
        return Ids([-(2**62) - number])  # a list that holds one marker id
    raise TypeError(f"CompiledQuery values are str, int or Ids, not {kind.__name__}")


def _param(marker, vendor: str):
    """How the marker reaches the query's parameters."""
    return Ids.param(vendor, marker) if type(marker) is Ids else marker


def _populate(populator, row, from_obj, shared: dict | None) -> None:
    """Django's RelatedPopulator.populate (Django 5.2), except that a related row of a model in
    `shared` is built once per call: the rows that name the same product share one instance."""
    if populator.reorder_for_init:
        obj_data = populator.reorder_for_init(row)
    else:
        obj_data = row[populator.cols_start : populator.cols_end]
    pk = obj_data[populator.pk_idx]
    if pk is None:
        obj = None
    else:
        key = (populator.share_key, pk) if shared is not None and populator.share_key is not None else None
        obj = shared.get(key) if key is not None else None
        if obj is None:
            obj = populator.model_cls.from_db(populator.db, populator.init_list, obj_data)
            for related in populator.related_populators:
                _populate(related, row, obj, shared)
            if key is not None:
                shared[key] = obj
    populator.local_setter(from_obj, obj)
    if obj is not None:
        populator.remote_setter(obj, from_obj)


def _mark_shared(populators, models: tuple) -> None:
    for populator in populators:
        # Shared along one path of the query (every row's vial → presentation → product), never
        # across two paths to the same model, which may load different fields and relations.
        populator.share_key = id(populator) if populator.model_cls in models else None
        _mark_shared(populator.related_populators, models)


class _Compiled:
    def __init__(self, queryset: QuerySet, markers: tuple, db: str, shared: tuple = ()) -> None:
        self.db = db
        self.vendor = vendor = connections[db].vendor
        compiler = queryset.query.get_compiler(using=db)
        self.sql, params = compiler.as_sql()
        # Where each value goes among the query's parameters (a value may be used more than once).
        self.params = list(params)
        self.slots = []
        self.lists = [type(marker) is Ids for marker in markers]
        for position, marker in enumerate(markers):
            marker = _param(marker, vendor)
            found = [i for i, p in enumerate(params) if type(p) is type(marker) and p == marker]
            if not found:
                raise ValueError(f"CompiledQuery: value {position} does not reach the SQL as it was given")
            self.slots.append(found)
        select, klass_info = compiler.select, compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, db)
        self.shared = bool(shared)
        _mark_shared(self.populators, shared)
        self.annotations = list(compiler.annotation_col_map.items())
        self.compiler = compiler
        # As the ORM: a database without row locks (SQLite) ignores select_for_update.
        self.locks = bool(queryset.query.select_for_update) and connections[db].features.has_select_for_update
        self.converters = compiler.get_converters([s[0] for s in select[: compiler.col_count]])

    def rows(self, values: tuple) -> list[Model]:
        db = self.db
        if self.locks and connections[db].get_autocommit():
            # As the ORM refuses it: a row lock outside a transaction would be let go at once.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(self.params)
        for slots, value, is_list in zip(self.slots, values, self.lists):
            if is_list:
                value = Ids.param(self.vendor, list(value))
            for i in slots:
                params[i] = value
        with connections[db].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        found = []
        shared = {} if self.shared else None
        for row in rows:
            obj = self.model.from_db(db, self.init_list, row[self.start : self.end])
            for populator in self.populators:
                _populate(populator, row, obj, shared)
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            found.append(obj)
        return found


class CompiledQuery:
    """`CompiledQuery(build, str, int)`: `build(a, b)` returns the queryset (sliced if it should be
    limited); calling the CompiledQuery with values returns the list of instances that queryset with
    those values would give, built from SQL compiled once (the project has one database).

    `shared=(Product, …)`: the rows of one call that reach the same row of these related models
    share one instance of it (built once, not once per row), for reads of many rows that name a
    few catalog rows; only for instances the caller reads and does not change."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type, shared: tuple = ()) -> None:
        self.build, self.kinds, self.shared = build, kinds, shared
        self._compiled: _Compiled | None = None

    def __call__(self, *values) -> list[Model]:
        if len(values) != len(self.kinds):
            raise TypeError(f"CompiledQuery takes {len(self.kinds)} values, {len(values)} given")
        for value, kind in zip(values, self.kinds):
            if kind is Ids:
                _checked_ids(value)
            elif type(value) is not kind:
                raise TypeError(f"CompiledQuery value {value!r} is not {kind.__name__}")
        if self._compiled is None:
            markers = tuple(_marker(kind) for kind in self.kinds)
            queryset = self.build(*markers)
            self._compiled = _Compiled(queryset, markers, queryset.db, self.shared)
        return self._compiled.rows(values)

    def get(self, *values) -> Model:
        """The one instance, refused as `QuerySet.get()` refuses none or several."""
        found = self(*values)
        if len(found) == 1:
            return found[0]
        model = self._compiled.model
        if not found:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}.")
