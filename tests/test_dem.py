"""plotsm.sources.dem: Horn slope of exact planes in projected and geographic CRSs, real SRTM (Rome) sanity,
resampling onto a target grid, atomic writing, and a DEM without CRS.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from plotsm.errors import InputError
from plotsm.sources.dem import horn_slope_deg, slope_deg
from plotsm.zonal import Grid

DATA = Path(__file__).parent / "data"
ROME = DATA / "dem_srtm_rome_30m.tif"


def write_dem(path: Path, z: np.ndarray, transform: Affine, crs: str | None, nodata: float | None = None) -> Path:
    profile = {"driver": "GTiff", "height": z.shape[0], "width": z.shape[1], "count": 1, "dtype": "float64",
               "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)
    return path


def projected_plane(tmp_path: Path, gx: float, gy: float, res: float = 10.0) -> Path:
    rows, cols = np.mgrid[0:20, 0:30]
    x, y = (cols + 0.5) * res, -(rows + 0.5) * res  # metres east and north of the top-left corner
    return write_dem(tmp_path / "plane.tif", 100.0 + gx * x + gy * y,
                     Affine(res, 0, 500_000, 0, -res, 4_800_000), "EPSG:32631")


def test_projected_plane_is_exact(tmp_path: Path) -> None:
    slope = slope_deg(projected_plane(tmp_path, 0.1, 0.0))
    assert slope.dtype == np.float32 and slope.shape == (20, 30)
    np.testing.assert_allclose(slope, math.degrees(math.atan(0.1)), atol=1e-5)  # 5.7106°, edges included
    oblique = slope_deg(projected_plane(tmp_path, 0.1, -0.2))
    np.testing.assert_allclose(oblique, math.degrees(math.atan(math.hypot(0.1, 0.2))), atol=1e-5)


def test_projected_crs_in_feet(tmp_path: Path) -> None:
    foot = 0.3048006096012192  # US survey foot, metres (EPSG:2277)
    rows, cols = np.mgrid[0:10, 0:10]
    z = 0.1 * (cols + 0.5) * 10 * foot  # heights in metres, 10 ft pixels
    path = write_dem(tmp_path / "ft.tif", z, Affine(10, 0, 2_000_000, 0, -10, 10_000_000), "EPSG:2277")
    np.testing.assert_allclose(slope_deg(path), math.degrees(math.atan(0.1)), atol=1e-5)


def test_geographic_plane_built_in_metres(tmp_path: Path) -> None:
    # a 1-arcsecond grid near Rome; every node's height comes from its position in a local transverse Mercator
    # with scale 1 at the centre (ground metres to ~1e-8 over 2 km), z = 0.1·x + 0.05·y
    res = 1 / 3600
    transform = Affine(res, 0, 12.49, 0, -res, 42.01)
    rows, cols = np.mgrid[0:60, 0:60]
    lon, lat = 12.49 + (cols + 0.5) * res, 42.01 - (rows + 0.5) * res
    to_local = Transformer.from_crs("EPSG:4326", "+proj=tmerc +lat_0=42 +lon_0=12.5 +k=1 +ellps=WGS84",
                                    always_xy=True)
    x, y = to_local.transform(lon, lat)
    path = write_dem(tmp_path / "geo.tif", 50.0 + 0.1 * x + 0.05 * y, transform, "EPSG:4326")
    slope = slope_deg(path)
    np.testing.assert_allclose(slope, math.degrees(math.atan(math.hypot(0.1, 0.05))), atol=2e-4)
    # without the per-row metres a degree-grid slope would be absurd: check the east scale is cos(lat)-aware
    east = write_dem(tmp_path / "east.tif", 0.1 * x, transform, "EPSG:4326")
    np.testing.assert_allclose(slope_deg(east), math.degrees(math.atan(0.1)), atol=2e-4)


def test_horn_by_hand() -> None:
    z = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    # dz/dx = ((3 + 6 + 3) − (1 + 2 + 1)) / (8 · 10) = 0.1, dz/dy = 0
    assert horn_slope_deg(z, 10.0, 10.0)[1, 1] == pytest.approx(math.degrees(math.atan(0.1)), abs=1e-5)
    z[0, 0] = np.nan
    slope = horn_slope_deg(z, 10.0, 10.0)
    assert np.isnan(slope[:2, :2]).all() and not np.isnan(slope[2, 2])


def test_rome_srtm_is_plausible() -> None:
    with rasterio.open(ROME) as src:
        heights = src.read(1).astype(np.float64)
    slope = slope_deg(ROME)
    assert slope.shape == (360, 360) and not np.isnan(slope).any()
    assert slope.min() >= 0 and slope.max() < 60  # SRTM 30 m over Rome: hills and embankments, no cliffs
    assert 1.0 < np.median(slope) < 10.0
    assert np.percentile(slope, 5) < 1.5  # the Tiber plain
    # wherever the 3×3 neighbourhood is level, Horn gives exactly 0
    inner = heights[1:-1, 1:-1]
    level = np.ones_like(inner, dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            level &= heights[1 + dr:359 + dr, 1 + dc:359 + dc] == inner
    assert level.sum() > 50
    np.testing.assert_array_equal(slope[1:-1, 1:-1][level], 0.0)
    # steeper where the relief is: the top decile of local height range has a much larger mean slope
    relief = np.abs(np.gradient(heights)[0]) + np.abs(np.gradient(heights)[1])
    assert slope[relief > np.percentile(relief, 90)].mean() > 3 * slope[relief < np.percentile(relief, 10)].mean()


def test_resampled_to_target_grid_and_written(tmp_path: Path) -> None:
    dem = projected_plane(tmp_path, 0.1, 0.0)  # covers x 500000–500300, y 4799800–4800000
    target = Grid(crs="EPSG:32631", transform=Affine(20, 0, 500_050, 0, -20, 4_799_950), width=14, height=9)
    out = slope_deg(dem, tmp_path / "slope.tif", target_grid=target)
    assert out == tmp_path / "slope.tif"
    assert sorted(os.listdir(tmp_path)) == ["plane.tif", "slope.tif"]  # no temporary file left behind
    with rasterio.open(out) as src:
        assert (src.width, src.height) == (14, 9) and src.transform == target.transform
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        values = src.read(1)
    # target pixel centres x 500060–500280, y 4799940–4799820 lie inside the DEM: the plane's slope
    np.testing.assert_allclose(values[:7, :12], math.degrees(math.atan(0.1)), atol=1e-4)
    # centres on or beyond the DEM edge (x ≥ 500300 or y ≤ 4799800) get no data
    assert np.isnan(values[7:, :]).all() and np.isnan(values[:, 12:]).all()
    # a raster path works as target grid too
    again = slope_deg(dem, target_grid=out)
    np.testing.assert_array_equal(again, values)


def test_geographic_dem_onto_utm_grid(tmp_path: Path) -> None:
    target = Grid(crs="EPSG:32633", transform=Affine(30, 0, 290_000, 0, -30, 4_657_000), width=200, height=300)
    slope = slope_deg(ROME, target_grid=target)
    assert slope.shape == (300, 200) and not np.isnan(slope).any()  # x 290–296 km, y 4648–4657 km: inside
    assert 0.5 < np.median(slope) < 15


def test_dem_without_crs_is_refused(tmp_path: Path) -> None:
    path = write_dem(tmp_path / "nocrs.tif", np.zeros((4, 4)), Affine(30, 0, 0, 0, -30, 120), None)
    with pytest.raises(InputError, match=r"nocrs\.tif: DEM has no CRS"):
        slope_deg(path)


def test_missing_dem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="DEM not found"):
        slope_deg(tmp_path / "dem.tif")
