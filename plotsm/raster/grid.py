"""A raster's grid, opening rasters (missing, unreadable or corrupt files are InputErrors), extents in words."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError

from plotsm.errors import InputError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (WKT), affine transform and shape. Rasters on one grid share their labels."""

    crs: str
    transform: Affine
    width: int
    height: int

    @classmethod
    def from_raster(cls, path: PathLike) -> Grid:
        with open_raster(path) as src:
            return cls.from_dataset(src, path)

    @classmethod
    def from_dataset(cls, src: Any, path: PathLike) -> Grid:
        if src.crs is None:
            raise InputError(
                f"{path}: raster has no CRS. Assign one, e.g. `gdal_edit.py -a_srs EPSG:32631 {Path(path).name}`."
            )
        return cls(crs=src.crs.to_wkt(), transform=src.transform, width=src.width, height=src.height)

    @property
    def n_pixels(self) -> int:
        return self.width * self.height

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel in the CRS's units squared (m² in a projected CRS in metres)."""
        t = self.transform
        return float(abs(t.a * t.e - t.b * t.d))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid in its CRS."""
        corners = np.array([self.transform * (c, r) for c in (0, self.width) for r in (0, self.height)])
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def key(self) -> str:
        """Stable hash of CRS, transform and shape (16 hex digits)."""
        text = "|".join([self.crs, ",".join(repr(float(v)) for v in self.transform[:6]), f"{self.width}x{self.height}"])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_gdal_virtual(path: PathLike) -> bool:
    """True for a GDAL virtual file system path (``/vsizip/{archive.zip}/member``, ``/vsicurl/…``): such a path
    is not on disk, so only opening it tells whether it exists."""
    return str(path).startswith("/vsi")


@contextmanager
def open_raster(path: PathLike) -> Iterator[Any]:
    """Open a raster with rasterio, turning a missing, unreadable or corrupt file into an InputError.
    GDAL virtual paths (:func:`is_gdal_virtual`) are passed to GDAL as they are."""
    if not is_gdal_virtual(path) and not Path(path).is_file():
        raise InputError(f"{path}: raster not found. Pass an existing GeoTIFF.")
    try:
        src = rasterio.open(path)
    except RasterioError as exc:
        raise InputError(f"{path}: cannot read raster ({exc}). Check that it is a valid GeoTIFF (gdalinfo).") from exc
    with src:
        yield src


def format_bounds(bounds: tuple[float, float, float, float]) -> str:
    """``x 411,250–412,950, y 881,000–882,880`` (whole units for projected, 5 decimals for degrees)."""
    x0, y0, x1, y1 = bounds
    digits = 5 if max(abs(v) for v in bounds) <= 360 else 0
    return f"x {x0:,.{digits}f}–{x1:,.{digits}f}, y {y0:,.{digits}f}–{y1:,.{digits}f}"
