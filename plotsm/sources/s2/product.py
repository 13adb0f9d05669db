"""Whole Sentinel-2 products → the files :mod:`.ndvi` needs, and their NDVI as ``NDVI_<tile>_<YYYYMMDD>.tif`` (the
name ``plotsm s2 composite`` reads the date from).

:func:`resolve_s2_product` recognises a product by its layout, folder or ``.zip`` of it alike, and reads its
radiometric metadata at once, so a bad product fails before anything is written:

- ``esa_l2a``, layout ``safe``: ``GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2`` and ``*_B08_10m.jp2``, mask
  ``R20m/*_SCL_20m.jp2`` (else ``R60m/*_SCL_60m.jp2``), offsets from ``MTD_MSIL2A.xml`` (BOA_ADD_OFFSET);
- ``esa_l2a``, layout ``cog``: ``B04.tif``, ``B08.tif``, ``SCL.tif`` (Earth Search names; ``*_B04_10m.tif`` too),
  offsets from the STAC item's ``s2:processing_baseline`` (:func:`~plotsm.sources.s2.l2a_offsets_for_baseline`);
- ``esa_l2a``, layout ``aws``: ``R10m/B04.jp2``, ``R10m/B08.jp2``, ``R20m/SCL.jp2`` (else ``R60m``), baseline from
  the ``_Nxxyy_`` part of ``productName`` in ``tileInfo.json``;
- ``theia_l2a``: ``*_FRE_B4.tif``, ``*_FRE_B8.tif``, ``MASKS/*_CLM_R1.tif``, ``MASKS/*_MG2_R1.tif`` (both masks
  required), fixed encoding ×10000, −10000 no data;
- ``theia_l3a``: ``*_FRC_B4.tif``, ``*_FRC_B8.tif``, ``MASKS/*_FLG_R1.tif``, same encoding.

The "aws" layout is the tile folder of the ``sentinel-s2-l2a`` archive (``tiles/<zone>/<band>/<square>/<y>/<m>/<d>/0``).
Theia L3A syntheses are WASP products (``SENTINEL2X_<date>-000000-000_L3A_T<tile>_…``), whose reflectances are
``FRC`` ("composite") files, not ``FRE``: ``ProductFormatter/src/ProductCreatorSentinelMuscate.cpp`` of CNES/WASP
(commit 7fb65f0e) writes ``<product>_FRC_<band>.tif`` and ``MASKS/<product>_FLG_R1.tif``; the FLG values are in
:data:`plotsm.sources.s2.L3A_VALID_FLAGS`.

Zipped products are checked with :mod:`zipfile` (a truncated download has no central directory) and read through
GDAL's ``/vsizip/{archive}/member`` paths, so nothing is extracted. GDAL does not check the CRC of what it reads
there, so :func:`write_product_ndvi` first streams every member the NDVI reads through
:func:`~plotsm.sources.archive.verify_zip_members`; resolving stays cheap. Tile and date come from the band file
names (ESA SAFE, Theia), the STAC item (COG) or ``tileInfo.json`` (AWS); the date is the sensing date (UTC), or
the central date of an L3A synthesis.

COG offsets: Earth Search marks items whose DNs it already shifted with ``earthsearch:boa_offset_applied: true``;
those get offset 0. The flag is known to be wrong on some items (Element84/earth-search issues 66 and 71,
cirrus-geo/cirrus-earth-search issue 33), which no metadata can reveal; we follow it as published.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rasterio.errors import RasterioError

from plotsm.atomic import writable_dir
from plotsm.errors import InputError
from plotsm.sources import TILE_SIZE
from plotsm.sources.archive import MEMBER_ERRORS, damaged_member, verify_zip_members
from plotsm.sources.s2.metadata import l2a_offsets_for_baseline, parse_l2a_offsets
from plotsm.sources.s2.ndvi import Encoding, ndvi_from_l2a, ndvi_from_theia, ndvi_from_theia_l3a
from plotsm.times import utc

PathLike = str | os.PathLike[str]
ProductKind = Literal["esa_l2a", "theia_l2a", "theia_l3a"]
Layout = Literal["safe", "cog", "aws", "theia"]

_VSIZIP = re.compile(r"^/vsizip/\{(?P<archive>[^}]+)\}/(?P<member>.+)$")  # as _Listing.path_of writes them
_TOP = r"^(?:[^/]+/)?"  # a member at the top of the product or one folder down (the .SAFE folder of a zip)
_TILE = r"(\d{2}[A-Z]{3})"

_EXPECTED = ("Pass an ESA L2A .SAFE folder or its .zip (MTD_MSIL2A.xml, GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2), "
             "a folder of L2A COG assets with their STAC item (B04.tif, B08.tif, SCL.tif, <id>.json), "
             "an AWS sentinel-s2-l2a tile folder (tileInfo.json, R10m/B04.jp2), "
             "or a Theia L2A/L3A folder or .zip (*_FRE_B4.tif / *_FRC_B4.tif and MASKS/).")


@dataclass(frozen=True)
class S2Product:
    """One Sentinel-2 product, resolved: what it is, where its bands and masks are, and its radiometry.

    Paths are plain file paths, or GDAL ``/vsizip/{archive}/member`` paths for a zipped product. ``masks`` maps a
    role to its raster: ``scl`` (ESA), ``clm`` and ``mg2`` (Theia L2A), ``flg`` (Theia L3A). ``offsets`` (ESA
    only) is the dict of :func:`plotsm.sources.s2.read_l2a_offsets`; ``metadata`` names the file it came from.
    ``date`` is the sensing date (UTC) or the central date of an L3A synthesis; ``tile`` the MGRS tile (``29RKH``).
    """

    path: Path
    kind: ProductKind
    layout: Layout
    tile: str
    date: dt.date
    red: str
    nir: str
    masks: Mapping[str, str]
    metadata: str | None = None
    offsets: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def ndvi_name(self) -> str:
        """File name of the product's NDVI: ``NDVI_<tile>_<YYYYMMDD>.tif``."""
        return f"NDVI_{self.tile}_{self.date:%Y%m%d}.tif"

    def zip_members(self) -> dict[Path, list[str]]:
        """Zip members the NDVI reads, by archive: bands, masks and the metadata file (``{}`` for a folder).

        Taken from the ``/vsizip/`` paths themselves, so whatever GDAL will read is in the list."""
        members: dict[Path, list[str]] = {}
        for path in (self.red, self.nir, *self.masks.values()):
            if found := _VSIZIP.match(path):
                members.setdefault(Path(found["archive"]), []).append(found["member"])
        if self.metadata is not None and self.metadata.startswith(f"{self.path}!"):  # _Listing.label of a member
            members.setdefault(self.path.resolve(), []).append(self.metadata[len(f"{self.path}!"):])
        return members


