"""``plotsm report``: one self-contained HTML file — the map of the parcels coloured by moisture with a date
slider, the series of a clicked parcel, the statistics per date, the networks, inputs and settings of the run,
and the probe metrics of ``plotsm validate`` when present.

The page carries its data (:mod:`plotsm.report.data`) as JSON in a ``<script type="application/json">`` element,
its style and its code inline (``assets/``): no CDN, no map tiles, no font, nothing fetched, so it opens offline
in any current browser and can be mailed. The map is drawn on a ``<canvas>`` (20,000 parcels redraw in a few
tens of milliseconds, where as many SVG elements would not), the series as inline SVG.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

from plotsm.atomic import atomic_path, writable_file
from plotsm.report.data import MAX_BYTES, ReportData, collect

ASSETS = Path(__file__).parent / "assets"


def _json_for_script(page: dict) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` sequence can close it)."""
    return json.dumps(page, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render(data: ReportData) -> str:
    """The HTML text of a report."""
    page = data.page
    notes = "".join(f'<div class="note">{html.escape(n)}</div>' for n in page["notes"])
    first, last = page["dates"][0]["datetime_utc"][:10], page["dates"][-1]["datetime_utc"][:10]
    fields = {
        "__TITLE__": html.escape(page["title"]),
        "__SUBTITLE__": html.escape(f"{len(page['dates'])} acquisitions, {first} to {last}"),
        "__VERSION__": html.escape(str(page["version"])),
        "__CRS__": html.escape(str(page["crs"])),
        "__NPARCELS__": f"{page['n_parcels']:,}",
        "__NDATES__": str(len(page["dates"])),
        "__MADE__": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "__NOTES__": notes,
        "__CSS__": (ASSETS / "report.css").read_text(encoding="utf-8"),
    }
    text = (ASSETS / "report.html").read_text(encoding="utf-8")
    for key, value in fields.items():
        text = text.replace(key, value)
    script = (ASSETS / "report.js").read_text(encoding="utf-8").replace("</", "<\\/")
    return text.replace("__DATA__", _json_for_script(page)).replace("__JS__", script)


def build_report(out_dir: str | Path, to: str | Path | None = None, *, date_from: str | None = None,
                 date_to: str | None = None, weather_csv: str | Path | None = None,
                 max_bytes: int = MAX_BYTES) -> tuple[Path, ReportData]:
    """Write the report of the run in ``out_dir`` to ``to`` (default ``<out>/report.html``), atomically."""
    target = Path(to) if to is not None else Path(out_dir) / "report.html"
    writable_file(target, "--to")
    data = collect(out_dir, date_from=date_from, date_to=date_to, weather_csv=weather_csv, max_bytes=max_bytes)
    text = render(data)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target, data
