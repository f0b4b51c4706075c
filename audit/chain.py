"""Tamper evidence for the change history and the access log: seals, checkpoints, verification.

Seals. Every history row gets a seal in the transaction that wrote it: `content`, an HMAC of the
row's values, and `digest`, an HMAC over where the row sits (table, row id, object id), its content
and the digest of the previous row of the same object. A row edited with SQL no longer matches its
content; rows swapped no longer match their places; a row removed from the middle of an object's
history breaks the next row's link. Each object has its own chain, so the previous digest is read
under the row lock the service already holds on the object: two writes to different objects never
wait on each other (one chain over all rows would serialise every write in the pharmacy).

Checkpoints (audit.services.checkpoint_create) fix every seal since the previous checkpoint in a
Merkle tree (RFC 6962's tree hash, as Certificate Transparency's signed tree heads do), so a row
deleted with its seal, or a seal moved, is caught too.

The HMAC key is settings.AUDIT_SEAL_KEY: the database does not hold it, so whoever can write SQL
cannot forge seals. verify_history() walks the chains and the checkpoints and reports what differs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from functools import lru_cache

from django.apps import apps
from django.conf import settings
from django.db import connections, models
from django.utils import timezone

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


# --- Keys and canonical content ------------------------------------------------------------------


def seal_key() -> bytes:
    return _key(getattr(settings, "AUDIT_SEAL_KEY", "") or "", settings.SECRET_KEY)


@lru_cache(maxsize=4)
def _key(own: str, secret: str) -> bytes:
    if own:
        return own.encode()
    # Derived from SECRET_KEY when no key of its own is set (see README: set one in production).
    return hmac.new(secret.encode(), b"ivig-audit-seal", hashlib.sha256).digest()


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _normaliser(f: models.Field):
    """How one field's value is written into the sealed content, the same whether it comes from the
    object being saved (Python values as assigned) or from the database later."""
    target = f.target_field if f.is_relation else f
    if isinstance(target, models.DateTimeField):

        def norm(value):
            value = target.to_python(value)
            if timezone.is_naive(value):
                value = timezone.make_aware(value, UTC)
            return value.astimezone(UTC).isoformat(timespec="microseconds")

    elif isinstance(target, models.DateField):

        def norm(value):
            value = target.to_python(value)
            return value.isoformat()

    elif isinstance(target, models.DecimalField):
        exponent = Decimal(1).scaleb(-(target.decimal_places or 0))

        def norm(value):
            return str(Decimal(target.to_python(value)).quantize(exponent))

    elif isinstance(target, models.BooleanField):
        norm = bool
    elif isinstance(target, models.JSONField):

        def norm(value):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

    elif isinstance(target, (models.IntegerField, models.AutoField)):
        norm = int
    elif isinstance(target, models.FileField):

        def norm(value):
            return _text(getattr(value, "name", value))

    else:
        norm = _text
    return norm


@dataclass(frozen=True)
class Canon:
    """How rows of one sealed table are put into bytes: which fields, in which order."""

    model: type[models.Model]
    source: str
    pk: str  # the row id column (history_id, or id for the access log)
    object: str  # the object id column (id for history rows, the row's own id for the access log)
    attnames: tuple[str, ...]
    normalisers: tuple = field(repr=False)
    schema: str = ""

    def content(self, key: bytes, values: Iterable) -> str:
        parts = [None if v is None else n(v) for n, v in zip(self.normalisers, values)]
        return _mac(key, json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode())

    def content_of(self, key: bytes, obj) -> str:
        return self.content(key, (getattr(obj, name) for name in self.attnames))


def schema_key(source: str, attnames: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps([source, list(attnames)]).encode()).hexdigest()[:16]


def _canon(model: type[models.Model], attnames: Iterable[str] | None = None, *, history: bool | None = None) -> Canon:
    meta = model._meta
    if history is None:
        history = hasattr(model, "instance_type")
    pk = meta.pk.attname
    by_name = {f.attname: f for f in meta.concrete_fields}
    if attnames is None:
        attnames = sorted(name for name in by_name if name != pk)
    attnames = tuple(attnames)
    source = f"{meta.app_label}.{meta.model_name}"
    return Canon(
        model=model,
        source=source,
        pk=pk,
        object="id" if history else pk,
        attnames=attnames,
        normalisers=tuple(_normaliser(by_name[name]) for name in attnames),
        schema=schema_key(source, attnames),
    )


@lru_cache(maxsize=None)
def canon_for(model: type[models.Model]) -> Canon:
    return _canon(model)


def sealed_models() -> list[type[models.Model]]:
    """Every table whose rows are sealed: each history table, and the access log of patient data."""
    from audit.models import PatientAccess

    tables = [
        model
        for model in apps.get_models()
        if hasattr(model, "instance_type") and hasattr(model.instance_type._meta, "simple_history_manager_attribute")
    ]
    return sorted(tables, key=lambda m: m._meta.label_lower) + [PatientAccess]


def record_schemas(using: str = "default", **kwargs) -> None:
    """Keep the current field list of every sealed table (post_migrate), for rows sealed before a
    field is added or removed."""
    from audit.models import SealSchema

    for model in sealed_models():
        canon = canon_for(model)
        SealSchema.objects.using(using).get_or_create(
            key=canon.schema, defaults={"source": canon.source, "fields": list(canon.attnames)}
        )


# --- Sealing -------------------------------------------------------------------------------------


def link(key: bytes, source: str, row_id: int, object_id: int, schema: str, content: str, previous: str) -> str:
    return _mac(key, f"{source}\n{row_id}\n{object_id}\n{schema}\n{content}\n{previous}".encode())


def _seal_table() -> str:
    return connections["default"].ops.quote_name("audit_seal")


def _latest_digests_of(using: str, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The digest of the newest sealed row of each (source, object id), for a few objects of
    several tables, in one statement."""
    table = _seal_table()
    select = f"(SELECT digest FROM {table} WHERE source = %s AND object_id = %s ORDER BY row_id DESC LIMIT 1)"
    sql = " UNION ALL ".join(f"SELECT {n} AS n, {select} AS digest" for n in range(len(pairs)))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [v for pair in pairs for v in pair])
        found = dict(cursor.fetchall())
    return {pair: found[n] for n, pair in enumerate(pairs) if found.get(n) is not None}