# ------------------------------------------------------------------------------------------------ listing


@dataclass(frozen=True)
class _Listing:
    """The files of a product folder or zip, as POSIX paths relative to it."""

    root: Path
    names: tuple[str, ...]
    archive: bool

    def path_of(self, name: str) -> str:
        """Path GDAL opens: the file itself, or ``/vsizip/{archive}/member`` (braces keep the archive's path
        whole through ``pathlib``, which would merge the double slash of ``/vsizip//abs/…``)."""
        return f"/vsizip/{{{self.root.resolve()}}}/{name}" if self.archive else str(self.root / name)

    def label(self, name: str) -> str:
        """How errors name a member: ``folder/member`` or ``archive.zip!member``."""
        return f"{self.root}!{name}" if self.archive else str(self.root / name)

    def read(self, name: str) -> bytes:
        if not self.archive:
            return (self.root / name).read_bytes()
        try:
            with zipfile.ZipFile(self.root) as archive:
                return archive.read(name)
        except MEMBER_ERRORS as exc:
            raise damaged_member(self.root, name, exc) from exc

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [name for name in self.names if regex.search(name)]


def _list_product(path: Path) -> _Listing:
    if path.is_dir():
        found = sorted(Path(dirpath, name).relative_to(path).as_posix()
                       for dirpath, _, files in os.walk(path) for name in files)
        return _Listing(path, tuple(found), archive=False)
    if not path.exists():
        raise InputError(f"{path}: product not found. {_EXPECTED}")
    with path.open("rb") as head:
        magic = head.read(4)
    if path.suffix.lower() != ".zip" and magic != b"PK\x03\x04":
        raise InputError(f"{path}: neither a product folder nor a .zip. {_EXPECTED}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = tuple(sorted(info.filename for info in archive.infolist() if not info.is_dir()))
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a complete zip archive ({exc}); the download was probably cut short. "
                         "Re-download the product (compare its size or checksum with the catalogue's).") from exc
    return _Listing(path, names, archive=True)


