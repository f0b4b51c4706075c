"""Export benchmark: our streamed history export vs django-import-export, same rows, same run.

    .venv/bin/python bench/history_rows.py --rows 200000
    .venv/bin/python bench/export_bench.py                       # all cases on the vials history
    .venv/bin/python bench/export_bench.py --cases ours-stream --tracemalloc

Each case runs in its own process, so its peak resident memory (getrusage ru_maxrss) is its own;
`baseline` is the same process's RSS after Django has started, before exporting. `--tracemalloc`
adds the peak of Python allocations (slower; run it separately from the timing). The compared
sheet is the vials history (80 % of the generated rows); `ours-all` exports every sheet.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
CASES = ("ours-stream", "ours-xlsxwriter", "ours-openpyxl", "import-export", "ours-all")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str, *, trace: bool) -> dict:
    from bench.history_rows import setup_django

    setup_django()
    import tracemalloc

    from inventory.models import Vial

    path = OUT / f"{case}.xlsx"
    baseline = _rss_mb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    if case.startswith("ours"):
        from audit.export import write_history_workbook
        from audit.selectors import parse_filters

        from bench.writers import OpenpyxlBook, XlsxWriterBook

        book = {"ours-openpyxl": OpenpyxlBook, "ours-xlsxwriter": XlsxWriterBook}.get(case)
        filters = parse_filters(model=None if case == "ours-all" else "vials")
        rows = write_history_workbook(path, filters, exported_by="bench", book_factory=book).rows
    else:
        from import_export import resources

        class VialHistoryResource(resources.ModelResource):
            class Meta:
                model = Vial.history.model

        queryset = Vial.history.model.objects.order_by("id", "history_date", "history_id")
        dataset = VialHistoryResource().export(queryset=queryset)
        path.write_bytes(dataset.export("xlsx"))
        rows = len(dataset)
    seconds = time.perf_counter() - started
    result = {
        "case": case,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "file_mb": round(path.stat().st_size / 1e6, 1),
    }
    if trace:
        result["python_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="ours-stream,ours-xlsxwriter,import-export", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(run_case(args.child, trace=args.tracemalloc)))
        return

    results = []
    for case in args.cases.split(","):
        command = [sys.executable, __file__, "--child", case] + (["--tracemalloc"] if args.tracemalloc else [])
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"{case} failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)

    header = "| case | rows | seconds | rows/s | peak RSS MB | baseline RSS MB | file MB |"
    print("\n" + header + (" Python peak MB |" if args.tracemalloc else ""))
    print("|" + " --- |" * (header.count("|") - 1 + (1 if args.tracemalloc else 0)))
    for r in results:
        line = (
            f"| {r['case']} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {r['peak_rss_mb']} "
            f"| {r['baseline_rss_mb']} | {r['file_mb']} |"
        )
        print(line + (f" {r['python_peak_mb']} |" if args.tracemalloc else ""))
    base = next((r for r in results if r["case"] == "import-export"), None)
    if base:
        for r in results:
            if r is not base and r["rows"] == base["rows"]:
                print(f"{r['case']}: {r['rows_per_s'] / base['rows_per_s']:.1f}x django-import-export's rows/s")


if __name__ == "__main__":
    main()
