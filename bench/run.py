"""`python -m bench run`: every figure a median over repeated runs, next to its floor measured in
the same run, with the queries it costs. Reads the database `python -m bench generate` filled.

In process, requests go through Django's WSGI handler exactly as gunicorn calls it (no test
client). A write runs inside a transaction that is rolled back; a read (the scan, the patient
history, the lists) commits as the server's do, checked to write nothing but the access-log lines
of the patients it showed (a rollback would also drop the prepared statements a server keeps). The
HTTP figures start gunicorn with config/gunicorn.conf.py on a free port; the dispense throughput
dispenses real vials to today's open sessions (regenerate after many runs).
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Rollback(Exception):
    pass


@dataclass
class Row:
    measure: str
    value: str
    floor: str
    ratio: str
    queries: str
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args, **kwargs) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(f"  {row.measure}: {row.value} (floor {row.floor}, {row.queries} queries)", file=sys.stderr, flush=True)

    def table(self, *, markdown: bool) -> str:
        head = ["measure", "median", "floor", "× floor", "queries", "target", "met"]
        body = [[r.measure, r.value, r.floor, r.ratio, r.queries, r.target,
                 "—" if r.met is None else ("yes" if r.met else "NO")] for r in self.rows]
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(row) + " |" for row in body]
            return "\n".join(lines)
        widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in body])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


# --- in-process requests -----------------------------------------------------------------------


class InProcess:
    """Calls the WSGI application as gunicorn does, with the auth header of a bench user."""

    def __init__(self):
        from django.core.handlers.wsgi import WSGIHandler

        self.app = WSGIHandler()

    def call(self, method: str, path: str, *, token: str, body: dict | None = None) -> tuple[int, bytes]:
        raw = json.dumps(body).encode() if body is not None else b""
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "wsgi.version": (1, 0), "REMOTE_ADDR": "127.0.0.1",
        }
        status = []
        response = self.app(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            content = b"".join(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        return int(status[0].split()[0]), content


@contextmanager
def in_process_requests():
    """Django closes the connection at the end of a request unless it is persistent and clean; the
    measurements run inside a transaction to be rolled back, so (like Django's test client) the
    connection is left alone between requests."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# What a read writes: the access-log lines of the patients it showed, and their seals.
READ_WRITES = ('INSERT INTO "audit_patientaccess"', 'INSERT INTO "audit_seal"')


def timed(fn, *, repeat: int, warmup: int = 2, rollback: bool = True, read_only: bool = False
          ) -> tuple[float, int, object]:
    """Median seconds of `fn()` over `repeat` runs, the queries of one run, and its last result.
    Each run is a transaction rolled back, or with `rollback=False` committed; `read_only` checks
    that `fn` wrote nothing but the access log (READ_WRITES). A read commits, as on the server: a
    rollback also drops the connection's prepared statements, which a server's connection keeps."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    def once():
        result = None
        try:
            with transaction.atomic():
                result = fn()
                if rollback:
                    raise Rollback
        except Rollback:
            pass
        return result

    for _ in range(warmup):
        once()
    with CaptureQueriesContext(connection) as captured:
        result = once()
    # SAVEPOINT / RELEASE and the outer BEGIN are the benchmark's, not the request's.
    statements = [q["sql"] for q in captured.captured_queries
                  if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"))]
    queries = len(statements)
    if not rollback and read_only:
        writes = [sql for sql in statements
                  if not sql.lstrip().upper().startswith("SELECT") and not sql.lstrip().startswith(READ_WRITES)]
        if writes:
            raise SystemExit(f"{getattr(fn, '__name__', fn)} was measured as a read but wrote: {writes[0][:200]}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times), queries, result


def check(status: int, content: bytes, what: str, expected=(200, 201)) -> None:
    if status not in expected:
        raise SystemExit(f"{what}: HTTP {status}: {content[:500]!r}")


# --- the subjects ------------------------------------------------------------------------------


def tokens() -> dict[str, str]:
    """An API token per role, made now for the first bench user of the role (knox keeps only a
    token's digest, so the generator cannot hand them over)."""
    from django.contrib.auth.models import User
    from knox.models import AuthToken

    found = {}
    for user in User.objects.filter(username__startswith="bench_").prefetch_related("groups").order_by("username"):
        role = next((g.name for g in user.groups.all()), "")
        if role and role not in found:
            found[role] = AuthToken.objects.create(user)[1]
    missing = {"technician", "pharmacist", "recall_coordinator", "auditor"} - set(found)
    if missing:
        raise SystemExit(f"No bench user for {', '.join(sorted(missing))}: run `python -m bench generate` first.")
    return found


def scan_barcodes(count: int, seed: int = 1) -> list[str]:
    """Scans of vials on the shelf, spread over the whole table."""
    from inventory.models import Vial
    from labels.gs1 import element_string

    last = Vial.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rng = random.Random(seed)
    ids = sorted(rng.sample(range(1, last + 1), min(last, count * 8)))
    rows = (Vial.objects.filter(pk__in=ids, status="in_stock", lot__status="released")
            .values_list("presentation__gtin", "lot__expiry_date", "lot__lot_number", "serial")[:count])
    return [element_string(gtin=g, expiry=e, lot=l, serial=s) for g, e, l, s in rows]


def fresh_scans(count: int, *, seed: int) -> list[str]:
    """A delivery of `count` cartons never received: one new lot of a catalog product."""
    from datetime import timedelta

    from inventory.models import Presentation, local_today
    from labels.gs1 import element_string

    presentation = Presentation.objects.order_by("pk").first()
    expiry = local_today() + timedelta(days=600)
    return [element_string(gtin=presentation.gtin, expiry=expiry, lot=f"NEW{seed:05d}", serial=f"NEW{seed:05d}{n:05d}")
            for n in range(count)]


# --- gunicorn ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, workers: int | None):
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, DEBUG="0", GUNICORN_BIND=f"127.0.0.1:{port}",
               ALLOWED_HOSTS="127.0.0.1,localhost")
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    binary = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen([str(binary), "-c", str(ROOT / "config" / "gunicorn.conf.py"), "config.wsgi:application"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                status, _ = http_get(port, "/static/web/style.css")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not start: " + process.stderr.read1(4000).decode(errors="replace"))
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def http_get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    return http(port, "GET", path, token=token)


def http(port: int, method: str, path: str, *, token: str | None = None, body: dict | None = None) -> tuple[int, bytes]:
    conn = HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    content = response.read()
    conn.close()
    return response.status, content


def load(port: int, requests: list[tuple], *, clients: int) -> tuple[float, list[float], dict]:
    """Send `requests` (method, path, token, body) from `clients` threads; wall time and latencies."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(reversed(requests))

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                method, path, token, body = queue.pop()
            started = time.perf_counter()
            status, content = http(port, method, path, token=token, body=body)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# The technician acknowledges the cautions the scan card shows (traceability.clinical); the
# workload leaves out what a contraindication would refuse.
CAUTIONS = ["iga_deficiency", "maltose_glucose", "renal_concentration", "thrombosis", "previous_reaction"]


def dispense_workload(count: int) -> list[tuple[int, str]]:
    """(session id, barcode) pairs: each an in-stock vial of the brand the patient was last given,
    by the session's route, dispensed to one of today's open sessions while its dose is not yet
    reached (the dispense refuses a vial that overshoots the order, and a product of the other
    route)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.db.models import Sum

    from inventory.models import Vial, local_today
    from labels.gs1 import element_string
    from traceability.models import AdverseReaction, Dispense, InfusionSession

    today = local_today()
    sessions = list(InfusionSession.objects.filter(scheduled_date=today, status__in=["scheduled", "in_progress"])
                    .order_by("pk").values_list("pk", "patient_id", "route", "ordered_grams"))
    given: dict[int, Decimal] = dict(
        Dispense.objects.filter(session_id__in=[s[0] for s in sessions], status__in=["dispensed", "wasted"])
        .values("session_id").annotate(total=Sum("grams")).values_list("session_id", "total")
    )
    brand: dict[int, int] = {}
    for patient_id, product_id in (Dispense.objects.filter(session__patient_id__in=[s[1] for s in sessions],
                                                           session__status="completed")
                                   .order_by("session__patient_id", "-dispensed_at")
                                   .values_list("session__patient_id", "product_id")):
        brand.setdefault(patient_id, product_id)
    severe = set(
        AdverseReaction.objects.filter(session__patient_id__in=[s[1] for s in sessions],
                                       severity__in=["severe", "life_threatening"])
        .values_list("session__patient_id", flat=True)
    )
    # One pool of usable vials per brand and route (oldest first), shared out between the sessions
    # in turn: each vial goes to one session only, and none overshoots the session's order.
    wanted: dict[tuple[int, str], int] = {}
    for session_id, patient_id, route, ordered in sessions:
        if patient_id not in severe and patient_id in brand:
            key = (brand[patient_id], route)
            wanted[key] = wanted.get(key, 0) + 1
    pools: dict[tuple[int, str], list] = {}
    for (product_id, route), n in wanted.items():
        pools[(product_id, route)] = list(
            Vial.objects.filter(status="in_stock", presentation__product_id=product_id,
                                presentation__product__route__in=[route, "IV_SC"], lot__status="released",
                                lot__expiry_date__gt=today, beyond_use_date__gt=today + timedelta(days=7))
            .order_by("pk").values_list("presentation__gtin", "lot__expiry_date", "lot__lot_number", "serial",
                                        "presentation__grams")[: 6 * n + 50])
    pairs: list[tuple[int, str]] = []
    for session_id, patient_id, route, ordered in sessions:
        if patient_id in severe or patient_id not in brand:
            continue
        pool = pools[(brand[patient_id], route)]
        remaining = ordered - given.get(session_id, Decimal("0"))
        kept, taken = [], 0
        for n, vial in enumerate(pool):
            if taken == 6 or remaining <= 0:
                kept += pool[n:]
                break
            g, e, l, s, grams = vial
            if grams <= remaining:
                taken += 1
                remaining -= grams
                pairs.append((session_id, element_string(gtin=g, expiry=e, lot=l, serial=s)))
            else:
                kept.append(vial)
        pools[(brand[patient_id], route)] = kept
    # Interleave sessions so concurrent clients rarely wait on the same session's lock.
    random.Random(3).shuffle(pairs)
    pairs = pairs[:count]
    if not pairs:
        raise SystemExit("No vial can still be dispensed to today's sessions: run `python -m bench generate` again.")
    if len(pairs) < count:
        print(f"note: only {len(pairs)} vials can still be dispensed to today's sessions (of {count} asked); "
              "run `python -m bench generate` again for a full run", file=sys.stderr)
    return pairs


# --- the run -----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def database_description() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        cursor.execute("select sqlite_version()")
        return f"SQLite {cursor.fetchone()[0]}"


def counts() -> str:
    from django.db import connection

    from inventory.models import Vial
    from traceability.models import Dispense, InfusionSession, Patient

    def estimate(model) -> int:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [model._meta.db_table])
                value = cursor.fetchone()[0]
                if value and value > 0:
                    return value
        return model.objects.count()

    history = sum(estimate(m.history.model) for m in _history_models())
    return (f"{estimate(Vial):,} vials, {estimate(Patient):,} patients, {estimate(InfusionSession):,} sessions, "
            f"{estimate(Dispense):,} dispenses, {history:,} history rows")


def _history_models():
    from django.apps import apps

    return [m for m in apps.get_models() if hasattr(m, "history") and hasattr(m.history, "model")]


def run(*, database_url: str, quick: bool, repeat: int | None, http: bool, workers: int | None, clients: int,
        markdown: bool, only: set[str] | None = None) -> int:
    from django.db import connection

    repeat = repeat or (3 if quick else 15)
    report = Report()
    load_before = os.getloadavg()
    started = time.monotonic()
    print(f"bench run on {database_description()}: {counts()}", file=sys.stderr, flush=True)
    keys = tokens()
    with in_process_requests():
        measure_in_process(report, keys, repeat=repeat, quick=quick, only=only)
    if http and (not only or "http" in only):
        connection.close()
        measure_http(report, keys, database_url=database_url, quick=quick, workers=workers, clients=clients)
    load_after = os.getloadavg()

    print()
    print(f"Database: {database_description()}, {counts()}")
    print(f"Machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(1 min); {time.monotonic() - started:.0f} s")
    print(f"Medians of {repeat} runs in process; HTTP through gunicorn (config/gunicorn.conf.py).")
    print()
    print(report.table(markdown=markdown))
    missed = [r.measure for r in report.rows if r.met is False]
    print()
    print("Every target met." if not missed else f"Targets missed: {', '.join(missed)}.")
    return 0


def measure_in_process(report: Report, keys: dict[str, str], *, repeat: int, quick: bool,
                       only: set[str] | None = None) -> None:
    from django.db import connection

    from inventory.models import Lot, Vial
    from inventory.services import location_by_code
    from labels.gs1 import parse_scan
    from recalls.models import Recall
    from recalls.selectors import lots_lookback
    from traceability.models import Patient
    from traceability.selectors import patient_history
    from bench.generate import BIG_LOT_NUMBER, HISTORY_PATIENT_MRN

    client = InProcess()
    tech, pharm, recall, audit = keys["technician"], keys["pharmacist"], keys["recall_coordinator"], keys["auditor"]

    def want(name: str) -> bool:
        return not only or name in only

    # Scan: what is this carton? Floor: parse the scan and fetch the vial by its unique index.
    barcodes = scan_barcodes(max(repeat, 20))
    if not barcodes:
        raise SystemExit("No vial on a shelf: run `python -m bench generate` first.")
    cycle = iter(barcodes * (repeat + 10))

    def scan():
        status, content = client.call("POST", "/api/scan", token=tech, body={"barcode": next(cycle)})
        check(status, content, "scan")

    def scan_floor():
        data = parse_scan(next(cycle))
        return Vial.objects.get(presentation__gtin=data.gtin, serial=data.serial)

    if want("scan"):
        # A scan reads only (timed checks it): each is committed, as the server's are.
        scan_time, scan_queries, _ = timed(scan, repeat=repeat * 4, rollback=False, read_only=True)
        floor_time, _, _ = timed(scan_floor, repeat=repeat * 4, rollback=False, read_only=True)
        ratio = scan_time / floor_time
        report.add("scan, in process", ms(scan_time), ms(floor_time), f"{ratio:.1f}×", str(scan_queries),
               "≤ 3× floor, ≤ 3 queries", ratio <= 3 and scan_queries <= 3)

    # Recall look-up and lookback of the lot with thousands of patients.
    big = Lot.objects.filter(lot_number=BIG_LOT_NUMBER).first()
    recall_id = Recall.objects.filter(recall_lots__lot=big).values_list("pk", flat=True).first() if big else None
    if big is None or recall_id is None:
        raise SystemExit(f"No lot {BIG_LOT_NUMBER} with a recall: run `python -m bench generate` first.")
    given = big.vials.filter(dispenses__isnull=False).count()

    # The look-up and lookback show the first page of patients (api.recalls.LOOKBACK_PAGE_SIZE);
    # their floor is the selector's reads for that page, without any output. The workbook holds
    # every patient: its floor is the whole lot's reads.
    from api.recalls import LOOKBACK_PAGE_SIZE

    def lookup_floor():
        return lots_lookback([big], patients=lambda everyone: everyone[:LOOKBACK_PAGE_SIZE])

    def whole_floor():
        return lots_lookback([big])

    floor_time, floor_queries, _ = timed(lookup_floor, repeat=repeat) if want("recall") else (1, 0, None)
    for name, path in ((f"recall look-up, first page of {LOOKBACK_PAGE_SIZE} patients", f"/api/recalls/lookup?lot={BIG_LOT_NUMBER}"),
                       (f"recall lookback, first page of {LOOKBACK_PAGE_SIZE} patients", f"/api/recalls/{recall_id}/lookback")):
        if not want("recall"):
            continue
        def call(path=path, name=name):
            status, content = client.call("GET", path, token=recall)
            check(status, content, name)
        elapsed, queries, _ = timed(call, repeat=repeat)
        report.add(f"{name}, lot of {given:,} dispensed", ms(elapsed), ms(floor_time), f"{elapsed / floor_time:.1f}×",
                   str(queries), "≤ 150 ms, constant queries", elapsed <= 0.150)

    def export():
        status, content = client.call("GET", f"/api/recalls/{recall_id}/export.xlsx", token=recall)
        check(status, content, "export")

    if want("export"):
        elapsed, queries, _ = timed(export, repeat=max(3, repeat // 3))
        floor_time, _, _ = timed(whole_floor, repeat=max(3, repeat // 3))
        report.add(f"recall export.xlsx, {given:,} dispensed", ms(elapsed), ms(floor_time), f"{elapsed / floor_time:.1f}×",
               str(queries), "≤ 1 s, linear", elapsed <= 1.0)

    # Bulk receive: a delivery of 1,000 cartons (100 with --quick), all-or-nothing. Floor: one
    # bulk INSERT of as many vials.
    size = 100 if quick else 1000
    location = location_by_code("S0-FRIDGE-A")
    seeds = iter(range(1, 10_000))

    def receive(n=size):
        status, content = client.call("POST", "/api/receipts", token=tech,
                                      body={"location": location.code, "scans": fresh_scans(n, seed=next(seeds))})
        check(status, content, "receive")

    def receive_floor():
        template = Vial.objects.filter(status="in_stock").order_by("pk").first()
        Vial.objects.bulk_create([
            Vial(presentation_id=template.presentation_id, lot_id=template.lot_id, serial=f"FLOOR{n:05d}",
                 location=location, beyond_use_date=template.beyond_use_date) for n in range(size)
        ])

    if want("receive"):
        elapsed, queries, _ = timed(receive, repeat=max(3, repeat // 3))
        _, small_queries, _ = timed(lambda: receive(size // 10), repeat=1, warmup=0)
        floor_time, _, _ = timed(receive_floor, repeat=max(3, repeat // 3))
        report.add(f"bulk receive, {size:,} scans", ms(elapsed), ms(floor_time), f"{elapsed / floor_time:.1f}×",
               f"{queries} ({size // 10} scans: {small_queries})", "≤ 1 s, statements not per scan",
               elapsed <= 1.0 and queries <= small_queries + 4)

    # One dispense in process: the statements it costs (its speed is the HTTP throughput below).
    pairs = dispense_workload(1) if want("dispense") else []

    def dispense():
        session_id, barcode = pairs[0]
        status, content = client.call("POST", f"/api/sessions/{session_id}/dispenses", token=tech,
                                      body={"barcode": barcode, "acknowledge": CAUTIONS})
        check(status, content, "dispense")

    if want("dispense"):
        elapsed, queries, _ = timed(dispense, repeat=repeat)
        report.add("dispense, in process", ms(elapsed), "—", "—", str(queries), "(statements)", None)

    # History export with our own writer (the "keep" figure): every history row of the
    # big lot and what it reached (vials, dispenses, sessions, recalls). Floor: none; rows/s.
    if want("export"):
        from audit.export import write_history_workbook
        from audit.selectors import parse_filters

        def history_export():
            return write_history_workbook(io.BytesIO(), parse_filters(lot=BIG_LOT_NUMBER), exported_by="bench")

        elapsed, queries, result = timed(history_export, repeat=max(3, repeat // 5), rollback=False)
        rows = result.rows
        report.add(f"history export, lot {BIG_LOT_NUMBER} ({rows:,} rows)", f"{rows / elapsed:,.0f} rows/s", "—", "—",
                   str(queries), "≈ 25,000 rows/s (keep)", None)

    # Patient history: the patient with 100 infusions, its first page (the newest). Floor: the
    # selector's queries for that page alone.
    from api.patients import HISTORY_PAGE_SIZE

    patient = Patient.objects.filter(mrn=HISTORY_PATIENT_MRN).first()
    sessions = patient.sessions.count() if patient else 0

    def history():
        # A pharmacist: a technician sees only the patients of the coming days (core.roles).
        status, content = client.call("GET", f"/api/patients/{patient.pk}/history", token=pharm)
        check(status, content, "patient history")

    def history_floor():
        return list(patient_history(patient)[:HISTORY_PAGE_SIZE])

    if want("history"):
        elapsed, queries, _ = timed(history, repeat=repeat, rollback=False, read_only=True)
        floor_time, _, _ = timed(history_floor, repeat=repeat, rollback=False, read_only=True)
        report.add(f"patient history ({sessions} sessions), first page of {HISTORY_PAGE_SIZE}", ms(elapsed), ms(floor_time), f"{elapsed / floor_time:.1f}×",
               str(queries), "≤ 50 ms", elapsed <= 0.050)

    # First pages of the lists: ≤ 50 ms, and the same queries for a page of 5 as for 50.
    lists = [
        ("vials", "/api/vials/", tech), ("lots", "/api/lots/", tech), ("patients", "/api/patients/", tech),
        ("sessions", "/api/sessions/", tech), ("dispenses", "/api/dispenses/", tech), ("flags", "/api/flags/", tech),
        ("recalls", "/api/recalls/", recall), ("notifications", f"/api/recalls/{recall_id}/notifications", recall),
        ("expiring stock (30 days)", "/api/stock/expiring?within_days=30", tech),
        ("audit history", "/api/audit/history/", audit), ("access log", "/api/audit/access/", audit),
    ]
    for name, path, token in lists:
        if not (want("lists") or want(name)):
            continue

        def page(path=path, token=token, size=50):
            sep = "&" if "?" in path else "?"
            status, content = client.call("GET", f"{path}{sep}page_size={size}", token=token)
            check(status, content, name)

        elapsed, queries, _ = timed(page, repeat=repeat, rollback=False, read_only=True)
        _, few, _ = timed(lambda: page(size=5), repeat=1, warmup=0, rollback=False, read_only=True)
        if name == "audit history":
            # Merged over every audited model: one query per model and per kind of label on the
            # page, so a page of 5 (fewer models on it) costs fewer. Bounded by the models, not the rows.
            shown, constant = f"{queries} (≤ 1 + 3 per model)", True
        else:
            shown, constant = f"{queries}" + ("" if few == queries else f" (page of 5: {few})"), few == queries
        report.add(f"list {name}, first page", ms(elapsed), "—", "—", shown, "≤ 50 ms, constant queries",
                   elapsed <= 0.050 and constant)
    connection.close()


def measure_http(report: Report, keys: dict[str, str], *, database_url: str, quick: bool, workers: int | None,
                 clients: int) -> None:
    tech = keys["technician"]
    n_scans = 60 if quick else 600
    barcodes = scan_barcodes(n_scans, seed=2)
    n_dispenses = 16 * 3 if quick else 16 * 50
    pairs = dispense_workload(n_dispenses + 16)
    from django.db import connection

    connection.close()
    with gunicorn(database_url, workers) as port:
        # Every worker warm (imports, connection) before anything is timed.
        load(port, [("GET", "/api/auth/me", tech, None)] * 40, clients=8)
        scans = [("POST", "/api/scan", tech, {"barcode": b, "acknowledge": CAUTIONS}) for b in barcodes]
        _, floor_lat, _ = load(port, [("GET", "/api/auth/me", tech, None)] * len(scans), clients=2)
        _, lat, statuses = load(port, scans, clients=2)
        if set(statuses) != {200}:
            raise SystemExit(f"scan over HTTP: {statuses}")
        p99, floor_p99 = percentile(lat, 99), percentile(floor_lat, 99)
        report.add(f"scan over HTTP p99 ({len(scans)} scans, 2 clients)", ms(p99), ms(floor_p99),
                   f"{p99 / floor_p99:.1f}×", "—", "≤ 25 ms", p99 <= 0.025,
                   note=f"p50 {ms(percentile(lat, 50))}")
        report.add("scan over HTTP p50", ms(percentile(lat, 50)), ms(percentile(floor_lat, 50)),
                   f"{percentile(lat, 50) / percentile(floor_lat, 50):.1f}×", "—", "—", None)

        warm = [("POST", f"/api/sessions/{s}/dispenses", tech, {"barcode": b, "acknowledge": CAUTIONS}) for s, b in pairs[:16]]
        load(port, warm, clients=clients)
        work = [("POST", f"/api/sessions/{s}/dispenses", tech, {"barcode": b, "acknowledge": CAUTIONS}) for s, b in pairs[16:]]
        floor_wall, floor_lat, _ = load(port, [("GET", "/api/auth/me", tech, None)] * len(work), clients=clients)
        wall, lat, statuses = load(port, work, clients=clients)
        if set(statuses) != {201}:
            raise SystemExit(f"dispense over HTTP: {statuses}")  # a refusal's code is in the server's log
        rate, floor_rate = len(work) / wall, len(work) / floor_wall
        report.add(f"dispense throughput ({clients} clients)", f"{rate:.0f} req/s", f"{floor_rate:.0f} req/s",
                   f"{floor_rate / rate:.1f}×", "—", "≥ 100 req/s", rate >= 100)
        p99 = percentile(lat, 99)
        report.add(f"dispense p99 ({clients} clients)", ms(p99), ms(percentile(floor_lat, 99)),
                   f"{p99 / percentile(floor_lat, 99):.1f}×", "—", "≤ 250 ms", p99 <= 0.250)
