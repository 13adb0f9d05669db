"""plotsm: plot-scale surface soil moisture from Sentinel-1 and Sentinel-2.

Physics forward model (Water Cloud Model over a Baghdadi-calibrated IEM), neural inversion networks
exported to ONNX, per-parcel zonal statistics, DuckDB/GeoParquet storage and a typer CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plotsm")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