def _one(listing: _Listing, pattern: str, shown: str, what: str, kind: str) -> str:
    """The single member matching ``pattern``; ``shown`` is the glob-like form named in errors."""
    found = listing.matching(pattern)
    if not found:
        raise InputError(f"{listing.root}: {kind} product without its {what} ({shown}). The product is incomplete; "
                         "re-download it, or pass the complete product folder.")
    if len(found) > 1:
        raise InputError(f"{listing.root}: several files match {shown} ({', '.join(found[:4])}). "
                         "Pass the folder of one product.")
    return found[0]


def _first(listing: _Listing, options: list[tuple[str, str]], what: str, kind: str) -> str:
    """The member matching the first pattern that matches anything (e.g. SCL at 20 m, else at 60 m)."""
    for pattern, shown in options:
        if listing.matching(pattern):
            return _one(listing, pattern, shown, what, kind)
    return _one(listing, options[0][0], " or ".join(shown for _, shown in options), what, kind)


# ------------------------------------------------------------------------------------------------ resolve


def resolve_s2_product(path: PathLike) -> S2Product:
    """Recognise the Sentinel-2 product at ``path`` (folder or ``.zip``) and read its metadata.

    Raises :class:`InputError` naming the product and the fix for: a missing path, a truncated zip, a folder that
    is no known product, a missing band, mask or metadata file (named by its pattern), a missing, unknown or
    malformed processing baseline (named with the metadata file), or a date or tile that cannot be told.
    """
    listing = _list_product(Path(path))
    if listing.matching(_TOP + r"MTD_MSIL2A\.xml$") or listing.matching(r"(?:^|/)GRANULE/[^/]+/IMG_DATA/"):
        return _resolve_safe(listing)
    if listing.matching(r"_(?:FRC_B\d+|FLG_R1)\.tif$") or listing.matching(r"SENTINEL2[A-DX]_[^/]*_L3A_"):
        return _resolve_theia(listing, "theia_l3a")
    if listing.matching(r"_(?:FRE_B\d+|CLM_R1|MG2_R1)\.tif$") or listing.matching(r"SENTINEL2[A-DX]_[^/]*_L2A_"):
        return _resolve_theia(listing, "theia_l2a")
    if listing.matching(_TOP + r"tileInfo\.json$"):
        return _resolve_aws(listing)
    if listing.matching(_TOP + r"[^/]+\.json$") or listing.matching(_TOP + r"(?:[^/]*_)?(?:B04|B08|SCL)[^/]*\.tif$"):
        return _resolve_cog(listing)
    raise InputError(f"{listing.root}: not a recognised Sentinel-2 product. {_EXPECTED}")


