"""``plotsm report``: the offline HTML report of a run (:mod:`plotsm.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from plotsm.cli.console import out


def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    to: Annotated[Optional[Path], typer.Option("--to", help="HTML file to write (default: <out>/report.html).")] = None,
    date_from: Annotated[Optional[str], typer.Option("--date-from", metavar="YYYY-MM-DD", help="First UTC date shown.")] = None,
    date_to: Annotated[Optional[str], typer.Option("--date-to", metavar="YYYY-MM-DD", help="Last UTC date shown.")] = None,
    weather_csv: Annotated[Optional[Path], typer.Option("--weather-csv", help="Daily rain (date,precipitation_mm) drawn under each parcel's series.")] = None,
    max_mb: Annotated[float, typer.Option("--max-mb", help="Size limit of the file, MB; past it the map shows an even sample of the parcels (the statistics still cover them all).")] = 10.0,
) -> None:
    """One self-contained HTML file of a run: the parcels coloured by moisture with a date slider, each parcel's
    series on click, statistics per date, networks, inputs and settings. Opens offline in any browser."""
    from plotsm.errors import UsageError
    from plotsm.report import build_report

    for name, value in (("--date-from", date_from), ("--date-to", date_to)):
        if value is not None and not _is_day(value):
            raise UsageError(f"{name} {value}: expected a UTC date YYYY-MM-DD.")
    if max_mb <= 0:
        raise UsageError(f"--max-mb {max_mb}: expected a positive size.")
    path, data = build_report(out_dir, to, date_from=date_from, date_to=date_to, weather_csv=weather_csv,
                              max_bytes=int(max_mb * 1e6))
    for note in data.notes:
        out.print(escape(f"note: {note}"), highlight=False, soft_wrap=True)
    size = path.stat().st_size / 1e6
    out.print(escape(f"wrote {path} ({size:.1f} MB: {data.n_shown:,} parcels, {data.n_dates} acquisitions); open it "
                     f"in a browser: file://{path.resolve()}"), highlight=False, soft_wrap=True)


def _is_day(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
