"""Which files each item of a plan downloads, from where, to where.

- ``s1-grd``: the whole product, ``<odata>/Products(<Id>)/$value`` (a zip), to ``<SAFE name>.zip``; the OData
  ``Id`` is read from the assets' hrefs (``…/Products(<uuid>)/…``), the product's size and checksum later from its
  OData JSON (:mod:`plotsm.acquire.download`). With ``s1_partial``: only what VV calibration needs — the VV
  measurement, its annotation, calibration and noise files and ``manifest.safe`` — each from its OData ``Nodes()``
  path, to ``<name>.SAFE/<the same relative path>``. The files come from the assets ``vv``, ``schema-product-vv``,
  ``schema-calibration-vv``, ``schema-noise-vv`` and ``safe_manifest``; an asset the item lacks (CDSE's
  trimmed items lack the last two) gets the path the SAFE layout gives it beside the measurement's
  (``annotation/<measurement>.xml``, ``annotation/calibration/{calibration,noise}-<measurement>.xml``,
  ``manifest.safe``) [C: ESA S1 Product Specification §5; the recorded CDSE item's names].
- ``s2-l2a``: ``B04_10m``, ``B08_10m``, ``SCL_20m``, the granule metadata (``granule_metadata``, MTD_TL.xml) when
  the item lists it, and the product metadata ``MTD_MSIL2A.xml`` (the reflectance offsets ``plotsm s2 ndvi``
  reads; ``product_metadata``, else its standard place at the SAFE's root), each to ``<name>.SAFE/<path>``.
- items found in CDSE's OData catalogue (``plotsm:source: odata``, the search's fallback), S1 and S2 alike: the
  whole product zip, as for ``s1-grd`` above (the files inside are not known without listing its ``Nodes``;
  ``s1_partial`` does not apply to them).
- ``dem`` (Copernicus DEM GLO-30, CDSE): the height GeoTIFF of the tile
  (:func:`plotsm.acquire.demsearch.dem_asset` says which asset and why), to ``dem/<item id>.tif``; the CDSE
  bearer token goes with it when its link is on a CDSE host, as for the other CDSE files.
- ``s2-l2a-maja``, ``s2-l3a`` (GEODES): the product's zip asset, to its file name; an asset GEODES describes as
  "Is online: false" is skipped (it must be restored first).

Hrefs are the assets' ``alternate.https.href`` (else an https ``href``), moved onto the configured services
(:meth:`~plotsm.acquire.endpoints.Endpoints.rewrite`). Relative paths come from the plan, so each part is checked:
no empty part, no ``.``/``..``, no separator; a file that fails is reported, not written elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from plotsm.acquire.checksum import Expected, from_asset
from plotsm.acquire.demsearch import dem_asset
from plotsm.acquire.endpoints import CDSE_ODATA_URL, Endpoints
from plotsm.acquire.geodes import with_file_facts

S1_PARTIAL_ASSETS = (("vv", ("measurement",)), ("schema-product-vv", ("annotation",)),
                     ("schema-calibration-vv", ("annotation", "calibration")),
                     ("schema-noise-vv", ("annotation", "calibration")), ("safe_manifest", ()))
S2_ASSETS = ("B04_10m", "B08_10m", "SCL_20m")
_PRODUCT = re.compile(r"/Products\(\s*'?([0-9A-Za-z-]+)'?\s*\)")
_NODE = re.compile(r"Nodes\(([^)]*)\)")


@dataclass(frozen=True)
class FileJob:
    """One file to download: from ``url`` (``href`` as the plan gives it) to ``relpath`` under the output folder,
    expected to be ``expected``; ``odata_id`` when the size and checksum come from the OData product JSON."""

    item_id: str
    collection: str
    provider: str
    asset: str
    href: str
    url: str
    relpath: str
    product: str
    expected: Expected = field(default_factory=Expected)
    odata_id: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Skip:
    """An item or file not downloaded, and why."""

    item_id: str
    what: str
    reason: str


@dataclass
class Selection:
    """The files of a plan: ``jobs``; ``skipped`` (offline: not errors); ``problems`` (cannot be downloaded: errors);
    ``partial_products`` (S1 products fetched in part: name → OData Id, for the bytes saved)."""

    jobs: list[FileJob] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    problems: list[Skip] = field(default_factory=list)
    partial_products: dict[str, str] = field(default_factory=dict)


def select_files(items: Sequence[Mapping[str, Any]], endpoints: Endpoints, *, s1_partial: bool = False) -> Selection:
    """The files of ``items`` (a plan's), per the module docstring."""
    selection = Selection()
    seen: dict[str, str] = {}
    for item in items:
        props = item.get("properties", {})
        collection, item_id = str(props.get("plotsm:collection")), str(item.get("id"))
        if props.get("plotsm:source") == "odata" and collection in ("s1-grd", "s2-l2a"):
            found = _whole(item, collection, endpoints, selection)  # found in OData: its files are not listed
        elif collection == "s1-grd":
            found = _s1_partial(item, endpoints, selection) if s1_partial else _s1_whole(item, endpoints, selection)
        elif collection == "s2-l2a":
            found = _s2(item, endpoints, selection)
        elif collection == "dem":
            found = _dem(item, endpoints, selection)
        else:
            found = _geodes(item, endpoints, selection)
        for job in found:
            if job.relpath in seen:
                selection.problems.append(Skip(item_id, job.relpath, f"the same file as item {seen[job.relpath]}"))
                continue
            seen[job.relpath] = item_id
            selection.jobs.append(job)
    return selection


def https_href(asset: Any) -> str | None:
    """The asset's HTTPS link: ``alternate.https.href``, else its ``href`` when that is http(s)."""
    if not isinstance(asset, Mapping):
        return None
    alternate = asset.get("alternate")
    https = alternate.get("https") if isinstance(alternate, Mapping) else None
    href = https.get("href") if isinstance(https, Mapping) else None
    if isinstance(href, str) and href.startswith(("https://", "http://")):
        return href
    href = asset.get("href")
    return href if isinstance(href, str) and href.startswith(("https://", "http://")) else None


def odata_id(item: Mapping[str, Any]) -> str | None:
    """The OData ``Id`` of the item's product, from any asset's link (``Products(<uuid>)``)."""
    for asset in _assets(item).values():
        for href in (https_href(asset), asset.get("href") if isinstance(asset, Mapping) else None):
            if isinstance(href, str) and (m := _PRODUCT.search(href)):
                return m[1]
    return None


def node_parts(href: str) -> list[str] | None:
    """The ``Nodes(…)`` path of an OData file link, as path parts (``[name.SAFE, "measurement", file]``); None when
    the link has none or a part is unsafe as a file name."""
    parts = [unquote(p).strip("'") for p in _NODE.findall(href)]
    return parts if parts and all(safe_part(p) for p in parts) else None


def safe_part(part: str) -> bool:
    """Whether ``part`` can be one file or folder name under the output folder."""
    return bool(part) and part not in (".", "..") and not any(c in part for c in "/\\\0") and not part.startswith("~")


def _assets(item: Mapping[str, Any]) -> Mapping[str, Any]:
    assets = item.get("assets")
    return assets if isinstance(assets, Mapping) else {}


def _safe_name(item: Mapping[str, Any]) -> str:
    """The product's ``<name>.SAFE``: from a ``Nodes(<name>.SAFE)`` link, else the item id."""
    for asset in _assets(item).values():
        href = https_href(asset)
        parts = node_parts(href) if href else None
        if parts and parts[0].upper().endswith(".SAFE"):
            return parts[0]
    item_id = str(item.get("id"))
    return item_id if item_id.upper().endswith(".SAFE") else item_id + ".SAFE"


def _node_url(endpoints: Endpoints, product_id: str, parts: Sequence[str]) -> tuple[str, str]:
    """(href on CDSE, rewritten URL) of the node ``parts`` of product ``product_id``."""
    href = f"{CDSE_ODATA_URL}/Products({product_id})" + "".join(f"/Nodes({p})" for p in parts) + "/$value"
    return href, endpoints.rewrite(href)


def _s1_whole(item: Mapping[str, Any], endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    return _whole(item, "s1-grd", endpoints, selection)


def _whole(item: Mapping[str, Any], collection: str, endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    item_id = str(item.get("id"))
    product_id = odata_id(item)
    if product_id is None:
        selection.problems.append(Skip(item_id, "product", "no OData product Id in its links (Products(<uuid>))"))
        return []
    name = _safe_name(item).removesuffix(".SAFE")
    href = https_href(_assets(item).get("Product")) or f"{CDSE_ODATA_URL}/Products({product_id})/$value"
    return [FileJob(item_id, collection, "cdse", "Product", href, endpoints.rewrite(href), f"{name}.zip", name,
                    odata_id=product_id)]


def _s1_partial(item: Mapping[str, Any], endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    item_id, assets = str(item.get("id")), _assets(item)
    product_id = odata_id(item)
    vv_href = https_href(assets.get("vv"))
    vv_parts = node_parts(vv_href) if vv_href else None
    if product_id is None or vv_parts is None or len(vv_parts) < 2:
        selection.problems.append(Skip(item_id, "vv", "no VV measurement with an OData Nodes() link"))
        return []
    safe, stem = vv_parts[0], re.sub(r"\.tiff?$", "", vv_parts[-1], flags=re.IGNORECASE)
    derived = {"vv": vv_parts[-1], "schema-product-vv": f"{stem}.xml",
               "schema-calibration-vv": f"calibration-{stem}.xml", "schema-noise-vv": f"noise-{stem}.xml",
               "safe_manifest": "manifest.safe"}
    jobs = []
    for key, folder in S1_PARTIAL_ASSETS:
        asset = assets.get(key)
        href = https_href(asset)
        parts = node_parts(href) if href else None
        note = ""
        if href is None or parts is None:
            href, _ = _node_url(endpoints, product_id, [safe, *folder, derived[key]])
            parts, note = [safe, *folder, derived[key]], f"path of the SAFE layout (the item lists no {key} asset)"
        expected = from_asset(asset) if isinstance(asset, Mapping) else Expected()
        jobs.append(FileJob(item_id, "s1-grd", "cdse", key, href, endpoints.rewrite(href), "/".join(parts),
                            safe.removesuffix(".SAFE"), expected, note=note))
    selection.partial_products[safe.removesuffix(".SAFE")] = product_id
    return jobs


def _s2(item: Mapping[str, Any], endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    item_id, assets = str(item.get("id")), _assets(item)
    safe = _safe_name(item)
    jobs = []
    keys = [*S2_ASSETS, *(k for k in ("granule_metadata", "product_metadata") if k in assets)]
    for key in keys:
        href = https_href(assets.get(key))
        if href is None:
            why = "not in the item" if key not in assets else "no https link (only s3://, which plotsm does not read)"
            selection.problems.append(Skip(item_id, key, why))
            continue
        parts = node_parts(href) or [safe, unquote(urlsplit(href).path).rstrip("/").removesuffix("/$value")
                                     .rsplit("/", 1)[-1]]
        if not safe_part(parts[-1]):
            selection.problems.append(Skip(item_id, key, f"no file name in its link {href}"))
            continue
        jobs.append(FileJob(item_id, "s2-l2a", "cdse", key, href, endpoints.rewrite(href), "/".join(parts),
                            safe.removesuffix(".SAFE"), from_asset(assets[key])))
    product_id = odata_id(item)
    if "product_metadata" not in assets and product_id is not None and jobs:
        href, url = _node_url(endpoints, product_id, [safe, "MTD_MSIL2A.xml"])
        jobs.append(FileJob(item_id, "s2-l2a", "cdse", "product_metadata", href, url, f"{safe}/MTD_MSIL2A.xml",
                            safe.removesuffix(".SAFE"), note="path of the SAFE layout (the item lists no "
                                                             "product_metadata asset)"))
    return jobs


def _dem(item: Mapping[str, Any], endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    item_id, assets = str(item.get("id")), _assets(item)
    chosen = dem_asset(assets, https_href)
    if isinstance(chosen, str):
        selection.problems.append(Skip(item_id, "DEM", chosen))
        return []
    if not safe_part(item_id):
        selection.problems.append(Skip(item_id, "DEM", f"item id {item_id!r} cannot be a file name"))
        return []
    key, href = chosen
    return [FileJob(item_id, "dem", "cdse", key, href, endpoints.rewrite(href), f"dem/{item_id}.tif", item_id,
                    from_asset(assets[key]))]


def _geodes(item: Mapping[str, Any], endpoints: Endpoints, selection: Selection) -> list[FileJob]:
    item = with_file_facts(dict(item, assets={k: dict(a) for k, a in _assets(item).items() if isinstance(a, Mapping)}))
    item_id, collection = str(item.get("id")), str(item["properties"].get("plotsm:collection"))
    for key, asset in _assets(item).items():
        title = asset.get("title") if isinstance(asset.get("title"), str) else key
        roles = asset.get("roles") if isinstance(asset.get("roles"), list) else ["data"]
        is_zip = asset.get("type") == "application/zip" or str(title).lower().endswith(".zip")
        if not (is_zip and "data" in roles):
            continue
        name = str(title).rsplit("/", 1)[-1]
        href = https_href(asset)
        if href is None or not safe_part(name):
            selection.problems.append(Skip(item_id, key, "no https link or no usable file name"))
            return []
        if asset.get("plotsm:online") is False:
            selection.skipped.append(Skip(item_id, name, "offline at GEODES (its description says \"Is online: "
                                                         "false\"): ask GEODES to restore it, then run again"))
            return []
        return [FileJob(item_id, collection, "geodes", key, href, endpoints.rewrite(href), name,
                        name.removesuffix(".zip"), from_asset(asset))]
    selection.problems.append(Skip(item_id, "product", "no zip asset (type application/zip, role data)"))
    return []


__all__ = ["S1_PARTIAL_ASSETS", "S2_ASSETS", "FileJob", "Selection", "Skip", "https_href", "node_parts", "odata_id",
           "safe_part", "select_files"]