def _resolve_safe(listing: _Listing) -> S2Product:
    kind = "ESA L2A .SAFE"
    granule = r"(?:^|/)GRANULE/[^/]+/IMG_DATA/"
    mtd = _one(listing, _TOP + r"MTD_MSIL2A\.xml$", "MTD_MSIL2A.xml", "metadata", kind)
    red = _one(listing, granule + r"R10m/[^/]*_B04_10m\.jp2$", "GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2",
               "B04 band", kind)
    nir = _one(listing, granule + r"R10m/[^/]*_B08_10m\.jp2$", "GRANULE/*/IMG_DATA/R10m/*_B08_10m.jp2",
               "B08 band", kind)
    scl = _first(listing, [(granule + r"R20m/[^/]*_SCL_20m\.jp2$", "GRANULE/*/IMG_DATA/R20m/*_SCL_20m.jp2"),
                           (granule + r"R60m/[^/]*_SCL_60m\.jp2$", "GRANULE/*/IMG_DATA/R60m/*_SCL_60m.jp2")],
                 "SCL scene classification", kind)
    offsets = parse_l2a_offsets(listing.read(mtd), listing.label(mtd))
    # T29RKH_20200219T112111_B04_10m.jp2 (L2A_T29RKH_… before PSD 14.2); else the .SAFE name
    # S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE
    found = re.search(r"T" + _TILE + r"_(\d{8})T\d{6}_B04_10m\.jp2$", red)
    safe = re.search(r"MSIL2A_(\d{8})T\d{6}_N\d{4}_R\d{3}_T" + _TILE + "_", red)
    if found:
        tile, day = found[1], found[2]
    elif safe:
        tile, day = safe[2], safe[1]
    else:
        raise InputError(f"{listing.label(red)}: cannot tell tile and date from the band name (expected "
                         "T<tile>_<YYYYMMDD>T<hhmmss>_B04_10m.jp2). Keep the product's original file names.")
    return S2Product(listing.root, "esa_l2a", "safe", tile, _date(day, listing.label(red)),
                     listing.path_of(red), listing.path_of(nir), {"scl": listing.path_of(scl)},
                     listing.label(mtd), offsets)


def _resolve_cog(listing: _Listing) -> S2Product:
    kind = "L2A COG"
    items = []
    for name in listing.matching(_TOP + r"[^/]+\.json$"):
        try:
            doc = json.loads(listing.read(name))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{listing.label(name)}: not valid JSON ({exc}). Save the product's STAC item "
                             "again.") from exc
        if isinstance(doc, dict) and doc.get("type") == "Feature":
            items.append((name, doc))
    if not items:
        raise InputError(f"{listing.root}: folder of COG assets without its STAC item (<id>.json, a GeoJSON "
                         "Feature). Its s2:processing_baseline tells the reflectance offset; save the item next to "
                         "the assets.")
    if len(items) > 1:
        raise InputError(f"{listing.root}: several STAC items ({', '.join(n for n, _ in items)}). "
                         "Pass the folder of one product.")
    name, item = items[0]
    label = listing.label(name)
    props = item.get("properties") or {}
    baseline = props.get("s2:processing_baseline")
    if not isinstance(baseline, str):
        raise InputError(f"{label}: no s2:processing_baseline; cannot tell the BOA offset. Use the STAC item of "
                         "the product (Earth Search, Planetary Computer and CDSE items carry it).")
    try:
        offsets = l2a_offsets_for_baseline(baseline)
    except InputError as exc:
        raise InputError(f"{label}: {exc} Check the item's s2:processing_baseline.") from exc
    if props.get("earthsearch:boa_offset_applied") is True:
        offsets = {**offsets, "boa_add_offset": {"B4": 0.0, "B8": 0.0}}
    asset = r"(?:[^/]*_)?{band}(?:_\d+m)?\.tif$"
    red = _one(listing, _TOP + asset.format(band="B04"), "B04.tif", "B04 band", kind)
    nir = _one(listing, _TOP + asset.format(band="B08"), "B08.tif", "B08 band", kind)
    scl = _one(listing, _TOP + asset.format(band="SCL"), "SCL.tif", "SCL scene classification", kind)
    tile = _stac_tile(props, str(item.get("id", "")))
    if tile is None:
        raise InputError(f"{label}: no MGRS tile (grid:code, mgrs:* or s2:mgrs_tile). Use the product's STAC "
                         "item.")
    when = props.get("datetime")
    try:
        stamp = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{label}: datetime {when!r} is not an ISO date. Use the product's STAC item.") from exc
    day = utc(stamp).date()  # STAC: UTC
    return S2Product(listing.root, "esa_l2a", "cog", tile, day, listing.path_of(red), listing.path_of(nir),
                     {"scl": listing.path_of(scl)}, label, offsets)


