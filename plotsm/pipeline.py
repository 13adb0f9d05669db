"""One acquisition: its rasters and settings, the checks on its inputs, and its per-parcel observations table.

:mod:`plotsm.series` composes these into runs (one acquisition or a series): workers compute
:func:`observations_table` with a zonal engine that rasterises the parcels once per grid (cached on disk under
``<out>/cache``), and one writer commits each acquisition in one transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from plotsm.errors import InputError, UsageError, option
from plotsm.inversion import DEFAULT_INVERSION, INVERSIONS, RUN_TEMPORAL, MaskSettings, TemporalSettings
from plotsm.progress import Progress
from plotsm.raster import ROLE_QUANTITY, Decoding, Encoding, Grid, format_bounds, inspect_raster
from plotsm.store.tables import vv_db_of
from plotsm.times import acquisition_id, utc
from plotsm.zonal import ZonalEngine



@dataclass(frozen=True)
class RunSettings:
    """Settings of a run; stored with every acquisition.

    ``vv_unit`` is the unit σ⁰ is read in (decided from ``--vv-unit``, else the rasters' tags and names, by the
    catalogue); ``theta_unit``, ``ndvi_scale``, ``ndvi_offset`` and ``ndvi_nodata`` say how to read rasters whose
    own metadata does not (:class:`plotsm.raster.Encoding`); None = as the files say. ``inversion``: ``single``
    (each date on its own) or ``temporal`` (then the joint inversion of each parcel's series, with ``temporal``'s
    settings; :mod:`plotsm.series.temporal_pass`).
    """

    apriori: Literal["dry", "wet", "none"] = "none"
    rule: Literal["center", "coverage"] = "center"
    vv_unit: Literal["linear", "db"] = "linear"
    buffer_m: float = 0.0
    masks: MaskSettings = field(default_factory=MaskSettings)
    models_dir: str | None = None
    #: the weather rule that chose ``apriori`` (``--apriori auto``; :meth:`plotsm.apriori.AprioriRule.to_dict`)
    apriori_rule: dict[str, Any] | None = None
    theta_unit: Literal["degree", "radian"] | None = None
    ndvi_scale: float | None = None
    ndvi_offset: float | None = None
    ndvi_nodata: float | Literal["none"] | None = None
    inversion: Literal["single", "temporal"] = DEFAULT_INVERSION  # type: ignore[assignment]  # one of INVERSIONS
    temporal: TemporalSettings = RUN_TEMPORAL

    def __post_init__(self) -> None:
        self.encoding()  # checks the values
        if self.inversion not in INVERSIONS:
            raise UsageError(f"{option('inversion')} {self.inversion!r}: expected one of {', '.join(INVERSIONS)}")

    def encoding(self) -> Encoding:
        """How the input rasters are read (:func:`plotsm.raster.inspect_raster`)."""
        return Encoding(vv_unit=self.vv_unit, theta_unit=self.theta_unit, ndvi_scale=self.ndvi_scale,
                        ndvi_offset=self.ndvi_offset, ndvi_nodata=self.ndvi_nodata)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings; encoding options left to the files (None) are omitted, and so is the inversion when
        it is ``single`` (with its temporal settings), so the fingerprints of acquisitions stored before these
        options existed stay valid; with ``temporal`` both are stored, so changing the method changes them."""
        d = asdict(self)
        d["masks"] = self.masks.to_dict()
        for key in ("theta_unit", "ndvi_scale", "ndvi_offset", "ndvi_nodata"):
            if d[key] is None:
                del d[key]
        if self.inversion == "single":
            del d["inversion"], d["temporal"]
        return d


@dataclass(frozen=True)
class Acquisition:
    """One Sentinel-1 acquisition and the analysis-ready rasters paired with it.

    ``ndvi_gap_days``: days between the acquisition and the centre of its NDVI (mid-month for a monthly
    composite); None when the NDVI's date is unknown.
    """

    datetime_utc: datetime
    vv: Path
    theta: Path
    ndvi: Path
    slope: Path | None = None
    platform: str | None = None
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    ndvi_gap_days: float | None = None

    @property
    def acquisition_id(self) -> str:
        """Stable id (:func:`acquisition_id`): re-running the same acquisition replaces its rows."""
        return acquisition_id(self.datetime_utc, self.platform)

    def rasters(self) -> dict[str, Path]:
        out = {"vv": self.vv, "theta": self.theta, "ndvi": self.ndvi}
        if self.slope is not None:
            out["slope"] = self.slope
        return out


@dataclass
class AcquisitionReport:
    acquisition_id: str
    network: str
    n_parcels: int
    status_counts: dict[str, int]
    seconds: dict[str, float]


