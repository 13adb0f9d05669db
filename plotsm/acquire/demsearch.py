"""The Copernicus DEM GLO-30 on CDSE: which STAC collection holds it, which tile an item is, and which of an
item's assets is the height GeoTIFF.

**Collection.** Its id on CDSE's STAC API is not confirmed (data-access notes), so it is read from the service's
``/collections`` at run time (:func:`find_dem_collection`): the collections whose id or title names the
Copernicus DEM (``cop-dem`` / ``copernicus dem`` / ``copernicus_dsm``, any case and separator) at 30 m
(``glo-30`` / ``30``, not ``glo-90``). Several → an exact ``cop-dem-glo-30-dged-cog`` wins, then an id with
``glo-30``, then the shortest id, so a choice is never left to the service's order. A setting
(``dem_collection``; ``--dem-collection`` / ``PLOTSM_DEM_COLLECTION`` in the CLI) overrides it, and is checked
against the same listing, so a wrong id is an error naming the ids the service has instead of an empty search.

**Asset** (:func:`dem_asset`). A GLO-30 product holds the heights (``…_DEM.tif``) and auxiliary rasters, also
GeoTIFFs: the editing, filling, height-error and water-body masks (``EDM``, ``FLM``, ``HEM``, ``WBM``) [C:
Copernicus DEM product handbook]. The asset kept is a GeoTIFF (``type`` image/tiff…, else a ``.tif``/``.tiff``
link) with role ``data`` (or no roles), not a thumbnail, overview or metadata; among those, one whose key or file
name says ``DEM`` and none of the masks' codes wins, then the key ``data``; several equal candidates, or a
mask only, give no asset (the item is reported, never a mask downloaded as heights).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

#: The id CDSE is expected to use (the name used by other STAC catalogues; unconfirmed on CDSE).
PREFERRED_DEM_COLLECTION = "cop-dem-glo-30-dged-cog"
_COP_DEM = re.compile(r"cop[\W_]*dem|copernicus[\W_]*(dem|dsm)|copernicus[\W_]+digital[\W_]+elevation", re.I)
_GLO90 = re.compile(r"glo[\W_]*90|\b90\s*m\b", re.I)
_GLO30 = re.compile(r"glo[\W_]*30", re.I)
_THIRTY = re.compile(r"(?<!\d)30(?!\d)")
_MASKS = re.compile(r"(?:^|[\W_])(EDM|FLM|HEM|WBM)(?:[\W_]|$)", re.I)
_DEM_WORD = re.compile(r"(?:^|[\W_])DEM(?:[\W_]|$)", re.I)
_TILE = re.compile(r"([NS])(\d{2})(?:_\d{2})?_([EW])(\d{3})(?:_\d{2})?", re.I)
_NOT_DATA_ROLES = {"thumbnail", "overview", "metadata", "visual"}


def find_dem_collection(collections: Sequence[tuple[str, str]]) -> str | None:
    """The id of the Copernicus DEM GLO-30 among ``collections`` — (id, title) pairs — or None (module
    docstring)."""
    found = []
    for cid, title in collections:
        text = f"{cid} {title}"
        if _COP_DEM.search(text) and not _GLO90.search(cid) and (_GLO30.search(text) or _THIRTY.search(text)):
            found.append(cid)
    if not found:
        return None
    return min(found, key=lambda c: (c.lower() != PREFERRED_DEM_COLLECTION, not _GLO30.search(c), len(c), c))


def dem_tile(item: Mapping[str, Any]) -> str | None:
    """The 1° tile of a GLO-30 item, ``N41E012``, from its id (``Copernicus_DSM_COG_10_N41_00_E012_00_DEM``) or
    None."""
    m = _TILE.search(str(item.get("id", "")))
    return f"{m[1].upper()}{m[2]}{m[3].upper()}{m[4]}" if m else None


def _file_name(href: str) -> str:
    return unquote(urlsplit(href).path).rstrip("/").removesuffix("/$value").rsplit("/", 1)[-1]


def _is_geotiff(asset: Mapping[str, Any], href: str) -> bool:
    kind = asset.get("type")
    if isinstance(kind, str) and kind.strip():
        return kind.strip().lower().startswith("image/tiff")
    return _file_name(href).lower().endswith((".tif", ".tiff"))


def dem_asset(assets: Mapping[str, Any], link: Any) -> tuple[str, str] | str:
    """(key, https link) of the height GeoTIFF among ``assets`` (module docstring), or the reason there is none.
    ``link(asset)`` gives an asset's https link or None."""
    ranked: list[tuple[int, str, str]] = []
    without_link = []
    for key, asset in assets.items():
        if not isinstance(asset, Mapping):
            continue
        roles = asset.get("roles")
        roles = {str(r).lower() for r in roles} if isinstance(roles, list) else set()
        raw = asset.get("href")
        href = link(asset)
        if roles & _NOT_DATA_ROLES or (roles and "data" not in roles):
            continue
        if not _is_geotiff(asset, href or (raw if isinstance(raw, str) else "")):
            continue
        if href is None:
            without_link.append(key)
            continue
        names = f"{key} {_file_name(href)}"
        if _MASKS.search(names):
            continue
        ranked.append((0 if _DEM_WORD.search(names) else 1 if key.lower() == "data" else 2, key, href))
    if not ranked:
        if without_link:
            return f"GeoTIFF asset(s) {', '.join(without_link)} without an https link (only s3://, not read)"
        return "no height GeoTIFF among its assets (type image/tiff, role data, not a mask)"
    ranked.sort()
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return (f"several GeoTIFF assets could be the heights ({', '.join(k for _, k, _ in ranked)}); none says "
                "DEM")
    return ranked[0][1], ranked[0][2]


__all__ = ["PREFERRED_DEM_COLLECTION", "dem_asset", "dem_tile", "find_dem_collection"]