def _stac_tile(props: Mapping[str, Any], item_id: str) -> str | None:
    code = str(props.get("grid:code", ""))
    if re.fullmatch(r"MGRS-\d{1,2}[A-Z]{3}", code):
        return code[5:].zfill(5)
    if all(k in props for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square")):
        return f"{int(props['mgrs:utm_zone']):02d}{props['mgrs:latitude_band']}{props['mgrs:grid_square']}"
    if re.fullmatch(_TILE, str(props.get("s2:mgrs_tile", ""))):
        return str(props["s2:mgrs_tile"])
    found = re.search(r"_" + _TILE + "_", item_id)
    return found[1] if found else None


def _resolve_aws(listing: _Listing) -> S2Product:
    kind = "AWS sentinel-s2-l2a tile"
    info_name = _one(listing, _TOP + r"tileInfo\.json$", "tileInfo.json", "tileInfo.json", kind)
    label = listing.label(info_name)
    try:
        info = json.loads(listing.read(info_name))
        product_name = str(info["productName"])
        tile = f"{int(info['utmZone']):02d}{info['latitudeBand']}{info['gridSquare']}"
        day = dt.datetime.fromisoformat(str(info["timestamp"]).replace("Z", "+00:00")).date()
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{label}: not the tileInfo.json of an L2A tile ({exc!r} missing or malformed). "
                         "Download the tile's tileInfo.json again.") from exc
    # S2A_MSIL2A_20170729T153601_N0001_R111_T19UDP_20200401T051009: baseline 00.01
    found = re.search(r"_N(\d{2})(\d{2})_", product_name)
    if not found:
        raise InputError(f"{label}: unknown processing baseline: productName {product_name!r} has no _Nxxyy_ "
                         "part. Use the tile's original tileInfo.json.")
    offsets = l2a_offsets_for_baseline(f"{found[1]}.{found[2]}")  # two digits each: always parses
    red = _one(listing, _TOP + r"R10m/B04\.jp2$", "R10m/B04.jp2", "B04 band", kind)
    nir = _one(listing, _TOP + r"R10m/B08\.jp2$", "R10m/B08.jp2", "B08 band", kind)
    scl = _first(listing, [(_TOP + r"R20m/SCL\.jp2$", "R20m/SCL.jp2"), (_TOP + r"R60m/SCL\.jp2$", "R60m/SCL.jp2")],
                 "SCL scene classification", kind)
    return S2Product(listing.root, "esa_l2a", "aws", tile, day, listing.path_of(red), listing.path_of(nir),
                     {"scl": listing.path_of(scl)}, label, offsets)


