"""The benchmark itself keeps working: `python -m bench generate --quick` and `python -m bench run
--quick` on a database of their own, as a person would run them. No timing is asserted (speed
is what the benchmark reports, not what a test can promise on a shared machine); the query counts
in its table are."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import dj_database_url
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_database(tmp_path):
    """A database for the benchmark alone, of the engine the suite runs on."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield f"sqlite:///{tmp_path / 'bench.sqlite3'}"
        return
    import psycopg

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    name = f"bench_{(os.environ.get('TEST_DATABASE_NAME') or 'test')}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(host=config["HOST"] or None, port=config["PORT"] or None, user=config["USER"] or None,
                            password=config["PASSWORD"] or None, dbname="postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def bench(database: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_NAME")}
    done = subprocess.run([sys.executable, "-m", "bench", "--database", database, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def table(output: str) -> dict[str, dict[str, str]]:
    lines = [line for line in output.splitlines() if line.startswith("|")]
    head = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(head, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]
    return {row["measure"]: row for row in rows}


@pytest.mark.bench
def test_the_quick_benchmark_generates_a_database_and_prints_every_figure_with_its_queries(bench_database):
    generated = bench(bench_database, "generate", "--quick")
    assert "vials: 10,000" in generated and "patients: 1,000" in generated

    rows = table(bench(bench_database, "run", "--quick", "--markdown"))

    def row(prefix: str) -> dict[str, str]:
        return next(r for name, r in rows.items() if name.startswith(prefix))

    for prefix in ("scan, in process", "recall look-up", "recall lookback", "recall export.xlsx", "bulk receive",
                   "dispense, in process", "patient history", "list vials", "list sessions", "list audit history",
                   "scan over HTTP p99", "dispense throughput", "dispense p99"):
        assert row(prefix)["median"], prefix
    # A scan of a vial on the shelf: the caller's token with their roles, the vial with all it shows.
    assert row("scan, in process")["queries"] == "2"
    # A delivery of a hundred cartons costs the statements of ten, give or take an INSERT split in
    # two (SQLite takes at most 999 parameters a statement: 99 vials).
    receive = row("bulk receive")["queries"]
    hundred, ten = int(receive.split(" ")[0]), int(receive.split(": ")[1].rstrip(")"))
    assert 0 <= hundred - ten <= 2
    # Every list costs the same queries for a page of 5 as for a page of 50.
    assert all("page of 5" not in r["queries"] for name, r in rows.items() if name.startswith("list "))
