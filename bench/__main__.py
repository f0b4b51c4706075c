"""The benchmark's command line.

    python -m bench generate --vials 1000000 --patients 100000 [--seed N] [--today YYYY-MM-DD]
    python -m bench run [--repeat N] [--skip-http]
    python -m bench generate --quick && python -m bench run --quick      # 10,000 vials, as CI runs it

The database is BENCH_DATABASE_URL (or --database), never DATABASE_URL: `generate` empties it
first. Default: var/bench.sqlite3 in this checkout. For PostgreSQL, create the database first:
    createdb -h 127.0.0.1 -U postgres bench
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench generate ...
"""

import argparse
import os
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}"
QUICK_VIALS, QUICK_PATIENTS = 10_000, 1_000


def database_url(given: str | None) -> str:
    return given or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE


def setup_django(url: str) -> None:
    if url.startswith("sqlite:"):
        (ROOT / "var").mkdir(exist_ok=True)
    os.environ["DATABASE_URL"] = url
    # The benchmark measures a production configuration: persistent connections, no DEBUG.
    os.environ.setdefault("CONN_MAX_AGE", "600")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("TEST_DATABASE_NAME", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="database URL (default: BENCH_DATABASE_URL or var/bench.sqlite3)")
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="empty the benchmark database and fill it")
    gen.add_argument("--vials", type=int, default=1_000_000)
    gen.add_argument("--patients", type=int, default=100_000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--today", type=date.fromisoformat, help="the day the data ends (default: today)")
    gen.add_argument("--quick", action="store_true", help=f"{QUICK_VIALS:,} vials and {QUICK_PATIENTS:,} patients")

    run = commands.add_parser("run", help="measure, and print the table")
    run.add_argument("--quick", action="store_true", help="few repetitions, few HTTP requests (checks the benchmark works)")
    run.add_argument("--repeat", type=int, help="repetitions per in-process figure (default 15, quick 3)")
    run.add_argument("--skip-http", action="store_true", help="no gunicorn figures")
    run.add_argument("--workers", type=int, help="gunicorn workers (default: the config's, from the core count)")
    run.add_argument("--clients", type=int, default=16, help="concurrent clients for the dispense throughput")
    run.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    run.add_argument("--only", help="comma-separated: scan, recall, export, receive, dispense, history, lists, http, "
                                    "or one list's name")

    args = parser.parse_args(argv)
    url = database_url(args.database)
    setup_django(url)
    if args.command == "generate":
        from bench.generate import generate

        vials, patients = (QUICK_VIALS, QUICK_PATIENTS) if args.quick else (args.vials, args.patients)
        result = generate(vials=vials, patients=patients, seed=args.seed, today=args.today)
        for key, value in result.items():
            print(f"{key:>20}: {value:,}" if isinstance(value, int) else f"{key:>20}: {value}")
        return 0
    from bench.run import run as run_bench

    return run_bench(
        database_url=url,
        quick=args.quick,
        repeat=args.repeat,
        http=not args.skip_http,
        workers=args.workers,
        clients=args.clients,
        markdown=args.markdown,
        only=set(args.only.split(",")) if args.only else None,
    )


if __name__ == "__main__":
    sys.exit(main())
