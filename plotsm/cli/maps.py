"""``plotsm map``: a quick-look PNG of one date's moisture (:func:`plotsm.report.quicklook.quicklook_png`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from plotsm.cli.console import out


def map_command(
    date: Annotated[str, typer.Option("--date", help="UTC date of the acquisition to draw (YYYY-MM-DD); plotsm sql summary lists them.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    to: Annotated[Optional[Path], typer.Option("--to", help="PNG to write (default: <out>/maps/moisture_<acquisition>.png).")] = None,
    acquisition: Annotated[Optional[str], typer.Option("--acquisition", help="Acquisition id, when the date has several.")] = None,
    north_arrow: Annotated[bool, typer.Option("--north-arrow/--no-north-arrow", help="Draw a north arrow (grid north).")] = True,
    vmin: Annotated[Optional[float], typer.Option("--vmin", help="Bottom of the colour scale, vol.% (default 0).")] = None,
    vmax: Annotated[Optional[float], typer.Option("--vmax", help="Top of the colour scale, vol.% (default 45).")] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution of the PNG, dots per inch.")] = 150,
) -> None:
    """A quick-look PNG of one date: parcels coloured by moisture (vol.%), parcels not ok hatched grey, with a
    colour bar, a scale bar, the counts per status and the date in the title."""
    from plotsm.atomic import writable_file
    from plotsm.report.quicklook import quicklook_png

    if to is not None:
        writable_file(to, "--to")
    path = quicklook_png(out_dir, date, to, acquisition=acquisition, north_arrow=north_arrow, vmin=vmin, vmax=vmax,
                         dpi=dpi)
    out.print(f"wrote {escape(str(path))}", highlight=False, soft_wrap=True)
