"""The worst body each size-capped call allows, timed: every one must be answered within 1 s.

    .venv/bin/python bench/worst_bodies.py            # an in-memory SQLite database of its own
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/worst_bodies.py

The caps are the ones the schema states (recalls: 1000 lots; a scan: 512 characters; a receipt:
1000 scans). Each body is posted three times through the whole stack (DRF, services, database) and
the slowest of the three is reported. Exits 1 when one takes longer than the budget.
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUDGET_SECONDS = 1.0


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        return run()
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def run() -> int:
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from api.recalls import LOT_REF_MAX_LENGTH
    from core.text import BARCODE_MAX_LENGTH
    from recalls.services import MAX_RECALL_LOTS
    from tests.factories import InfusionSessionFactory, LotFactory, StorageLocationFactory, UserFactory

    pharmacist = UserFactory(username="bench-pharm", role="pharmacist")
    client = APIClient()
    client.force_authenticate(pharmacist)
    lots = [LotFactory(lot_number=f"{n:020d}") for n in range(MAX_RECALL_LOTS)]
    StorageLocationFactory(code="BENCH-FRIDGE")
    session = InfusionSessionFactory()
    gtin = lots[0].product.presentations.first().gtin if lots[0].product.presentations.exists() else "09501101530003"

    known_text = "\n".join(f"{lot.lot_number:<{LOT_REF_MAX_LENGTH - 1}}" for lot in lots)
    unknown_text = "\n".join(f"X{n:0{LOT_REF_MAX_LENGTH - 2}d}" for n in range(MAX_RECALL_LOTS))
    # No separator and every character a digit: the most readings a dropped-separator scan can have.
    long_scan = "01" + gtin + "10" + "2110172712311" * ((BARCODE_MAX_LENGTH - 18) // 13)
    long_scan = long_scan[:BARCODE_MAX_LENGTH]
    cases = [
        ("recall, 1000 unknown lot numbers pasted", "post", "/api/recalls/",
         lambda n: {"reference": f"B-U{n}", "source": "regulator", "recall_class": "II", "reason": "x",
                    "lots_text": unknown_text}),
        ("recall, 1000 lot numbers as a list (refused: unknown)", "post", "/api/recalls/",
         lambda n: {"reference": f"B-L{n}", "source": "regulator", "recall_class": "II", "reason": "x",
                    "lots": [f"Y{k:019d}" for k in range(MAX_RECALL_LOTS)]}),
        ("receipt check, 1000 scans of 512 characters", "post", "/api/receipts/check",
         lambda n: {"scans": [long_scan] * 1000}),
        ("scan, 512 characters without separators", "post", "/api/scan", lambda n: {"barcode": long_scan}),
        ("dispense, 512-character barcode", "post", f"/api/sessions/{session.pk}/dispenses",
         lambda n: {"barcode": long_scan}),
        ("recall, 1000 known lots pasted (created)", "post", "/api/recalls/",
         lambda n: {"reference": f"B-K{n}", "source": "regulator", "recall_class": "II", "reason": "x",
                    "lots_text": known_text}),
    ]
    worst = 0.0
    print(f"{'case':58} {'status':>6} {'slowest s':>10}")
    for name, method, url, body in cases:
        timings, status = [], None
        for attempt in range(3):
            cache.clear()
            started = time.perf_counter()
            response = getattr(client, method)(url, body(attempt), format="json")
            timings.append(time.perf_counter() - started)
            status = response.status_code
        slowest = max(timings)
        worst = max(worst, slowest)
        print(f"{name:58} {status:>6} {slowest:>10.3f}")
    print(f"budget {BUDGET_SECONDS:.1f} s: {'kept' if worst <= BUDGET_SECONDS else 'EXCEEDED'}")
    return 0 if worst <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
