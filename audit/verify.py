"""Verification of the sealed history and access log (manage.py verify_history).

Reads every sealed table in object order beside its seals, recomputes each row's content and each
chain link with the key, then replays the checkpoints' Merkle roots. Memory holds one batch of rows
and the seals of one object, whatever the size of the history.

What each kind of tampering looks like:
- a row edited with SQL: its content no longer matches its seal ("changed");
- two rows swapped (their places exchanged): each holds the content sealed for the other
  ("reordered");
- a row deleted: its seal finds no row ("deleted");
- a row deleted with its seal: the next row of the object no longer links to the one before it
  ("chain broken"), and the checkpoint that fixed the seal misses a leaf ("seal missing");
- a row inserted with SQL: it has no seal ("unsealed");
- a seal or checkpoint edited: its digest or signature no longer matches ("seal altered",
  "checkpoint altered").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from audit.chain import (
    MerkleTree,
    _canon,
    canon_for,
    checkpoint_signature,
    checkpoint_values,
    ids_of,
    in_ranges,
    leaf,
    link,
    seal_key,
    sealed_models,
)
from audit.models import Checkpoint, HistoryPurge, Seal, SealSchema

BATCH = 2000
UNSEALED_SHOWN = 10_000  # per table: past that many, the table is no longer the application's anyway


@dataclass(order=True)
class Problem:
    order: tuple  # where it sits: (seal id or a large number, table, row id)
    kind: str = field(compare=False)
    source: str = field(compare=False)
    row_id: int | None = field(compare=False)
    text: str = field(compare=False)


@dataclass
class Report:
    rows: int = 0
    seals: int = 0
    checkpoints: int = 0
    seals_after_checkpoint: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems) if self.problems else None


def _describe(canon, row_id, object_id) -> str:
    model = canon.model
    name = model._meta.verbose_name
    if hasattr(model, "instance_type"):
        return f"{model.instance_type._meta.verbose_name} {object_id}, history row {row_id} ({canon.source})"
    return f"{name} row {row_id} ({canon.source})"


class _Schemas:
    def __init__(self) -> None:
        self._known: dict[str, object] = {}

    def canon(self, model, key: str):
        current = canon_for(model)
        if key == current.schema:
            return current
        if key not in self._known:
            record = SealSchema.objects.filter(key=key).first()
            self._known[key] = _canon(model, record.fields) if record else None
        return self._known[key]


def verify_history(*, progress: Callable[[int], None] | None = None) -> Report:
    report = Report()
    key = seal_key()
    purged_to = HistoryPurge.objects.order_by("-up_to_seal").values_list("up_to_seal", flat=True).first() or 0
    schemas = _Schemas()
    for model in sealed_models():
        _verify_table(model, key=key, report=report, schemas=schemas, purged_to=purged_to, progress=progress)
    _verify_checkpoints(key=key, report=report, purged_to=purged_to)
    report.problems.sort()
    return report


def _verify_table(model, *, key, report: Report, schemas: _Schemas, purged_to: int, progress) -> None:
    canon = canon_for(model)
    seals = (
        Seal.objects.filter(source=canon.source)
        .order_by("object_id", "row_id")
        .values_list("id", "row_id", "object_id", "schema", "content", "previous", "digest")
        .iterator(chunk_size=BATCH)
    )
    current_object = None
    last_digest = ""
    object_seals: list[tuple] = []  # (seal id, row id, sealed content, content now or None)

    def close_object() -> None:
        # Changed rows whose content is sealed elsewhere in the same object were moved, not edited.
        sealed_where = {content: row_id for _, row_id, content, _ in object_seals}
        for seal_id, row_id, content, now in object_seals:
            if now is None or now == content:
                continue
            if now in sealed_where and sealed_where[now] != row_id:
                kind, text = "reordered", f"holds the record sealed as history row {sealed_where[now]}: rows were swapped or reordered"
            else:
                kind, text = "changed", "its content was changed outside the application"
            report.problems.append(
                Problem((seal_id, canon.source, row_id), kind, canon.source, row_id, f"{_describe(canon, row_id, current_object)}: {text}")
            )
        object_seals.clear()

    batch: list[tuple] = []

    def check(batch: list[tuple]) -> None:
        nonlocal current_object, last_digest
        ids = [s[1] for s in batch]
        rows = {}
        for start in range(0, len(ids), 900):
            for values in model._default_manager.filter(**{f"{canon.pk}__in": ids[start : start + 900]}).values_list(
                canon.pk, *canon.attnames
            ):
                rows[values[0]] = values
        for seal_id, row_id, object_id, schema, content, previous, digest in batch:
            report.seals += 1
            if object_id != current_object:
                close_object()
                current_object = object_id
                first_of_object = True
                last_digest = ""
            else:
                first_of_object = False
            where = (seal_id, canon.source, row_id)
            expected_previous = last_digest
            if first_of_object and previous and seal_id > purged_to and purged_to:
                expected_previous = previous  # its predecessor passed the retention period and was purged
            if previous != expected_previous:
                report.problems.append(
                    Problem(
                        where, "chain broken", canon.source, row_id,
                        f"{_describe(canon, row_id, object_id)}: the record before it in this object's history is "
                        "missing or was moved (the chain is broken)",
                    )
                )
            if link(key, canon.source, row_id, object_id, schema, content, previous) != digest:
                report.problems.append(
                    Problem(where, "seal altered", canon.source, row_id, f"{_describe(canon, row_id, object_id)}: its seal was altered")
                )
            last_digest = digest
            row = rows.get(row_id)
            if row is None:
                report.problems.append(
                    Problem(where, "deleted", canon.source, row_id, f"{_describe(canon, row_id, object_id)}: the row was deleted")
                )
                object_seals.append((seal_id, row_id, content, None))
                continue
            report.rows += 1
            row_canon = schemas.canon(model, schema)
            if row_canon is None:
                report.problems.append(
                    Problem(where, "unknown schema", canon.source, row_id, f"{_describe(canon, row_id, object_id)}: sealed with unknown fields {schema}")
                )
                continue
            values = dict(zip((canon.pk, *canon.attnames), row))
            if row_canon is not canon:
                missing = [name for name in row_canon.attnames if name not in values]
                if missing:
                    report.problems.append(
                        Problem(where, "unknown schema", canon.source, row_id, f"{_describe(canon, row_id, object_id)}: sealed fields {missing} no longer exist")
                    )
                    continue
            now = row_canon.content(key, (values[name] for name in row_canon.attnames))
            object_seals.append((seal_id, row_id, content, now))
        if progress is not None:
            progress(report.seals)

    for seal in seals:
        batch.append(seal)
        if len(batch) >= BATCH:
            check(batch)
            batch = []
    if batch:
        check(batch)
    close_object()

    # Note: a plain query, not a server-side cursor (.iterator()): PostgreSQL plans cursors for the
    # first rows and picks a nested loop here that is a thousand times slower than the hash anti-join.
    unsealed = model._default_manager.filter(
        ~Exists(Seal.objects.filter(source=canon.source, row_id=OuterRef(canon.pk)))
    ).order_by(canon.pk).values_list(canon.pk, canon.object)
    for row_id, object_id in unsealed[:UNSEALED_SHOWN]:
        report.problems.append(
            Problem(
                (float("inf"), canon.source, row_id), "unsealed", canon.source, row_id,
                f"{_describe(canon, row_id, object_id)}: the row has no seal (written outside the application)",
            )
        )


def _verify_checkpoints(*, key, report: Report, purged_to: int) -> None:
    previous_signature = ""
    previous = None
    covered_late: set[int] = set()
    last_gaps: list = []
    for checkpoint in Checkpoint.objects.order_by("sequence").iterator():
        report.checkpoints += 1
        where = (-1, "checkpoint", checkpoint.sequence)
        expected_sequence = (previous.sequence + 1) if previous else checkpoint.sequence
        if checkpoint.sequence != expected_sequence or (previous and checkpoint.after_seal != previous.last_seal):
            report.problems.append(
                Problem(where, "checkpoint missing", "checkpoint", checkpoint.sequence, f"checkpoint {checkpoint.sequence}: the checkpoint before it is missing")
            )
        if checkpoint_signature(key, checkpoint_values(checkpoint)) != checkpoint.signature or (
            previous is not None and checkpoint.previous_signature != previous_signature
        ):
            report.problems.append(
                Problem(where, "checkpoint altered", "checkpoint", checkpoint.sequence, f"checkpoint {checkpoint.sequence}: altered or out of order")
            )
        previous_signature, previous = checkpoint.signature, checkpoint
        covered_late.update(ids_of(checkpoint.late))
        last_gaps = checkpoint.gaps
        if checkpoint.last_seal <= purged_to:
            continue  # its seals passed the retention period and were purged; its signature still chains
        tree = MerkleTree()
        late_ids = list(ids_of(checkpoint.late))
        found_late = dict(
            (s[0], s) for s in Seal.objects.filter(id__in=late_ids).values_list("id", "source", "row_id", "digest")
        )
        missing = [i for i in late_ids if i not in found_late]
        for seal_id in sorted(found_late):
            tree.add(leaf(*found_late[seal_id]))
        expected = checkpoint.after_seal + 1
        for seal_id, source, row_id, digest in (
            Seal.objects.filter(id__gt=checkpoint.after_seal, id__lte=checkpoint.last_seal)
            .order_by("id")
            .values_list("id", "source", "row_id", "digest")
            .iterator(chunk_size=5000)
        ):
            missing.extend(i for i in range(expected, seal_id) if not in_ranges(i, checkpoint.gaps))
            expected = seal_id + 1
            if in_ranges(seal_id, checkpoint.gaps):
                continue  # committed after this checkpoint: a later one covers it
            tree.add(leaf(seal_id, source, row_id, digest))
        missing.extend(i for i in range(expected, checkpoint.last_seal + 1) if not in_ranges(i, checkpoint.gaps))
        for seal_id in sorted(missing):
            report.problems.append(
                Problem(
                    (seal_id, "seal", seal_id), "seal missing", "seal", seal_id,
                    f"seal {seal_id}, fixed by checkpoint {checkpoint.sequence}, is missing: a row was deleted together with its seal",
                )
            )
        if not missing and (tree.root() != checkpoint.root or tree.size != checkpoint.leaves):
            report.problems.append(
                Problem(
                    (checkpoint.after_seal + 1, "checkpoint", checkpoint.sequence), "checkpoint mismatch", "checkpoint", checkpoint.sequence,
                    f"checkpoint {checkpoint.sequence}: the seals {checkpoint.after_seal + 1}–{checkpoint.last_seal} no longer "
                    "give its Merkle root (seals were altered, moved or inserted)",
                )
            )
    # Seals in a checkpoint's gaps that no later checkpoint took up, and that the newest checkpoint
    # does not still wait for, appeared outside the application.
    if previous is not None:
        waiting = last_gaps
        gap_ids = set()
        for checkpoint in Checkpoint.objects.filter(last_seal__gt=purged_to).only("gaps"):
            gap_ids.update(ids_of(checkpoint.gaps))
        stray = Seal.objects.filter(id__in=sorted(gap_ids - covered_late)).values_list("id", "source", "row_id")
        for seal_id, source, row_id in stray:
            if in_ranges(seal_id, waiting):
                continue
            report.problems.append(
                Problem(
                    (seal_id, source, row_id), "inserted", source, row_id,
                    f"seal {seal_id} ({source} row {row_id}) appeared after its checkpoint closed: inserted outside the application",
                )
            )
        report.seals_after_checkpoint = Seal.objects.filter(id__gt=previous.last_seal).count()
    else:
        report.seals_after_checkpoint = Seal.objects.count()