def parse_datetime(text: str) -> datetime:
    """ISO date or datetime → aware UTC datetime (naive values are taken as UTC)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option('date')} {text!r}: expected an ISO date such as 2024-04-06 or 2024-04-06T17:49:12Z") from None
    return utc(value)


def check_rasters(rasters: dict[str, Path], settings: RunSettings | None = None,
                  known: dict[tuple[str, str], Decoding] | None = None) -> dict[str, Decoding]:
    """Every raster exists, opens, is georeferenced, and holds its quantity in an encoding plotsm can read
    (:func:`plotsm.raster.inspect_raster` on a sample of blocks); checked before anything is written. Returns the
    decoding of each role. ``known`` memoises (role, path) → decoding across acquisitions sharing rasters."""
    encoding = (settings or RunSettings()).encoding()
    out: dict[str, Decoding] = {}
    for role, path in rasters.items():
        key = (role, str(path))
        if known is not None and key in known:
            out[role] = known[key]
            continue
        if not Path(path).is_file():
            raise InputError(f"{path}: {role} raster not found. Pass an existing GeoTIFF to --{role}.")
        out[role] = inspect_raster(path, ROLE_QUANTITY[role], encoding)
        if known is not None:
            known[key] = out[role]
    return out


def observations_table(
    engine: ZonalEngine, acq: Acquisition, settings: RunSettings, progress: Progress | None = None,
    decodings: dict[str, Decoding] | None = None,
) -> pd.DataFrame:
    """Per-parcel inputs of one acquisition: σ⁰ averaged in linear units (and in dB), θ, NDVI and slope means.

    Each raster is decoded and checked as its quantity (``decodings``, else :func:`check_rasters`); what the
    checks saw is in ``table.attrs["inputs"]`` (per role: valid pixels, out-of-range pixels masked, encoding).
    An acquisition whose σ⁰ raster meets no parcel, or has no valid pixel on any parcel, is an InputError that
    shows the extents: nothing useful, nothing committed. ``vv_db`` = 10·log10 of the linear mean
    (:func:`vv_db_of`, NaN where the mean is not > 0) is computed here, once: the store stores it as given."""
    rasters = acq.rasters()
    decodings = decodings if decodings is not None else check_rasters(rasters, settings)
    stats: dict[str, pd.DataFrame] = {}
    for i, (role, path) in enumerate(rasters.items()):
        if progress:
            progress(f"zonal {role}", i, len(rasters))
        stats[role] = engine.stats(Path(path), decoding=decodings[role])
        if role == "vv":
            _check_useful(engine, path, stats[role])
    vv = stats["vv"]
    obs = pd.DataFrame(
        {
            "parcel_id": vv["parcel_id"].astype(str).to_numpy(),
            "n_valid": vv["n_valid"].to_numpy(),
            "n_pixels": vv["n_pixels"].to_numpy(),
            "valid_fraction": vv["valid_fraction"].to_numpy(),
            "vv_linear_mean": vv["mean"].to_numpy(),
            "vv_linear_std": vv["std"].to_numpy(),
            "vv_db": vv_db_of(vv["mean"].to_numpy(dtype=np.float64, na_value=np.nan)),
            "theta_deg": stats["theta"]["mean"].to_numpy(),
            "ndvi": stats["ndvi"]["mean"].to_numpy(),
            "slope_deg": stats["slope"]["mean"].to_numpy() if "slope" in stats else np.nan,
        }
    )
    obs.attrs["inputs"] = {role: table.attrs.get("values", {}) for role, table in stats.items()}
    if progress:
        progress("zonal", len(rasters), len(rasters))
    return obs


def _check_useful(engine: ZonalEngine, path: Path, vv: pd.DataFrame) -> None:
    """InputError when the σ⁰ raster gives no parcel a pixel (no overlap), or no valid pixel (all no data)."""
    if float(vv["n_valid"].sum()) > 0:
        return
    grid = Grid.from_raster(path)
    raster, parcels = format_bounds(grid.bounds), format_bounds(engine.parcels_bounds(grid.crs))
    from pyproj import CRS

    crs = CRS.from_wkt(grid.crs)
    name = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
    if float(vv["n_pixels"].sum()) == 0:
        raise InputError(f"{path}: no parcel overlaps the σ⁰ raster. In {name}, the raster covers {raster} and the "
                         f"parcels {parcels}. Check the parcels' CRS ({option('parcels_crs')}) and that the rasters are of "
                         "the same area.")
    raise InputError(f"{path}: the σ⁰ raster has no valid pixel over any of the {len(vv)} parcels (all no data "
                     f"there; raster {raster}, parcels {parcels} in {name}). Check the σ⁰ raster (gdalinfo -stats) "
                     "or the area of the parcels.")
