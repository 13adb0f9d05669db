"""A Sentinel-1 GRD product (``.SAFE`` folder or its ``.zip``): where its files are and what it says of itself.

The SAFE layout [C, ESA "Sentinel-1 Product Specification" S1-RS-MDA-52-7441 §5]::

    S1B_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<datatake>_<id>.SAFE/
        manifest.safe                                    platform, orbit numbers, pass, processor (IPF) version
        annotation/s1?-iw-grd-vv-*.xml                   image information, geolocation grid, orbit
        annotation/calibration/calibration-s1?-iw-grd-vv-*.xml, noise-s1?-iw-grd-vv-*.xml
        measurement/s1?-iw-grd-vv-*.tiff                 DN, uint16

CDSE's STAC API lists GRD products as **COG_SAFE** (``…_<CRC>_COG.SAFE``, its ``.zip`` stored uncompressed):
the same tree with the measurement converted by GDAL's COG driver (ZSTD, nodata 0) to ``…-cog.tiff``, the
annotation, calibration and noise files renamed ``…-cog.xml`` and the manifest's hrefs updated [C: eu-cdse/utilities
``GRD2COG.sh``]. The file patterns below match both layouts, DN 0 is no data in both, and the calibration reads
the full-resolution image of the COG (its overviews are not used).

Metadata come from xarray-sentinel (the root and ``IW/VV/...`` groups it builds from the manifest and the
annotation) plus the two facts it does not expose: the IPF version (``safe:software`` of the manifest) and the
image timing of ``imageAnnotation/imageInformation`` (:func:`.annotation.read_image_information`;
xarray-sentinel only gives those with the measurement open, and the geocoder needs them before). A ``.zip`` is
opened with :mod:`zipfile` (a truncated download has no central directory and fails here, with a message); its
manifest and annotation (a few MB) are extracted to a temporary folder (``zipfile`` checks their CRC), and the
measurement is read in place through GDAL's ``/vsizip/``, which does not: the measurement of the requested
polarisation is streamed through :func:`~plotsm.sources.archive.verify_zip_members` before the product is handed
out. The temporary folder is named ``plotsm-s1-<pid>-*``, so that the folders a killed run leaves behind can be
told from those of live runs and removed (:func:`remove_stale_extractions`, called whenever a zip is opened).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from plotsm.errors import InputError
from plotsm.sources.archive import MEMBER_ERRORS, damaged_member, verify_zip_members
from plotsm.sources.s1.annotation import read_image_information

PathLike = str | os.PathLike[str]

#: Acquisition modes plotsm accepts. The networks were trained on 20–45° incidence (science.md §5), the span of
#: IW (about 29–46°); EW and SM products are refused rather than inverted outside it.
SUPPORTED_MODES = ("IW",)

#: Prefix of the temporary folder a zip's manifest and annotation are extracted to; the process id follows.
EXTRACTION_PREFIX = "plotsm-s1-"


@dataclass(frozen=True)
class GrdProduct:
    """Files and metadata of one polarisation of a GRD product."""

    source: Path                 #: the ``.SAFE`` folder or ``.zip`` as given
    safe_dir: Path               #: folder holding manifest.safe and annotation/ (a temporary copy for zips)
    name: str                    #: product name without ``.SAFE``
    polarisation: str            #: e.g. "VV"
    annotation: Path
    calibration: Path
    noise: Path
    measurement: str | None      #: path or GDAL ``/vsizip/`` path of the DN GeoTIFF; None if absent
    platform: str                #: "S1A", "S1B", "S1C"
    mode: str
    start_time: np.datetime64    #: first line, UTC
    stop_time: np.datetime64     #: last line, UTC
    orbit_direction: str         #: "ascending" or "descending"
    relative_orbit: int
    absolute_orbit: int
    processor_version: str       #: IPF version, e.g. "003.40"
    first_line_time: np.datetime64
    azimuth_time_interval_s: float
    range_pixel_spacing_m: float
    n_lines: int
    n_samples: int
    _groups: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def group(self) -> str:
        """xarray-sentinel group of this polarisation, e.g. ``IW/VV``."""
        return f"{self.mode}/{self.polarisation}"

    def open_group(self, sub: str) -> Any:
        """An xarray-sentinel sub-group of this polarisation (``orbit``, ``gcp``, ``coordinate_conversion``),
        parsed once per product (the grid, the geocoder and the incidence all read ``gcp``)."""
        import xarray as xr

        if sub not in self._groups:
            try:
                self._groups[sub] = xr.open_dataset(str(self.safe_dir), engine="sentinel-1",
                                                    group=f"{self.group}/{sub}").load()
            except Exception as exc:  # xarray-sentinel raises KeyError, ValueError, xmlschema errors …
                raise InputError(f"{self.source}: cannot read the {sub} annotation of {self.group} "
                                 f"({type(exc).__name__}: {exc}). Re-download the product.") from None
        return self._groups[sub]

    def tags(self) -> dict[str, str]:
        """GeoTIFF metadata tags describing the acquisition (read back by ``plotsm run`` catalogues)."""
        return {
            "ACQUISITION_START": _iso(self.start_time), "ACQUISITION_STOP": _iso(self.stop_time),
            "DATETIME_UTC": _iso(self.start_time), "PLATFORM": self.platform,
            "ORBIT_DIRECTION": self.orbit_direction, "RELATIVE_ORBIT": str(self.relative_orbit),
            "ABSOLUTE_ORBIT": str(self.absolute_orbit), "PROCESSOR_VERSION": self.processor_version,
            "POLARISATION": self.polarisation, "PRODUCT": self.name,
        }


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="us")) + "Z"


@contextmanager
def open_grd_product(path: PathLike, polarisation: str = "VV", require_measurement: bool = True) -> Iterator[GrdProduct]:
    """Open a GRD product (``.SAFE`` folder, its ``manifest.safe``, or a ``.zip``) for one polarisation.

    Raises :class:`InputError` naming the product and the fix when it is missing, a truncated zip, not a GRD, of
    an unsupported mode, lacks the polarisation, or lacks one of the annotation, calibration, noise or
    (``require_measurement``) measurement files, or when (``require_measurement``) the measurement member of a zip
    is corrupted (CRC-32 mismatch, truncated, undecodable). Temporary files of a zip are removed on exit; without
    ``require_measurement`` the measurement is neither required nor checked, so do not read it then.
    """
    src = Path(path)
    if src.name == "manifest.safe":
        src = src.parent
    if not src.exists():
        raise InputError(f"{src}: S1 product not found. Give a .SAFE folder or the .zip downloaded from the hub.")
    pol = polarisation.upper()
    if src.is_dir():
        measurement_dir = src / "measurement"
        files = [str(f) for f in sorted(measurement_dir.glob("*.tiff"))] if measurement_dir.is_dir() else []
        yield _read(src, src, files, pol, require_measurement)
        return
    remove_stale_extractions()
    tmp = Path(tempfile.mkdtemp(prefix=f"{EXTRACTION_PREFIX}{os.getpid()}-"))
    try:
        safe_dir, measurements = _extract_zip(src, tmp)
        product = _read(src, safe_dir, list(measurements), pol, require_measurement)
        if require_measurement and product.measurement is not None:
            verify_zip_members(src, [measurements[product.measurement]])  # GDAL's /vsizip/ checks no CRC
        yield product
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_extractions(parent: PathLike | None = None) -> list[Path]:
    """Remove the ``plotsm-s1-<pid>-*`` folders of processes that no longer run from ``parent`` (default: the
    temporary folder); return them. A killed run (SIGKILL, out of memory) cannot remove its own.

    A folder is kept when its process is alive, when that cannot be told (another user's process), when it is this
    process's, and when its name carries no pid (folders of older plotsm versions). Process ids are those of this
    host's pid namespace: do not share one temporary folder between containers running plotsm.
    """
    if os.name != "posix":  # os.kill(pid, 0) would interrupt the process on Windows
        return []
    folder = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    pattern = re.compile(rf"{re.escape(EXTRACTION_PREFIX)}(\d+)-.+")
    try:
        stale = [p for p in folder.iterdir() if (found := pattern.fullmatch(p.name)) and not _alive(int(found[1]))
                 and p.is_dir() and not p.is_symlink()]
    except OSError:  # an unreadable temporary folder: nothing to clean
        return []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)  # another run may be removing it too
    return stale


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may exist (signal 0 checks without sending anything); True when unsure."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it exists, but belongs to another user
        return True
    return True


def _extract_zip(src: Path, tmp: Path) -> tuple[Path, dict[str, str]]:
    """Extract manifest and annotation of ``src`` into ``tmp``; return the SAFE folder and the GDAL
    ``/vsizip/`` paths of the measurement files, each with its member name."""
    try:
        with zipfile.ZipFile(src) as zf:
            names = zf.namelist()
            manifests = [n for n in names if n.endswith(".SAFE/manifest.safe") or n == "manifest.safe"]
            if not manifests:
                raise InputError(f"{src}: the zip holds no <name>.SAFE/manifest.safe. Is it a Sentinel-1 product?")
            root = manifests[0][: -len("manifest.safe")]
            wanted = [n for n in names if n.startswith(root) and not n.endswith("/")
                      and (n == manifests[0] or n[len(root):].startswith("annotation/"))]
            for member in wanted:
                try:
                    zf.extract(member, tmp)  # checks the CRC of each member it reads
                except MEMBER_ERRORS as exc:
                    raise damaged_member(src, member, exc) from None
            measurements = {f"/vsizip/{src.resolve()}/{n}": n for n in names
                            if n.startswith(f"{root}measurement/") and n.endswith(".tiff")}
    except zipfile.BadZipFile as exc:
        raise InputError(f"{src}: not a readable zip ({exc}); the download is truncated or corrupt. "
                         f"Download the product again.") from None
    except (OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise InputError(f"{src}: cannot read the zip ({exc}). Download the product again.") from None
    return tmp / root, measurements


def _read(src: Path, safe_dir: Path, measurements: list[str], pol: str, require_measurement: bool) -> GrdProduct:
    manifest = safe_dir / "manifest.safe"
    if not manifest.is_file():
        raise InputError(f"{src}: no manifest.safe. Give the .SAFE folder itself (or its zip), not a sub-folder.")
    name = safe_dir.name.removesuffix(".SAFE") if safe_dir.name.endswith(".SAFE") else src.stem.removesuffix(".SAFE")
    p = pol.lower()

    def one(folder: str, pattern: str, what: str) -> Path:
        hits = sorted((safe_dir / folder).glob(pattern)) if (safe_dir / folder).is_dir() else []
        if not hits:
            raise InputError(f"{src}: no {folder}/{pattern} ({what}). The product is incomplete; download it again.")
        return hits[0]

    annotation = _find_annotation(src, safe_dir, p)
    calibration = one("annotation/calibration", f"calibration-s1?-*-grd-{p}-*.xml", "σ⁰ calibration LUT")
    noise = one("annotation/calibration", f"noise-s1?-*-grd-{p}-*.xml", "thermal-noise LUT")
    pattern = re.compile(rf"s1.-[a-z0-9]+-grd-{p}-[^/]*\.tiff$")
    measurement = next((m for m in measurements if pattern.search(m)), None)
    if measurement is None and require_measurement:
        raise InputError(f"{src}: no measurement/s1?-*-grd-{p}-*.tiff (the DN image). The product is incomplete; "
                         f"download it again.")
    root_attrs = _root_attrs(src, safe_dir)
    if root_attrs.get("product_type") != "GRD":
        raise InputError(f"{src}: product type {root_attrs.get('product_type')!r}; plotsm calibrates GRD products. "
                         f"Download the GRD (…_GRDH_…) product of the acquisition.")
    mode = str(root_attrs.get("mode"))
    if mode not in SUPPORTED_MODES:
        raise InputError(f"{src}: acquisition mode {mode}; plotsm supports {', '.join(SUPPORTED_MODES)} "
                         f"(the networks cover 20–45° incidence).")
    pols = [str(x).upper() for x in root_attrs.get("transmitter_receiver_polarisations", [])]
    if pol not in pols:
        raise InputError(f"{src}: no {pol} polarisation (the product has {', '.join(pols) or 'none'}).")
    image = read_image_information(annotation, src)
    return GrdProduct(
        source=src, safe_dir=safe_dir, name=name, polarisation=pol, annotation=annotation, calibration=calibration,
        noise=noise, measurement=measurement,
        platform=f"S1{root_attrs.get('number', '?')}", mode=mode,
        start_time=np.datetime64(root_attrs["start_time"], "us"), stop_time=np.datetime64(root_attrs["stop_time"], "us"),
        orbit_direction=str(root_attrs.get("pass", "")).lower(),
        relative_orbit=int(root_attrs["relative_orbit_number"]), absolute_orbit=int(root_attrs["orbit_number"]),
        processor_version=_processor_version(manifest, src), **image,
    )


def _find_annotation(src: Path, safe_dir: Path, p: str) -> Path:
    folder = safe_dir / "annotation"
    hits = sorted(folder.glob(f"s1?-*-grd-{p}-*.xml")) if folder.is_dir() else []
    if not hits:
        raise InputError(f"{src}: no annotation/s1?-*-grd-{p}-*.xml (product annotation). The product is "
                         f"incomplete or not a GRD; download it again.")
    return hits[0]


def _root_attrs(src: Path, safe_dir: Path) -> dict[str, Any]:
    import xarray as xr

    try:
        return dict(xr.open_dataset(str(safe_dir), engine="sentinel-1").attrs)
    except Exception as exc:  # schema errors of a broken manifest come as many types
        raise InputError(f"{src}: cannot read manifest.safe ({type(exc).__name__}: {exc}). "
                         f"Re-download the product.") from None


def _processor_version(manifest: Path, src: Path) -> str:
    try:
        root = ElementTree.parse(manifest).getroot()
    except ElementTree.ParseError as exc:
        raise InputError(f"{src}: manifest.safe is not readable XML ({exc}). Re-download the product.") from None
    for elem in root.iter():
        if elem.tag.endswith("}software") and elem.get("name") == "Sentinel-1 IPF" and elem.get("version"):
            return str(elem.get("version"))
    return "unknown"
