"""NDVI scan: :func:`scan_ndvi`, the NDVI rasters of a folder or a STAC ItemCollection keyed by month or date.

The rules are in the **NDVI folder** and **STAC ItemCollection** sections of the :mod:`plotsm.catalog` docstring;
the key of a file name is :func:`plotsm.catalog.naming._ndvi_key`, that of a STAC item
:func:`plotsm.catalog.stac._item_ndvi_key`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from plotsm.catalog.naming import NDVI_NAMING, _existing, _listing, _ndvi_key, _Problem, _rasters_in, _tokens
from plotsm.catalog.stac import _asset_path, _item_ndvi_key, _pick_asset, _single_data_asset, _stac_items
from plotsm.errors import InputError


def scan_ndvi(folder_or_stac: Path) -> dict[str, Path]:
    """NDVI rasters of a folder or STAC ItemCollection: ``{"YYYY-MM": composite, "YYYY-MM-DD": single date}``,
    sorted by key (rules in the :mod:`plotsm.catalog` docstring)."""
    source = _existing(folder_or_stac, "NDVI")
    found: dict[str, list[Path]] = defaultdict(list)
    problems: list[str] = []
    if source.is_file():
        for item in _stac_items(source):
            name = f"item {item.get('id', '?')}"
            try:
                key = _item_ndvi_key(item["properties"], name)
                asset = _pick_asset(item["assets"], ("ndvi",), ()) or _single_data_asset(item["assets"], name)
                found[key].append(_asset_path(item["assets"][asset], source, f"{name} asset {asset!r}"))
            except _Problem as exc:
                problems.append(str(exc))
    else:
        for path in _rasters_in(source):
            if "ndvi" not in _tokens(path):
                continue
            dated = _ndvi_key(path.stem)
            if dated is None:
                problems.append(f"{path.name}: no date (YYYYMMDD) or month (YYYY-MM) in the name")
            else:
                found[dated].append(path)
    for key, paths in found.items():
        if len(paths) > 1:
            problems.append(f"{len(paths)} NDVI rasters for {key}: {', '.join(p.name for p in paths)}; keep one per "
                            "date (mosaic the tiles first, e.g. gdalbuildvrt then gdal_translate)")
    if problems:
        raise InputError(_listing(f"{source}: {len(problems)} problem(s) with the NDVI rasters", problems) + NDVI_NAMING)
    if not found:
        raise InputError(f"{source}: no NDVI raster (a GeoTIFF with 'ndvi' and a date in its name). {NDVI_NAMING}")
    return {key: found[key][0] for key in sorted(found)}
