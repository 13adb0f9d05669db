"""A quick-look PNG of one acquisition's moisture (``plotsm map``): parcels coloured by ``mv_pct``, the others apart.

The map is drawn by matplotlib on its Agg canvas (a :class:`~matplotlib.figure.Figure` of its own, never
pyplot's global state, so it is safe in a server or a thread) in the parcels' CRS if it is projected, else their
UTM zone, so that the scale bar is in metres or kilometres and the north arrow points to grid north. Parcels with
status ``ok`` are filled with their moisture on one colour scale (:data:`DEFAULT_RANGE`, fixed so that the maps of
a series compare; the colour bar is in vol.%); parcels with another status are light grey with a hatch of their
own and a dark outline, and the legend gives the count of parcels per status. The title gives the acquisition's
UTC date and time and its id. The PNG is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import math
import os
from datetime import date as Date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from shapely import box

from plotsm.atomic import atomic_path, writable_dir
from plotsm.errors import UsageError, option
from plotsm.export import parse_date, moisture_frame
from plotsm.report.rasters import projected_crs
from plotsm.store import Store

#: Colour scale of mv_pct, vol.%: 0 to the top of the widest network's range (``all``: 2–45 vol.%).
DEFAULT_RANGE = (0.0, 45.0)
#: Dry → wet: yellow → green → blue (matplotlib's ColorBrewer ``YlGnBu``, readable in grey and by most
#: colour-blind readers).
DEFAULT_CMAP = "YlGnBu"
NOT_OK_FACE = "#e0e0e0"
NOT_OK_EDGE = "#4d4d4d"
#: One hatch per status that is not ``ok``, in this order (the statuses of README "Status flags").
HATCHES = {"no_data": "////", "too_few_pixels": "....", "ndvi_above_max": "\\\\\\\\", "slope_above_max": "xxxx",
           "outside_domain": "----"}
FIGURE_WIDTH_IN = 10.0
DPI = 150


def default_png(out_dir: str | os.PathLike[str], acquisition_id: str) -> Path:
    """Where ``plotsm map`` writes by default: ``<out_dir>/maps/moisture_<acquisition_id>.png``."""
    return Path(out_dir) / "maps" / f"moisture_{acquisition_id}.png"


def quicklook_png(
    out_dir: str | os.PathLike[str],
    date: str | Date,
    to: str | os.PathLike[str] | None = None,
    *,
    acquisition: str | None = None,
    north_arrow: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    dpi: int = DPI,
) -> Path:
    """Draw the moisture of the run in ``out_dir`` on UTC ``date`` into the PNG ``to`` and return its path.

    ``to``: default ``<out_dir>/maps/moisture_<acquisition_id>.png``. A date without acquisitions is a UsageError
    listing the available dates; a date with several needs ``acquisition`` (one of their ids). ``vmin``/``vmax``:
    the colour scale in vol.% (default :data:`DEFAULT_RANGE`).
    """
    day = parse_date(date)
    if day is None:
        raise UsageError(f"{option('date')}: a UTC date is required, such as 2024-04-06.")
    low, high = DEFAULT_RANGE[0] if vmin is None else vmin, DEFAULT_RANGE[1] if vmax is None else vmax
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"{option('vmin')} {low} and {option('vmax')} {high}: expected finite vol.% with vmin < vmax.")
    if dpi < 30:
        raise UsageError(f"{option('dpi', dpi)}: expected at least 30 dots per inch.")
    with Store(Path(out_dir), read_only=True) as store:
        frame = moisture_frame(store, day)
    ids = sorted(frame["acquisition_id"].unique())
    if acquisition is None and len(ids) > 1:
        raise UsageError(f"{day}: {len(ids)} acquisitions ({', '.join(ids)}). Pass {option('acquisition')} with one.")
    acq_id = ids[0] if acquisition is None else acquisition
    if acq_id not in ids:
        raise UsageError(f"{option('acquisition', acq_id)}: not on {day}. Acquisitions that day: {', '.join(ids)}.")
    rows = frame[frame["acquisition_id"] == acq_id]
    rows = rows[~(rows.geometry.isna() | rows.geometry.is_empty)]
    if len(rows) == 0:
        raise UsageError(f"{acq_id}: no parcel with a geometry to draw. Store the parcels' geometries first.")
    target = Path(to) if to is not None else default_png(out_dir, acq_id)
    if target.suffix.lower() != ".png":
        raise UsageError(f"{option('to', target)}: the quick-look is a PNG; pass a name ending in .png.")
    writable_dir(target.parent if str(target.parent) else Path("."), "--to")
    figure = draw_map(rows.to_crs(projected_crs(rows)), acq_id, rows["datetime_utc"].iloc[0],
                      north_arrow=north_arrow, vrange=(low, high), cmap=cmap)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return target


def draw_map(rows: gpd.GeoDataFrame, acq_id: str, when: Any, *, north_arrow: bool = True,
             vrange: tuple[float, float] = DEFAULT_RANGE, cmap: str = DEFAULT_CMAP) -> Any:
    """The matplotlib Figure of one acquisition's rows (projected CRS in metres): see the module docstring."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ok = (rows["status"] == "ok").to_numpy() & rows["mv_pct"].notna().to_numpy()
    x0, y0, x1, y1 = map_extent(rows, ok)
    outside = int((~rows.intersects(box(x0, y0, x1, y1))).sum())
    aspect = max(0.25, min(4.0, (y1 - y0) / max(x1 - x0, 1e-9)))
    figure = Figure(figsize=(FIGURE_WIDTH_IN, FIGURE_WIDTH_IN * aspect * 0.82 + 2.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    norm = Normalize(*vrange)
    bar = figure.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.9, pad=0.01, extend="both")
    bar.set_label("soil moisture mv_pct (vol.%)")
    handles = [Patch(facecolor=bar.cmap(0.6), edgecolor="none", label=f"ok: {int(ok.sum())} (colour scale)")]
    if ok.any():
        good = rows[ok].assign(_mv=rows.loc[ok, "mv_pct"].to_numpy(dtype="float64"))
        good.plot(column="_mv", ax=ax, cmap=cmap, norm=norm, edgecolor="face", linewidth=0.2)
    statuses = rows.loc[~ok, "status"].fillna("no_data").astype(str)
    for status, count in statuses.value_counts().sort_index().items():
        hatch = HATCHES.get(str(status), "++++")
        rows[~ok][statuses == status].plot(ax=ax, facecolor=NOT_OK_FACE, edgecolor=NOT_OK_EDGE, hatch=hatch,
                                           linewidth=0.6)
        handles.append(Patch(facecolor=NOT_OK_FACE, edgecolor=NOT_OK_EDGE, hatch=hatch,
                             label=f"{status}: {count} (no moisture)"))
    ax.set_aspect("equal")
    pad = 0.02 * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_facecolor("white")
    _scale_bar(ax, x1 - x0)
    if north_arrow:
        ax.annotate("N", xy=(0.965, 0.97), xytext=(0.965, 0.89), xycoords="axes fraction", ha="center",
                    va="center", fontsize=12, fontweight="bold",
                    arrowprops={"facecolor": "black", "width": 3, "headwidth": 10, "headlength": 10},
                    bbox={"boxstyle": "circle,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    stamp = when.strftime("%Y-%m-%d %H:%M UTC") if hasattr(when, "strftime") else str(when)
    ax.set_title(f"Soil moisture {stamp}   ({acq_id})", fontsize=13, loc="left")
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), frameon=False,
                  title=f"parcels per status ({len(rows)} in all" + (
                      f"; {outside} outside the map, away from the parcels with moisture)" if outside else ")"),
                  fontsize=9, title_fontsize=9)
    return figure


def map_extent(rows: gpd.GeoDataFrame, ok: np.ndarray) -> tuple[float, float, float, float]:
    """The extent drawn: the parcels with moisture (all parcels when none has), so that a stray parcel far away
    (outside the rasters, no data) does not shrink the map to a corner; the legend counts what is left out."""
    x0, y0, x1, y1 = (rows[ok] if ok.any() else rows).total_bounds
    return float(x0), float(y0), float(x1), float(y1)


def _scale_bar(ax: Any, width_m: float) -> None:
    """A bar of a round length (1, 2 or 5 × 10ⁿ m) about a fifth of the map's width, bottom left."""
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = max(width_m / 5.0, 1e-6)
    power = 10.0 ** math.floor(math.log10(target))
    length = max((m * power for m in (1.0, 2.0, 5.0) if m * power <= target), default=power)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    bar = AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.4, borderpad=0.6, sep=4,
                          frameon=True, size_vertical=max(length / 25.0, np.finfo(float).eps),
                          fontproperties=FontProperties(size=10))
    bar.patch.set_alpha(0.85)
    ax.add_artist(bar)


__all__ = ["DEFAULT_CMAP", "DEFAULT_RANGE", "default_png", "draw_map", "quicklook_png"]
