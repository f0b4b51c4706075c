"""What the tamper-evident chain costs: write overhead and verification speed.

    .venv/bin/python bench/chain_bench.py                    # SQLite file bench/out/chain.sqlite3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chain_bench .venv/bin/python bench/chain_bench.py

Self-contained: it builds its own database from scratch (migrate, one product with a valid GTIN,
locations, users, patients), then runs each workload with the seals on and off, alternating, and
reports medians:

- receive: one receipt_create() of 1,000 scanned cartons (the scan station's "receive a case");
- dispense: 16 clients (threads, each with its own database connection) dispensing vials to
  their own infusion sessions at once, through vial_dispense(); dispenses per second;
- verify: verify_history() over everything written, rows per second.

"Off" disconnects the two receivers that write seals (audit.chain.on_history_row and
on_history_rows); everything else is the same code.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"


def setup() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        db = OUT / "chain.sqlite3"
        db.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # 16 writers on one SQLite file: take the write lock when a transaction begins, so that
        # they queue (busy timeout) instead of failing when a reader tries to become a writer.
        settings.DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        # Start from an empty schema so that every run measures the same thing.
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)


class Seals:
    """Switch the chain's receivers off and on; when on, add up the wall time spent inside them
    (a direct measure of their cost, steadier than the difference of two noisy runs)."""

    def __init__(self) -> None:
        from simple_history.signals import post_create_historical_record

        from audit.chain import on_history_row, on_history_rows
        from core.history import history_rows_created

        self.spent = 0.0
        self._lock = threading.Lock()
        self.pairs = [
            (post_create_historical_record, self._timed(on_history_row), "audit.seal_history_row"),
            (history_rows_created, self._timed(on_history_rows), "audit.seal_history_rows"),
        ]

    def _timed(self, receiver):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return receiver(*args, **kwargs)
            finally:
                with self._lock:
                    self.spent += time.perf_counter() - started

        return timed

    def set(self, on: bool) -> None:
        for signal, receiver, uid in self.pairs:
            signal.disconnect(dispatch_uid=uid)
            if on:
                signal.connect(receiver, dispatch_uid=uid, weak=False)


def world():
    from datetime import date
    from decimal import Decimal

    from django.contrib.auth.models import Group, User

    from core.history import audited_create
    from inventory.models import Manufacturer, Presentation, Product, StorageLocation
    from labels.gs1 import gtin_check_digit

    tech = User.objects.create(username="bench-tech", first_name="Bench", last_name="Tech")
    tech.groups.add(Group.objects.get_or_create(name="technician")[0])
    maker = audited_create(Manufacturer, actor=tech, reason="bench", name="Bench Maker")
    product = audited_create(
        Product, actor=tech, reason="bench", brand="Benchigen", manufacturer=maker, route="IV",
        concentration_pct=Decimal("10"),
    )
    body = "0095200000123"
    presentation = audited_create(
        Presentation, actor=tech, reason="bench", product=product, gtin=body + gtin_check_digit(body), grams=Decimal("10")
    )
    fridge = audited_create(StorageLocation, actor=tech, reason="bench", name="Bench fridge", code="B-FR", kind="refrigerator")
    return tech, presentation, fridge, date.today().replace(year=date.today().year + 2)


def scans(presentation, expiry, lot: str, count: int) -> list[str]:
    return [f"(01){presentation.gtin}(17){expiry:%y%m%d}(10){lot}(21){lot}S{i:05d}" for i in range(count)]


def bench_receive(tech, presentation, fridge, expiry, *, seals: Seals, rounds: int, size: int) -> dict:
    from inventory.services import receipt_create

    times = {True: [], False: []}
    shares = []
    for round_ in range(rounds):
        for on in (True, False) if round_ % 2 == 0 else (False, True):
            seals.set(on)
            batch = scans(presentation, expiry, f"R{round_}{'Y' if on else 'N'}", size)
            spent = seals.spent
            started = time.perf_counter()
            receipt_create(location=fridge, scans=batch, actor=tech)
            elapsed = time.perf_counter() - started
            times[on].append(elapsed)
            if on:
                shares.append((seals.spent - spent) / (elapsed - (seals.spent - spent)))
    seals.set(True)
    return {**{on: statistics.median(values) for on, values in times.items()}, "sealing": statistics.median(shares)}


def bench_dispense(tech, presentation, fridge, expiry, *, seals: Seals, rounds: int, clients: int, per_client: int) -> dict:
    from datetime import date
    from decimal import Decimal

    from django.db import connection, connections

    from inventory.models import Vial, local_today
    from inventory.services import receipt_create
    from traceability.models import InfusionSession
    from traceability.authorisations import authorisation_create
    from traceability.services import patient_create, session_create, vial_dispense

    rates = {True: [], False: []}
    sealing = []
    for round_ in range(rounds):
        for on in (True, False) if round_ % 2 == 0 else (False, True):
            seals.set(on)
            lot = f"D{round_}{'Y' if on else 'N'}"
            vials = receipt_create(location=fridge, scans=scans(presentation, expiry, lot, clients * per_client), actor=tech)
            sessions = []
            for c in range(clients):
                patient = patient_create(
                    actor=tech, mrn=f"B-{lot}-{c}", name=f"Bench {lot} {c}", date_of_birth=date(1980, 1, 1), weight_kg=Decimal("70")
                )
                authorisation = authorisation_create(
                    actor=tech, patient=patient, indication=InfusionSession.Indication.PID, route="IV",
                    interval_days=0, doses=1, valid_from=local_today(), valid_until=local_today(),
                    dose_grams=Decimal("1000"), prescriber="Dr Bench", approver="Bench panel",
                )
                sessions.append(
                    session_create(
                        actor=tech, patient=patient, scheduled_date=local_today(),
                        indication=InfusionSession.Indication.PID, ordered_grams=Decimal("1000"),
                        authorisation=authorisation,
                    )
                )
            barrier = threading.Barrier(clients + 1)
            errors = []

            def client(index: int) -> None:
                try:
                    mine = vials[index * per_client : (index + 1) * per_client]
                    barrier.wait()
                    for vial in mine:
                        vial_dispense(session=sessions[index], vial=vial, actor=tech)
                except Exception as exc:  # reported below
                    errors.append(exc)
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            barrier.wait()
            spent = seals.spent
            started = time.perf_counter()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            if on:
                # Threads overlap: time inside the receivers, per dispense, against time per dispense.
                per_dispense = elapsed / (clients * per_client)
                sealing.append((seals.spent - spent) / (clients * per_client) / clients / per_dispense)
            if errors:
                raise errors[0]
            assert Vial.objects.filter(lot__lot_number=lot, status="dispensed").count() == clients * per_client
            rates[on].append(clients * per_client / elapsed)
    seals.set(True)
    connection.close()
    return {**{on: statistics.median(values) for on, values in rates.items()}, "sealing": statistics.median(sealing)}


def bench_verify() -> tuple[int, float]:
    from audit.services import checkpoint_create
    from audit.verify import verify_history

    checkpoint_create(trigger="command")
    started = time.perf_counter()
    report = verify_history()
    elapsed = time.perf_counter() - started
    # Rows written while the seals were off have no seal: they are reported, as they should be.
    kinds = {p.kind for p in report.problems}
    assert kinds <= {"unsealed"}, kinds
    return report.seals, report.seals / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating on/off rounds per workload")
    parser.add_argument("--scans", type=int, default=1000, help="cartons per receipt")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=25, help="dispenses per client per round")
    args = parser.parse_args()
    setup()
    from django.db import connection

    seals = Seals()
    tech, presentation, fridge, expiry = world()
    print(f"database: {connection.vendor}; rounds: {args.rounds}")
    receive = bench_receive(tech, presentation, fridge, expiry, seals=seals, rounds=args.rounds, size=args.scans)
    print(
        f"receive {args.scans:,} scans: {receive[False]:.3f} s without seals, {receive[True]:.3f} s with "
        f"(difference {100 * (receive[True] / receive[False] - 1):+.1f} %; time inside the seal writers: "
        f"{100 * receive['sealing']:.1f} % of the rest)"
    )
    dispense = bench_dispense(
        tech, presentation, fridge, expiry, seals=seals, rounds=args.rounds, clients=args.clients, per_client=args.per_client
    )
    print(
        f"dispense, {args.clients} clients: {dispense[False]:.0f}/s without seals, {dispense[True]:.0f}/s with "
        f"(difference {100 * (dispense[False] / dispense[True] - 1):+.1f} % time per dispense; time inside the seal "
        f"writers: ~{100 * dispense['sealing']:.1f} % of a dispense)"
    )
    rows, rate = bench_verify()
    print(f"verify_history: {rows:,} sealed rows at {rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
