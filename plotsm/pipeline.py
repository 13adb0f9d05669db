"""One acquisition, end to end: zonal statistics → store → SQL model inputs → inversion → store.

``run_acquisition`` composes the stages the sub-commands expose one by one. Parcels are read once; the zonal
engine rasterises them once per raster grid (cached on disk under ``<out>/cache``) and reuses the labels for
every acquisition on that grid. Everything of one acquisition is written in one transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from plotsm.errors import InputError, UsageError
from plotsm.inversion import MaskSettings, invert, network_for
from plotsm.model.infer import load_network
from plotsm.parcels import Parcels
from plotsm.store import Store
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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


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


def run_acquisition(
    parcels: Parcels,
    acq: Acquisition,
    out_dir: Path,
    settings: RunSettings = RunSettings(),
    *,
    engine: ZonalEngine | None = None,
    store: Store | None = None,
    progress: Progress | None = None,
) -> AcquisitionReport:
    """Process one acquisition and commit it (replacing a previous run of the same acquisition)."""
    check_rasters(acq.rasters())
    t0 = time.perf_counter()
    net_name = network_for(settings.apriori)
    network = load_network(net_name, folder=Path(settings.models_dir) if settings.models_dir else None)
    own_store = store is None
    store = store if store is not None else Store(out_dir)
    try:
        if engine is None:
            engine = ZonalEngine(parcels.gdf, rule=settings.rule, cache_dir=Path(out_dir) / "cache")
        obs = observations_table(engine, acq, settings, progress)
        t_zonal = time.perf_counter() - t0
        record = {
            "acquisition_id": acq.acquisition_id,
            "datetime_utc": acq.datetime_utc,
            "platform": acq.platform,
            "orbit_direction": acq.orbit_direction,
            "relative_orbit": acq.relative_orbit,
            "inputs": [{"role": r, "path": str(p), "sha256": sha256_file(Path(p))} for r, p in acq.rasters().items()],
            "settings": settings.to_dict(),
            "apriori": settings.apriori,
            "network": net_name,
        }
        counts: dict[str, int] = {}

        def moisture(inputs: Any) -> pd.DataFrame:
            frame = inputs.to_pandas() if hasattr(inputs, "to_pandas") else pd.DataFrame(inputs)
            res = invert(frame, network, settings.masks)
            counts.update(res["status"].value_counts().to_dict())
            return res

        store.write_acquisition(record, obs, moisture_fn=moisture)
    finally:
        if own_store:
            store.close()
    total = time.perf_counter() - t0
    return AcquisitionReport(
        acquisition_id=acq.acquisition_id,
        network=net_name,
        n_parcels=len(obs),
        status_counts={k: int(v) for k, v in sorted(counts.items())},
        seconds={"zonal": t_zonal, "total": total},
    )
