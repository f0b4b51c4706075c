"""Fill a separate database with N history rows for the export benchmark.

    .venv/bin/python bench/history_rows.py --rows 200000            # bench/out/bench.sqlite3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/history_rows.py --rows 1000000

The rows are bulk-inserted straight into the historical tables (and the live tables they point
to), which is how a year of a busy pharmacy looks to the export: each vial is received, moved a few
times and dispensed, by several users, each record with a reason. 80 % of the rows are vial
history (the sheet the benchmark compares), the rest sessions and dispenses.
"""

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = ROOT / "bench" / "out" / "bench.sqlite3"


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{DEFAULT_DB}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if os.environ["DATABASE_URL"].startswith("sqlite:"):
        DEFAULT_DB.parent.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()


def generate(rows: int, *, seed: int = 7, batch: int = 5000) -> dict:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from inventory.models import Lot, Manufacturer, Presentation, Product, StorageLocation, Vial
    from traceability.models import Dispense, InfusionSession, Patient

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    HVial = Vial.history.model
    HSession = InfusionSession.history.model
    HDispense = Dispense.history.model

    # A fresh start each run: empty every table (the roles come back below).
    call_command("flush", interactive=False, verbosity=0)
    with transaction.atomic():
        users = []
        for name, role in (("bench_tech", "technician"), ("bench_pharm", "pharmacist"), ("bench_tech2", "technician")):
            user = User.objects.create(username=name)
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            users.append(user)
        maker = Manufacturer.objects.create(name="Bench Biotherapies")
        products = [
            Product.objects.create(brand=f"Benchglobulin {i}", manufacturer=maker, route="IV",
                                   concentration_pct=Decimal("10"), room_temp_allowance_days=90)
            for i in range(6)
        ]
        presentations = [
            Presentation.objects.create(product=p, gtin=_gtin(i), grams=Decimal(g), volume_ml=Decimal(g) * 10)
            for i, (p, g) in enumerate((p, g) for p in products for g in ("5", "10", "20"))
        ]
        today = timezone.localdate()
        lots = Lot.objects.bulk_create(
            Lot(product=p.product, lot_number=f"B{i:06d}", expiry_date=today + timedelta(days=400))
            for i, p in enumerate(presentations * 20)
        )
        lot_presentation = {lot.pk: presentations[i % len(presentations)] for i, lot in enumerate(lots)}
        locations = [
            StorageLocation.objects.create(name="Bench fridge 1", code="BF-1", kind="refrigerator"),
            StorageLocation.objects.create(name="Bench fridge 2", code="BF-2", kind="refrigerator"),
            StorageLocation.objects.create(name="Bench room shelf", code="BR-1", kind="room_temperature"),
        ]
        patients = Patient.objects.bulk_create(
            Patient(mrn=f"BM{i:07d}", name=f"Bench patient {i}", date_of_birth=today.replace(year=1970))
            for i in range(500)
        )

    started = time.monotonic()
    start = timezone.now() - timedelta(days=365)
    vial_rows = int(rows * 0.8)
    other_rows = rows - vial_rows
    n_vials = max(1, vial_rows // 5)
    written = {"vials": 0, "sessions": 0, "dispenses": 0}

    # Vials: live rows first (labels and dispenses point at them), then 5 history records each.
    vial_ids = []
    for first in range(0, n_vials, batch):
        objs = []
        for i in range(first, min(first + batch, n_vials)):
            lot = lots[i % len(lots)]
            objs.append(Vial(presentation=lot_presentation[lot.pk], lot=lot, serial=f"S{i:09d}",
                             location=None, status="dispensed", beyond_use_date=lot.expiry_date,
                             received_at=start))
        with transaction.atomic():
            vial_ids += [v.pk for v in Vial.objects.bulk_create(objs)]
    steps = (("+", "receive", "in_stock", 0), ("~", "move to BF-2", "in_stock", 1),
             ("~", "move to BR-1", "in_stock", 2), ("~", "move to BF-1", "in_stock", 0),
             ("~", "dispense to session", "dispensed", None))
    pending = []
    for index, vial_id in enumerate(vial_ids):
        lot = lots[index % len(lots)]
        when = start + timedelta(seconds=rng.randrange(0, 300 * 86400))
        for record, (kind, reason, status, location) in enumerate(steps):
            if written["vials"] >= vial_rows:
                break
            when += timedelta(minutes=rng.randrange(5, 7 * 1440))
            pending.append(HVial(
                id=vial_id, presentation_id=lot_presentation[lot.pk].pk, lot_id=lot.pk,
                serial=f"S{index:09d}", serial_is_internal=False,
                location_id=locations[location].pk if location is not None else None, status=status,
                room_temp_since=when if location == 2 else None, beyond_use_date=lot.expiry_date,
                received_at=start, history_date=when, history_type=kind, history_change_reason=reason,
                history_user_id=users[rng.randrange(len(users))].pk,
            ))
            written["vials"] += 1
        if len(pending) >= batch:
            _flush(HVial, pending)
    _flush(HVial, pending)

    # Sessions (created, then the dose changed) and dispenses for the rest.
    n_sessions = max(1, other_rows // 4)
    sessions = []
    for first in range(0, n_sessions, batch):
        objs = [InfusionSession(patient=patients[i % len(patients)], scheduled_date=today, indication="primary_immunodeficiency",
                                ordered_grams=Decimal("30")) for i in range(first, min(first + batch, n_sessions))]
        with transaction.atomic():
            sessions += [s.pk for s in InfusionSession.objects.bulk_create(objs)]
    for index, session_id in enumerate(sessions):
        when = start + timedelta(seconds=rng.randrange(0, 300 * 86400))
        patient_id = patients[index % len(patients)].pk
        for kind, grams, reason in (("+", "30.00", "session scheduled"), ("~", "35.00", "dose corrected")):
            pending.append(HSession(
                id=session_id, patient_id=patient_id, scheduled_date=today, site="Bench centre",
                indication="primary_immunodeficiency", ordered_grams=Decimal(grams), status="scheduled",
                created_at=start, history_date=when, history_type=kind, history_change_reason=reason,
                history_user_id=users[1].pk,
            ))
            written["sessions"] += 1
            when += timedelta(hours=1)
        vial_id = vial_ids[index % len(vial_ids)]
        for kind, status in (("+", "dispensed"), ("~", "dispensed")):
            pending.append(HDispense(
                id=index + 1, session_id=session_id, vial_id=vial_id, product_id=products[0].pk,
                grams=Decimal("10.00"), dispensed_by_id=users[0].pk, dispensed_at=when, status=status,
                history_date=when, history_type=kind, history_change_reason=f"dispense to session {session_id}",
                history_user_id=users[0].pk,
            ))
            written["dispenses"] += 1
            when += timedelta(minutes=30)
        if len(pending) >= batch:
            _flush_mixed(pending)
    _flush_mixed(pending)
    connection.close()
    return {"rows": sum(written.values()), **written, "seconds": round(time.monotonic() - started, 1)}


def _flush(model, pending: list) -> None:
    from django.db import transaction

    if pending:
        with transaction.atomic():
            model.objects.bulk_create(pending, batch_size=2000)
        pending.clear()


def _flush_mixed(pending: list) -> None:
    by_model: dict = {}
    for obj in pending:
        by_model.setdefault(type(obj), []).append(obj)
    pending.clear()
    for model, objs in by_model.items():
        _flush(model, objs)


def _gtin(n: int) -> str:
    body = f"0952{900000000 + n:09d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_django()
    print(generate(args.rows, seed=args.seed))


if __name__ == "__main__":
    main()