def _latest_digests(using: str, source: str, object_ids: list[int]) -> dict[int, str]:
    """The digest of the newest sealed row of each object (one query per 500 objects)."""
    table = _seal_table()
    found: dict[int, str] = {}
    with connections[using].cursor() as cursor:
        if len(object_ids) == 1:
            cursor.execute(
                f"SELECT digest FROM {table} WHERE source = %s AND object_id = %s ORDER BY row_id DESC LIMIT 1",
                [source, object_ids[0]],
            )
            row = cursor.fetchone()
            return {object_ids[0]: row[0]} if row else {}
        for start in range(0, len(object_ids), 500):
            chunk = object_ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT s.object_id, s.digest FROM {table} s WHERE s.source = %s AND s.row_id IN ("
                f"SELECT MAX(row_id) FROM {table} WHERE source = %s AND object_id IN ({marks}) GROUP BY object_id)",
                [source, source, *chunk],
            )
            found.update(cursor.fetchall())
    return found


def seal_rows(model: type[models.Model], rows: list, *, using: str = "default") -> None:
    """Seal rows just written to `model` (history rows, or access-log rows), in the caller's
    transaction. The caller holds the lock of each object whose history grows (the services do),
    so the newest digest read here is still the newest when the seal is written."""
    if not rows:
        return
    canon = canon_for(model)
    key = seal_key()
    # A history row that creates its object starts a chain; any other continues one.
    continuing = sorted(
        {getattr(row, canon.object) for row in rows if getattr(row, "history_type", "+") != "+"}
        if canon.object != canon.pk
        else set()
    )
    latest = _latest_digests(using, canon.source, continuing) if continuing else {}
    values = []
    for row in rows:
        row_id = getattr(row, canon.pk)
        object_id = getattr(row, canon.object)
        content = canon.content_of(key, row)
        previous = latest.get(object_id, "") if canon.object != canon.pk else ""
        digest = link(key, canon.source, row_id, object_id, canon.schema, content, previous)
        if canon.object != canon.pk:
            latest[object_id] = digest
        values.append((canon.source, row_id, object_id, canon.schema, content, previous, digest))
    _insert_seals(values, using=using)


def seal_batch(rows: list[tuple[type[models.Model], object]], *, using: str = "default") -> None:
    """Seal the history rows of several tables written in one transaction (a history_batch()),
    in the order they were written: one statement reads the newest digest of every object whose
    chain they continue, one writes all the seals. The same seals as seal_rows() row by row."""
    if not rows:
        return
    key = seal_key()
    canons = {model: canon_for(model) for model, _ in rows}
    continuing = sorted({
        (canons[model].source, getattr(row, canons[model].object))
        for model, row in rows
        if canons[model].object != canons[model].pk and getattr(row, "history_type", "+") != "+"
    })
    latest = _latest_digests_of(using, continuing) if continuing else {}
    values = []
    for model, row in rows:
        canon = canons[model]
        row_id = getattr(row, canon.pk)
        object_id = getattr(row, canon.object)
        content = canon.content_of(key, row)
        chained = canon.object != canon.pk
        previous = latest.get((canon.source, object_id), "") if chained else ""
        digest = link(key, canon.source, row_id, object_id, canon.schema, content, previous)
        if chained:
            latest[(canon.source, object_id)] = digest
        values.append((canon.source, row_id, object_id, canon.schema, content, previous, digest))
    _insert_seals(values, using=using)


