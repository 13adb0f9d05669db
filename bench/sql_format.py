"""`plotsm sql --format table|json|csv` on one result of ≥ 15,000 rows: seconds of each format and ratio to CSV.

Target (issue: table and json took 13-16 s where CSV took 1.8 s for 15,549 rows): table and json within 2× of CSV.
Two timings per format, best of ``--repeat``: the whole command in a fresh process (``plotsm sql --query …`` with
stdout to a file, as a user runs it: interpreter start, imports, store open, query and printing), and the
formatting alone in this process (``plotsm.cli._format_table`` of the query's Arrow table, stdout to /dev/null).

The store: ``--out DIR`` of an earlier run, or else the demo (``plotsm demo``: 2,195 parcels × 4 acquisitions)
built in a temporary folder with its acquisitions copied ``--copies`` times under new ids and dates, so that the
default gives 2 × 8,780 = 17,560 rows. The query is the columns of ``sql/export.sql`` over all acquisitions (18
columns: ids, a timestamp, text, integers and doubles, some NULL).
Run: ``python bench/sql_format.py [--out DIR] [--copies N] [--repeat R] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import best_of

from plotsm.cli import _format_table
from plotsm.demo import run_demo
from plotsm.store import Store

QUERY = """
SELECT m.parcel_id, m.acquisition_id, a.datetime_utc, a.platform, a.orbit_direction, a.relative_orbit,
       m.mv_pct, m.status, m.network, m.model_version, o.n_valid, o.n_pixels, o.valid_fraction, o.vv_db,
       o.vv_linear_std, o.theta_deg, o.ndvi, o.slope_deg
FROM moisture AS m
JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
LEFT JOIN observations AS o ON o.parcel_id = m.parcel_id AND o.acquisition_id = m.acquisition_id
ORDER BY m.parcel_id, a.datetime_utc, m.acquisition_id
"""
FORMATS = ("csv", "json", "table")


def build_store(out_dir: Path, copies: int) -> None:
    """The demo's store, its acquisitions (with their observations and moisture) present ``copies`` times."""
    run_demo(out_dir)
    with Store(out_dir) as store:
        for k in range(1, copies):
            store.sql(
                "INSERT INTO acquisitions SELECT * REPLACE (acquisition_id || $suffix AS acquisition_id, "
                "datetime_utc + to_days(CAST($days AS INTEGER)) AS datetime_utc) FROM acquisitions "
                "WHERE NOT contains(acquisition_id, '_copy')", {"suffix": f"_copy{k}", "days": 48 * k})
            for table in ("observations", "moisture"):
                store.sql(f"INSERT INTO {table} SELECT * REPLACE (acquisition_id || $suffix AS acquisition_id) "
                          f"FROM {table} WHERE NOT contains(acquisition_id, '_copy')", {"suffix": f"_copy{k}"})


def command_seconds(out_dir: Path, fmt: str, repeat: int, sink: Path) -> float:
    """Best wall time of ``plotsm sql --format fmt --query QUERY`` in a new process, stdout to ``sink``."""
    cmd = [sys.executable, "-c", "from plotsm.cli import main; main()", "-q", "sql", "--out", str(out_dir),
           "--format", fmt, "--query", QUERY]

    def run() -> None:
        with open(sink, "w", encoding="utf-8") as f:
            subprocess.run(cmd, stdout=f, check=True)

    return best_of(run, repeat)


def format_seconds(table: object, fmt: str, repeat: int) -> float:
    """Best wall time of printing ``table`` as ``fmt`` (``_format_table``) to /dev/null."""

    def run() -> None:
        with open(os.devnull, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
            _format_table(table, fmt)

    return best_of(run, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder of an earlier run (default: a copied demo store)")
    ap.add_argument("--copies", type=int, default=2, help="copies of the demo's acquisitions (default 2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plotsm-bench-sql-") as tmp:
        out_dir = args.out
        if out_dir is None:
            out_dir = Path(tmp) / "demo"
            build_store(out_dir, args.copies)
        with Store(out_dir, read_only=True) as store:
            table = store.sql(QUERY)
        results = {}
        for fmt in FORMATS:
            results[fmt] = {
                "command_s": command_seconds(out_dir, fmt, args.repeat, Path(tmp) / f"out.{fmt}"),
                "format_s": format_seconds(table, fmt, args.repeat),
            }
    for fmt in FORMATS:
        for key in ("command", "format"):
            results[fmt][f"{key}_vs_csv"] = results[fmt][f"{key}_s"] / results["csv"][f"{key}_s"]
    if args.json:
        print(json.dumps({"rows": table.num_rows, "columns": table.num_columns, **results}, indent=2))
        return
    print(f"plotsm sql on {table.num_rows:,} rows × {table.num_columns} columns (best of {args.repeat})")
    print(f"{'format':<8}{'command s':>11}{'× csv':>8}{'format s':>11}{'× csv':>8}")
    for fmt, r in results.items():
        print(f"{fmt:<8}{r['command_s']:>11.2f}{r['command_vs_csv']:>8.2f}{r['format_s']:>11.3f}{r['format_vs_csv']:>8.2f}")


if __name__ == "__main__":
    main()
