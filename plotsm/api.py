"""The Python API for notebooks and scripts: parcels and rasters in, pandas/GeoPandas frames out, no store needed.

A hydrologist with a GeoDataFrame and three rasters::

    import plotsm
    parcels = plotsm.read_parcels("fields.gpkg")            # or plotsm.as_parcels(gdf, id_field="id")
    obs = plotsm.observe(parcels, vv="vv.tif", theta="theta.tif", ndvi="ndvi.tif", slope="slope.tif")
    est = plotsm.estimate_moisture(obs, apriori="dry")      # mv_pct, status, network, per parcel
    stats = plotsm.zonal_stats(parcels, "ndvi.tif", stats=["mean", "std"], rule="coverage")

Rasters are accepted as paths, open rasterio datasets, or ``(array, transform, crs)`` tuples (held in GDAL's
in-memory file system while they are read). Every raster goes through the same decoding and checks as on the
command line (:mod:`plotsm.raster`), so a σ⁰ in dB without ``vv_unit="db"`` is refused here as there. Frames carry
the column names of the store, with their units: ``vv_linear_mean``, ``vv_db``, ``theta_deg``, ``slope_deg``,
``mv_pct``. The same functions are what ``plotsm run`` composes (:func:`plotsm.series.run_series`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from plotsm.errors import UsageError
from plotsm.inversion import MaskSettings, invert, network_for
from plotsm.model.infer import load_network
from plotsm.parcels import Parcels, inner_buffer
from plotsm.pipeline import Acquisition, RunSettings, check_rasters, observations_table, vv_db_of
from plotsm.raster import ROLE_QUANTITY, Encoding, inspect_raster
from plotsm.zonal import STATISTICS, ZonalEngine

#: What a raster argument may be: a path, an open rasterio dataset, or (array, affine transform, CRS).
RasterLike = Any
Rule = Literal["center", "coverage"]


@contextmanager
def raster_path(raster: RasterLike, name: str = "raster") -> Iterator[Path]:
    """A path GDAL can open for ``raster``: the path itself, an open dataset's own path, or an in-memory GeoTIFF
    (``/vsimem/``) holding an ``(array, transform, crs)`` tuple for as long as the ``with`` block lasts."""
    if isinstance(raster, (str, os.PathLike)):
        yield Path(raster)
        return
    if hasattr(raster, "name") and hasattr(raster, "read") and hasattr(raster, "transform"):
        yield Path(raster.name)  # an open rasterio dataset (file or /vsimem/)
        return
    if isinstance(raster, tuple) and len(raster) == 3:
        from rasterio.io import MemoryFile

        array, transform, crs = raster
        data = np.asarray(array)
        if data.ndim != 2:
            raise UsageError(f"{name}: expected a 2-D array (rows, columns), got shape {data.shape}.")
        with MemoryFile() as memory:
            with memory.open(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype,
                             transform=transform, crs=crs, tiled=True, blockxsize=256, blockysize=256) as dst:
                dst.write(data, 1)
            yield Path(memory.name)
        return
    raise UsageError(f"{name}: expected a path, an open rasterio dataset or (array, transform, crs); got "
                     f"{type(raster).__name__}.")


def _parcels(parcels: Parcels | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if isinstance(parcels, Parcels):
        return parcels.gdf
    if isinstance(parcels, gpd.GeoDataFrame) and "parcel_id" in parcels.columns:
        return parcels
    raise UsageError("parcels: expected plotsm.read_parcels(…) or plotsm.as_parcels(gdf, id_field=…), or a "
                     "GeoDataFrame with a parcel_id column.")


def _engine(parcels: Parcels | gpd.GeoDataFrame, rule: Rule, buffer_m: float) -> ZonalEngine:
    gdf = _parcels(parcels)
    zones = gdf if not buffer_m else inner_buffer(gdf, buffer_m)
    return ZonalEngine(zones, rule=rule)


def observe(parcels: Parcels | gpd.GeoDataFrame, *, vv: RasterLike, theta: RasterLike, ndvi: RasterLike,
            slope: RasterLike | None = None, rule: Rule = "center", buffer_m: float = 0.0,
            vv_unit: Literal["linear", "db"] | None = None, theta_unit: Literal["degree", "radian"] | None = None,
            ndvi_scale: float | None = None, ndvi_offset: float | None = None,
            ndvi_nodata: float | Literal["none"] | None = None) -> pd.DataFrame:
    """Per-parcel observations of one acquisition, as ``plotsm run`` stores them: ``parcel_id``, ``n_valid``,
    ``n_pixels``, ``valid_fraction``, ``vv_linear_mean`` (σ⁰ averaged in linear power), ``vv_linear_std``,
    ``vv_db``, ``theta_deg``, ``ndvi``, ``slope_deg`` (NaN without ``slope``), in the parcels' order.

    The encoding options are those of ``plotsm run`` (``vv_unit``: default the raster's UNIT tag, else linear).
    Raises :class:`~plotsm.errors.InputError` for a raster plotsm cannot interpret or that gives no parcel a
    valid σ⁰ pixel (with the extents), as the command line does."""
    inputs = {"vv": vv, "theta": theta, "ndvi": ndvi, **({"slope": slope} if slope is not None else {})}
    with ExitStack() as stack:
        paths = {role: stack.enter_context(raster_path(r, role)) for role, r in inputs.items()}
        unit = vv_unit or inspect_raster(paths["vv"], "sigma0", Encoding(theta_unit=theta_unit)).unit
        settings = RunSettings(rule=rule, buffer_m=buffer_m, vv_unit=unit,  # type: ignore[arg-type]
                               theta_unit=theta_unit, ndvi_scale=ndvi_scale, ndvi_offset=ndvi_offset,
                               ndvi_nodata=ndvi_nodata)
        acq = Acquisition(datetime_utc=datetime.now(timezone.utc), vv=paths["vv"], theta=paths["theta"],
                          ndvi=paths["ndvi"], slope=paths.get("slope"))
        decodings = check_rasters(acq.rasters(), settings)
        obs = observations_table(_engine(parcels, rule, buffer_m), acq, settings, decodings=decodings)
    obs.attrs["slope_given"] = slope is not None
    return obs


def estimate_moisture(observations: pd.DataFrame, apriori: Literal["dry", "wet", "none"] = "none", *,
                      masks: MaskSettings | None = None, models_dir: str | os.PathLike[str] | None = None,
                      slope_given: bool | None = None) -> pd.DataFrame:
    """Moisture of every row of ``observations`` (:func:`observe`'s frame, or any frame with ``parcel_id``,
    ``theta_deg``, ``ndvi``, ``n_valid`` and ``vv_db`` or ``vv_linear_mean``): ``parcel_id``, ``mv_pct`` (vol.%,
    NA unless ``status`` is ``ok``), ``mv_std_pct`` (its posterior standard deviation under the network's training
    noise model, vol.%, NA unless ``ok``), ``mv_lo95_pct``, ``mv_lo68_pct``, ``mv_hi68_pct``, ``mv_hi95_pct`` (the
    same posterior's equal-tailed 95 % and 68 % credible intervals, vol.%, NA unless ``ok``), ``network``, ``status``, ``model_version``, ``method`` (``"single"``: one
    date on its own), in the same order.

    ``apriori`` picks the network (dry → dry, wet → wet, none → all); ``masks`` the quality flags (defaults of
    ``plotsm run``). ``slope_given``: whether a parcel without a slope value is ``no_data`` (default: as
    :func:`observe` recorded it)."""
    frame = observations.copy()
    if "vv_db" not in frame.columns:
        if "vv_linear_mean" not in frame.columns:
            raise UsageError("observations: need a vv_db or a vv_linear_mean column (plotsm.observe gives both).")
        frame["vv_db"] = vv_db_of(frame["vv_linear_mean"].to_numpy(dtype=float, na_value=np.nan))
    missing = [c for c in ("parcel_id", "theta_deg", "ndvi", "n_valid") if c not in frame.columns]
    if missing:
        raise UsageError(f"observations: missing column(s) {', '.join(missing)} (plotsm.observe gives them).")
    network = load_network(network_for(apriori), folder=Path(models_dir) if models_dir else None)
    given = observations.attrs.get("slope_given", False) if slope_given is None else slope_given
    return invert(frame, network, masks or MaskSettings(), slope_given=bool(given))


def zonal_stats(parcels: Parcels | gpd.GeoDataFrame, raster: RasterLike, *,
                stats: Sequence[str] = ("mean",), rule: Rule = "center", band: int = 1,
                quantity: Literal["sigma0", "theta", "ndvi", "slope"] | None = None,
                encoding: Encoding | None = None, buffer_m: float = 0.0) -> pd.DataFrame:
    """Per-parcel statistics of one raster band: ``parcel_id`` and the requested ``stats`` among ``n_valid``,
    ``n_pixels``, ``valid_fraction``, ``mean``, ``std`` (population), ``min``, ``max``, in the parcels' order.

    ``rule="center"`` counts the pixels whose centre is in a parcel (as rasterstats), ``"coverage"`` weights them
    by the exact fraction covered (as exactextract). ``quantity`` decodes and checks the raster as that quantity
    (:mod:`plotsm.raster`: e.g. ``"ndvi"`` decodes plotsm's uint8 and refuses integers without a scale); without
    it the values are taken as they are (nodata tag and NaN excluded)."""
    unknown = [s for s in stats if s not in STATISTICS]
    if unknown:
        raise UsageError(f"stats {', '.join(unknown)}: unknown; choose among {', '.join(STATISTICS)}.")
    if quantity is not None and quantity not in ROLE_QUANTITY.values():
        raise UsageError(f"quantity {quantity!r}: expected one of {', '.join(ROLE_QUANTITY.values())}.")
    with raster_path(raster) as path:
        decoding = inspect_raster(path, quantity, encoding or Encoding(), band) if quantity else None
        table = _engine(parcels, rule, buffer_m).stats(path, band=band, decoding=decoding)
    return table[["parcel_id", *stats]]


__all__ = ["RasterLike", "estimate_moisture", "observe", "raster_path", "zonal_stats"]
