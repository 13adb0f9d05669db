"""One acquisition: its rasters and settings, the checks on its inputs, and its per-parcel observations table.

:mod:`plotsm.series` composes these into runs (one acquisition or a series): workers compute
:func:`observations_table` with a zonal engine that rasterises the parcels once per grid (cached on disk under
``<out>/cache``), and one writer commits each acquisition in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from plotsm.errors import InputError, UsageError
from plotsm.inversion import MaskSettings
from plotsm.zonal import ZonalEngine, open_raster

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunSettings:
    """Settings of a run; stored with every acquisition."""

    apriori: Literal["dry", "wet", "none"] = "none"
    rule: Literal["center", "coverage"] = "center"
    vv_unit: Literal["linear", "db"] = "linear"
    buffer_m: float = 0.0
    masks: MaskSettings = field(default_factory=MaskSettings)
    models_dir: str | None = None
    #: the weather rule that chose ``apriori`` (``--apriori auto``; :meth:`plotsm.weather.AprioriRule.to_dict`)
    apriori_rule: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["masks"] = self.masks.to_dict()
        return d


@dataclass(frozen=True)
class Acquisition:
    """One Sentinel-1 acquisition and the analysis-ready rasters paired with it."""

    datetime_utc: datetime
    vv: Path
    theta: Path
    ndvi: Path
    slope: Path | None = None
    platform: str | None = None
    orbit_direction: str | None = None
    relative_orbit: int | None = None

    @property
    def acquisition_id(self) -> str:
        """Stable id: re-running the same acquisition replaces its rows."""
        return self.datetime_utc.strftime("%Y%m%dT%H%M%S") + (f"_{self.platform}" if self.platform else "")

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
        raise UsageError(f"--date {text!r}: expected an ISO date such as 2024-04-06 or 2024-04-06T17:49:12Z") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_rasters(rasters: dict[str, Path]) -> None:
    """Every raster exists and opens as a georeferenced raster (checked before anything is written)."""
    for role, path in rasters.items():
        if not Path(path).is_file():
            raise InputError(f"{path}: {role} raster not found. Pass an existing GeoTIFF to --{role}.")
        with open_raster(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: {role} raster has no CRS. Assign one (gdal_edit.py -a_srs EPSG:32631 {path}).")


def observations_table(
    engine: ZonalEngine, acq: Acquisition, settings: RunSettings, progress: Progress | None = None
) -> pd.DataFrame:
    """Per-parcel inputs of one acquisition: σ⁰ averaged in linear units, θ, NDVI and slope means.

    (``vv_db`` = 10·log10 of the linear mean is derived in SQL, ``sql/model_inputs.sql``.)"""
    rasters = acq.rasters()
    stats: dict[str, pd.DataFrame] = {}
    for i, (role, path) in enumerate(rasters.items()):
        if progress:
            progress(f"zonal {role}", i, len(rasters))
        transform = "db_to_linear" if (role == "vv" and settings.vv_unit == "db") else None
        stats[role] = engine.stats(Path(path), transform=transform)
    vv = stats["vv"]
    obs = pd.DataFrame(
        {
            "parcel_id": vv["parcel_id"].astype(str).to_numpy(),
            "n_valid": vv["n_valid"].to_numpy(),
            "n_pixels": vv["n_pixels"].to_numpy(),
            "valid_fraction": vv["valid_fraction"].to_numpy(),
            "vv_linear_mean": vv["mean"].to_numpy(),
            "vv_linear_std": vv["std"].to_numpy(),
            "theta_deg": stats["theta"]["mean"].to_numpy(),
            "ndvi": stats["ndvi"]["mean"].to_numpy(),
            "slope_deg": stats["slope"]["mean"].to_numpy() if "slope" in stats else np.nan,
        }
    )
    if progress:
        progress("zonal", len(rasters), len(rasters))
    return obs
