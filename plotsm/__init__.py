"""plotsm: plot-scale surface soil moisture from Sentinel-1 and Sentinel-2.

Physics forward model (Water Cloud Model over a Baghdadi-calibrated IEM), neural inversion networks
exported to ONNX, per-parcel zonal statistics, DuckDB/GeoParquet storage and a typer CLI.

The Python API (:mod:`plotsm.api` and the pieces ``plotsm run`` is made of)::

    import plotsm
    parcels = plotsm.read_parcels("fields.gpkg")            # or plotsm.as_parcels(gdf, id_field="id")
    obs = plotsm.observe(parcels, vv="vv.tif", theta="theta.tif", ndvi="ndvi.tif", slope="slope.tif")
    est = plotsm.estimate_moisture(obs, apriori="dry")      # mv_pct, status, network, per parcel
    stats = plotsm.zonal_stats(parcels, "ndvi.tif", stats=["mean", "std"], rule="coverage")
    plots = plotsm.segment_ndvi("monthly/", mask="worldcover.tif")  # no parcels: plots from monthly NDVI

Names are imported on first use, so ``import plotsm`` (and the CLI's start) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("plotsm")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"

#: public name → the module that defines it
_EXPORTS = {
    "read_parcels": "plotsm.parcels", "as_parcels": "plotsm.parcels", "Parcels": "plotsm.parcels",
    "observe": "plotsm.api", "estimate_moisture": "plotsm.api", "zonal_stats": "plotsm.api",
    "run_series": "plotsm.series", "SeriesJob": "plotsm.series", "SeriesReport": "plotsm.series",
    "delete_acquisitions": "plotsm.series", "plan_jobs": "plotsm.series",
    "Acquisition": "plotsm.pipeline", "RunSettings": "plotsm.pipeline",
    "MaskSettings": "plotsm.inversion", "Encoding": "plotsm.raster",
    "Store": "plotsm.store",
    "export_moisture": "plotsm.export", "moisture_frame": "plotsm.export", "wide_frame": "plotsm.export",
    "scan_s1": "plotsm.catalog", "scan_ndvi": "plotsm.catalog", "pair_acquisitions": "plotsm.catalog",
    "run_acquisitions": "plotsm.catalog",
    "segment_ndvi": "plotsm.segment", "write_plots": "plotsm.segment", "SegmentSettings": "plotsm.segment",
    "build_report": "plotsm.report", "validate_store": "plotsm.validate",
}

__all__ = [
    "__version__",
    "Acquisition",
    "Encoding",
    "MaskSettings",
    "Parcels",
    "RunSettings",
    "SegmentSettings",
    "SeriesJob",
    "SeriesReport",
    "Store",
    "as_parcels",
    "build_report",
    "delete_acquisitions",
    "estimate_moisture",
    "export_moisture",
    "moisture_frame",
    "observe",
    "pair_acquisitions",
    "plan_jobs",
    "read_parcels",
    "run_acquisitions",
    "run_series",
    "scan_ndvi",
    "scan_s1",
    "segment_ndvi",
    "validate_store",
    "wide_frame",
    "write_plots",
    "zonal_stats",
]

if TYPE_CHECKING:  # what static checkers see; at run time the names are imported lazily (__getattr__)
    from plotsm.api import estimate_moisture, observe, zonal_stats
    from plotsm.catalog import pair_acquisitions, run_acquisitions, scan_ndvi, scan_s1
    from plotsm.export import export_moisture, moisture_frame, wide_frame
    from plotsm.inversion import MaskSettings
    from plotsm.parcels import Parcels, as_parcels, read_parcels
    from plotsm.pipeline import Acquisition, RunSettings
    from plotsm.raster import Encoding
    from plotsm.report import build_report
    from plotsm.segment import SegmentSettings, segment_ndvi, write_plots
    from plotsm.series import SeriesJob, SeriesReport, delete_acquisitions, plan_jobs, run_series
    from plotsm.store import Store
    from plotsm.validate import validate_store


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'plotsm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
