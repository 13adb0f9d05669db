"""``plotsm validate``: a run's moisture against soil-moisture probes (ISMN files or a CSV)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from plotsm.cli.console import info, out


def _number(value: Any, fmt: str) -> str:
    """``value`` formatted, or "" when it is NaN (no correlation with fewer than 3 pairs, no pairs at all)."""
    number = float(value)
    return "" if math.isnan(number) else format(number, fmt)


def validate(
    probes: Annotated[Path, typer.Option("--probes", help="ISMN .stm file, probe CSV, or a folder of them (searched recursively).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    max_depth_m: Annotated[float, typer.Option("--max-depth-m", help="Skip probes whose top is deeper than this (m).")] = 0.1,
    window: Annotated[str, typer.Option("--window", help="Largest time between an acquisition and its probe reading: 12h, 90min, 1d.")] = "12h",
    match: Annotated[str, typer.Option("--match", help="contains (the parcel the probe is in) or nearest:50m (the nearest parcel within 50 m).")] = "contains",
    to: Annotated[Optional[Path], typer.Option("--to", help="Folder of the results (default: <out>/validation/).")] = None,
    csv_unit: Annotated[Optional[str], typer.Option("--csv-unit", help="m3/m3 or vol.%, for CSVs whose header and columns state no unit.")] = None,
) -> None:
    """Compare the stored moisture with soil-moisture probes: metrics per station and pooled (n, bias, RMSD,
    ubRMSD, R, p, slope; vol.%), metrics.csv, matches.csv, scatter.png and series_<station>.png.

    Probes: ISMN .stm files (header values or CEOP separated; readings flagged G only) or a CSV with columns
    station, lat, lon, time, soil_moisture and its unit (column soil_moisture_m3m3 or soil_moisture_pct, a unit
    column, or --csv-unit). Each station is matched to a parcel, each estimate with status ok to the station's
    nearest reading within --window."""
    from plotsm.validate import DEPTH_NOTE, validate_store

    result = validate_store(out_dir, probes, max_depth_m=max_depth_m, window=window, match=match, to=to,
                            csv_unit=csv_unit)
    for note in result.notes:
        info(f"note: {escape(note)}")
    out.print(f"note: {DEPTH_NOTE}.", highlight=False, soft_wrap=True)
    header = f"{'station':<20} {'parcel':<12} {'n':>4} {'bias':>7} {'RMSD':>6} {'ubRMSD':>6} {'R':>6} {'p':>8} {'slope':>6}"
    out.print(header, highlight=False, markup=False, soft_wrap=True)
    for row in result.metrics.itertuples(index=False):
        out.print(f"{str(row.station)[:20]:<20} {str(row.parcel_id)[:12]:<12} {row.n:>4} {_number(row.bias, '+.2f'):>7} "
                  f"{_number(row.rmsd, '.2f'):>6} {_number(row.ubrmsd, '.2f'):>6} {_number(row.r, '.3f'):>6} "
                  f"{_number(row.p_value, '.2g'):>8} {_number(row.slope, '.2f'):>6}", highlight=False, markup=False, soft_wrap=True)
    out.print("(vol.%)", style="dim")
    for path in result.files:
        out.print(f"wrote {escape(str(path))}", highlight=False, soft_wrap=True)