def seal_existing(tables: Iterable[tuple[type[models.Model], bool]], *, using: str = "default") -> int:
    """Seal rows written before seals existed (the migration that adds them runs this), each
    object's rows in the order they were written. Returns how many rows were sealed."""
    sealed = 0
    for model, history in tables:
        canon = _canon(model, history=history)
        order = (canon.object, canon.pk) if canon.object != canon.pk else (canon.pk,)
        batch = []
        for row in model._default_manager.using(using).order_by(*order).iterator(chunk_size=2000):
            batch.append(row)
            if len(batch) >= 2000:
                _seal_in_order(canon, batch, using=using)
                sealed += len(batch)
                batch = []
        _seal_in_order(canon, batch, using=using)
        sealed += len(batch)
    return sealed


def _seal_in_order(canon: Canon, rows: list, *, using: str) -> None:
    if not rows:
        return
    key = seal_key()
    chained = canon.object != canon.pk
    latest = _latest_digests(using, canon.source, sorted({getattr(r, canon.object) for r in rows})) if chained else {}
    values = []
    for row in rows:
        row_id, object_id = getattr(row, canon.pk), getattr(row, canon.object)
        content = canon.content_of(key, row)
        previous = latest.get(object_id, "") if chained else ""
        digest = link(key, canon.source, row_id, object_id, canon.schema, content, previous)
        if chained:
            latest[object_id] = digest
        values.append((canon.source, row_id, object_id, canon.schema, content, previous, digest))
    _insert_seals(values, using=using)


def _insert_seals(values: list[tuple], *, using: str) -> None:
    table = _seal_table()
    columns = "source, row_id, object_id, schema, content, previous, digest"
    connection = connections[using]
    # Seven values a row: SQLite takes 999 bound values a statement, PostgreSQL 65,535.
    per_statement = 9000 if connection.vendor == "postgresql" else 140
    with connection.cursor() as cursor:
        # Note: plain SQL, not the ORM: this runs for every history row the application writes, and
        # the ORM's per-object cost would be most of the chain's overhead.
        for start in range(0, len(values), per_statement):
            chunk = values[start : start + per_statement]
            marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {marks}", [v for row in chunk for v in row])


def on_history_row(sender, history_instance, using=None, **kwargs) -> None:
    """simple_history's post_create_historical_record: one history row, from a single save (inside
    a core.history.history_batch(), sealed with the batch when it ends)."""
    from core.history import pending_history_batch

    batch = pending_history_batch()
    if batch is not None and (using or "default") == "default":
        batch.append((sender, history_instance))
        return
    seal_rows(sender, [history_instance], using=using or "default")


def on_history_rows(sender, rows, **kwargs) -> None:
    """core.history's history_rows_created: the history rows of a bulk write."""
    seal_rows(sender, list(rows))


def on_history_batch(sender, rows, **kwargs) -> None:
    """core.history's history_batch_written: the history rows of single saves in a batch."""
    seal_batch(list(rows))


# --- Merkle tree ---------------------------------------------------------------------------------


class MerkleTree:
    """RFC 6962 §2.1 Merkle tree hash, computed as leaves stream in, in O(log n) memory."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        node = hashlib.sha256(b"\x00" + data).digest()
        width = 1
        while self._stack and self._stack[-1][0] == width:
            _, left = self._stack.pop()
            node = hashlib.sha256(b"\x01" + left + node).digest()
            width *= 2
        self._stack.append((width, node))
        self.size += 1

    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node.hex()


def leaf(seal_id: int, source: str, row_id: int, digest: str) -> bytes:
    return f"{seal_id}\n{source}\n{row_id}\n{digest}".encode()


def checkpoint_signature(key: bytes, values: dict) -> str:
    return _mac(key, json.dumps(values, sort_keys=True, separators=(",", ":")).encode())


def checkpoint_values(checkpoint) -> dict:
    return {
        "sequence": checkpoint.sequence,
        "created_at": checkpoint.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "after_seal": checkpoint.after_seal,
        "last_seal": checkpoint.last_seal,
        "leaves": checkpoint.leaves,
        "root": checkpoint.root,
        "gaps": [[int(a), int(b)] for a, b, *_ in checkpoint.gaps],
        "late": [[int(a), int(b)] for a, b in checkpoint.late],
        "previous_signature": checkpoint.previous_signature,
    }


def ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs: 1 2 3 7 → [[1, 3], [7, 7]]."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] + 1 == i:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def in_ranges(value: int, spans: Iterable) -> bool:
    return any(a <= value <= b for a, b, *_ in spans)


def ids_of(spans: Iterable) -> Iterator[int]:
    for a, b, *_ in spans:
        yield from range(int(a), int(b) + 1)