def _resolve_theia(listing: _Listing, kind: ProductKind) -> S2Product:
    if kind == "theia_l3a":
        what, refl = "Theia L3A", "FRC"
        masks = {"flg": (r"MASKS/[^/]*_FLG_R1\.tif$", "MASKS/*_FLG_R1.tif", "FLG flag mask")}
    else:
        what, refl = "Theia L2A", "FRE"
        masks = {"clm": (r"MASKS/[^/]*_CLM_R1\.tif$", "MASKS/*_CLM_R1.tif", "CLM cloud mask"),
                 "mg2": (r"MASKS/[^/]*_MG2_R1\.tif$", "MASKS/*_MG2_R1.tif", "MG2 geophysical mask")}
    red = _one(listing, rf"{_TOP}[^/]*_{refl}_B4\.tif$", f"*_{refl}_B4.tif", f"{refl}_B4 band", what)
    nir = _one(listing, rf"{_TOP}[^/]*_{refl}_B8\.tif$", f"*_{refl}_B8.tif", f"{refl}_B8 band", what)
    found_masks = {role: listing.path_of(_one(listing, _TOP + pattern, shown, name, what))
                   for role, (pattern, shown, name) in masks.items()}
    # SENTINEL2A_20180525-103024-462_L2A_T32ULV_D_V1-7_FRE_B4.tif, SENTINEL2X_20180502-000000-000_L3A_T32ULV_…
    found = re.search(r"SENTINEL2[A-DX]_(\d{8})-\d{6}-\d{3}_L(?:2A|3A)_T" + _TILE + "_", red)
    if not found:
        raise InputError(f"{listing.label(red)}: cannot tell tile and date from the file name (expected "
                         "SENTINEL2?_<YYYYMMDD>-<hhmmss>-<ms>_L2A_T<tile>_…). Keep the product's original names.")
    return S2Product(listing.root, kind, "theia", found[2], _date(found[1], listing.label(red)),
                     listing.path_of(red), listing.path_of(nir), found_masks)


def _date(yyyymmdd: str, source: str) -> dt.date:
    try:
        return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()
    except ValueError as exc:
        raise InputError(f"{source}: {yyyymmdd} is not a date YYYYMMDD. Keep the product's original names.") from exc


# ------------------------------------------------------------------------------------------------ NDVI


def write_product_ndvi(product: S2Product | PathLike, out_dir: PathLike, *, encoding: Encoding = "float32",
                       block_size: int = 2 * TILE_SIZE, overviews: bool = False) -> Path:
    """NDVI of a whole product, written atomically as ``out_dir/NDVI_<tile>_<YYYYMMDD>.tif``; returns that path.

    ``product`` is an :class:`S2Product` or a path for :func:`resolve_s2_product`. It is resolved, and the members
    of a zipped product that the NDVI reads have their CRC-32 checked (:meth:`S2Product.zip_members`), before
    ``out_dir`` is created or anything written: a bad or corrupted product raises :class:`InputError` and leaves
    nothing behind. ESA products go through :func:`~plotsm.sources.s2.ndvi_from_l2a` with their offsets and SCL,
    Theia L2A through :func:`~plotsm.sources.s2.ndvi_from_theia` with CLM and MG2, L3A through
    :func:`~plotsm.sources.s2.ndvi_from_theia_l3a` with FLG. A band that cannot be read midway (a damaged zip
    member) raises :class:`InputError`; the temporary file is removed and no NDVI is left behind. ``overviews``
    adds internal overviews (for viewing; see :mod:`plotsm.sources.s2.ndvi` on why they are off by default).
    """
    resolved = product if isinstance(product, S2Product) else resolve_s2_product(product)
    for archive, members in resolved.zip_members().items():
        verify_zip_members(archive, members)  # GDAL's /vsizip/ would read a corrupted member without a word
    target = Path(out_dir)
    writable_dir(target)
    out = target / resolved.ndvi_name
    masks = resolved.masks
    try:
        if resolved.kind == "esa_l2a":
            ndvi_from_l2a(resolved.red, resolved.nir, masks["scl"], dict(resolved.offsets or {}), out,
                          encoding=encoding, block_size=block_size, overviews=overviews)
        elif resolved.kind == "theia_l2a":
            ndvi_from_theia(resolved.red, resolved.nir, masks["clm"], masks["mg2"], out, encoding=encoding,
                            block_size=block_size, overviews=overviews)
        else:
            ndvi_from_theia_l3a(resolved.red, resolved.nir, masks["flg"], out, encoding=encoding,
                                block_size=block_size, overviews=overviews)
    except RasterioError as exc:
        raise InputError(f"{resolved.path}: a band or mask cannot be read ({exc}). The product looks damaged; "
                         "re-download it.") from exc
    return out
