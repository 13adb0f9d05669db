"""plotsm.sources.dem: Horn slope of exact planes in projected and geographic CRSs, real SRTM (Rome) sanity,
resampling onto a target grid, atomic writing, and a DEM without CRS; no-data heights without a nodata tag (the
real Benin SRTM crop with 0 in its voids, sentinels such as −32768): warned, set by ``dem_nodata``, recorded in
the slope's tags; ``plotsm dem slope --dem-nodata``.
"""

from __future__ import annotations

import math
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import run_cli
from pyproj import Transformer
from scipy.ndimage import maximum_filter

from plotsm.errors import DataWarning, InputError, UsageError
from plotsm.sources.dem import horn_slope_deg, slope_deg
from plotsm.zonal import Grid

DATA = Path(__file__).parent / "data"
ROME = DATA / "dem_srtm_rome_30m.tif"
BENIN = DATA / "dem_benin_srtm_30m_voids.tif"  # int16, 30 m, 48×25 px, 0 in the voids, no nodata tag


def write_dem(path: Path, z: np.ndarray, transform: Affine, crs: str | None, nodata: float | None = None,
              dtype: str = "float64") -> Path:
    profile = {"driver": "GTiff", "height": z.shape[0], "width": z.shape[1], "count": 1, "dtype": dtype,
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


# ---------------------------------------------------------------------------------- no-data heights


def benin() -> np.ndarray:
    with rasterio.open(BENIN) as src:
        assert src.nodata is None and src.dtypes[0] == "int16"
        return src.read(1)


def next_to(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3×3 window (edges repeated) holds a True: scipy's maximum filter, independent of plotsm."""
    return maximum_filter(mask, size=3, mode="nearest")


def test_benin_voids_are_warned_with_their_share_and_slope() -> None:
    z = benin()
    # 584 of the 1,200 pixels are 0 (48.67 %); the real heights span 168–184 m
    assert (np.count_nonzero(z == 0), z.size) == (584, 1200) and (z[z > 0].min(), z.max()) == (168, 184)
    with pytest.warns(DataWarning, match=r"dem_benin_srtm_30m_voids\.tif: no nodata tag, and 48\.7 % of the pixels "
                                         r"\(584 of 1,200\) are exactly 0, while the other heights span 168–184 m: "
                                         r"probably missing heights \(voids\)\. .*slopes of up to 80\.5°.* Pass "
                                         r"--dem-nodata 0 to treat them as no data, or --dem-nodata none if 0 is a "
                                         r"real height"):
        slope = slope_deg(BENIN)
    # computed as before (heights taken as they are): cliffs where 0 meets 168–184 m. The steepest, on the bottom
    # row (24, 31): 180 m above 0 m, and below it the odd reflection −180 m, so dz/dy = (4·180 + 4·180)/(8·30) = 6
    assert np.nanmax(slope) == pytest.approx(math.degrees(math.atan(6.0)), abs=1e-4)  # 80.538°
    assert np.argmax(slope) == 24 * 48 + 31
    # inside the crop, (15, 33): window 183 182 0 / 182 0 0 / 181 0 0 → dz/dx = −(183 + 364 + 181)/240,
    # dz/dy = (183 + 364)/240 − 181/240 → 73.59°
    assert z[14:17, 32:35].tolist() == [[183, 182, 0], [182, 0, 0], [181, 0, 0]]
    assert slope[15, 33] == pytest.approx(math.degrees(math.atan(math.hypot(728 / 240, 366 / 240))), abs=1e-4)
    assert (slope[next_to(z == 0) & next_to(z != 0)] > 45).sum() > 50  # far above the 10° slope mask


def test_benin_dem_nodata_0_leaves_no_data_at_the_voids_and_the_rest_unchanged() -> None:
    z = benin()
    with pytest.warns(DataWarning, match="exactly 0"):
        before = slope_deg(BENIN)
    after = slope_deg(BENIN, dem_nodata=0)  # no warning (pytest turns one into an error)
    spoiled = next_to(z == 0)  # 677 pixels: the 584 voids and the 93 real heights next to them
    assert spoiled.sum() == 677
    np.testing.assert_array_equal(np.isnan(after), spoiled)
    np.testing.assert_array_equal(after[~spoiled], before[~spoiled])  # interior slopes unchanged
    assert np.nanmax(after) == pytest.approx(6.388, abs=1e-3)  # the valley's own relief, 80.5° before
    # the same choice as text (the CLI's)
    np.testing.assert_array_equal(slope_deg(BENIN, dem_nodata="0"), after)


def test_dem_nodata_none_silences_the_check() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = slope_deg(BENIN, dem_nodata="none")
        assert np.array_equal(slope_deg(BENIN, dem_nodata="None"), quiet)
    with pytest.warns(DataWarning, match="exactly 0"):
        np.testing.assert_array_equal(slope_deg(BENIN), quiet)  # same heights, only the warning differs


def test_hand_made_plane_with_a_void(tmp_path: Path) -> None:
    """A 20×30 plane rising 0.1 m/m eastwards (from 100 m) with a 4×5 void of zeros: 20 of 600 px = 3.3 %."""
    rows, cols = np.mgrid[0:20, 0:30]
    plane = 100.0 + 0.1 * (cols + 0.5) * 10.0  # 100.5 … 129.5 m
    z = plane.copy()
    z[8:12, 10:15] = 0.0
    path = write_dem(tmp_path / "void.tif", z, Affine(10, 0, 500_000, 0, -10, 4_800_000), "EPSG:32631")
    with pytest.warns(DataWarning, match=r"3\.3 % of the pixels \(20 of 600\) are exactly 0, while the other "
                                         r"heights span 100–130 m"):
        raw = slope_deg(path)
    masked = slope_deg(path, dem_nodata=0)
    expected = math.degrees(math.atan(np.gradient(plane, 10.0, axis=1).mean()))  # numpy: 0.1 m/m → 5.7106°
    spoiled = next_to(z == 0)
    np.testing.assert_array_equal(np.isnan(masked), spoiled)
    np.testing.assert_allclose(masked[~spoiled], expected, atol=1e-5)
    np.testing.assert_allclose(raw[~spoiled], expected, atol=1e-5)
    # west of the void, (10, 9): window 108.5 109.5 0 on rows 9–11 → dz/dx = (0 − 4·108.5)/(8·10), dz/dy = 0
    assert raw[10, 9] == pytest.approx(math.degrees(math.atan(434 / 80)), abs=1e-4)  # 79.56°


def test_tagged_dem_is_not_warned_and_dem_nodata_adds_to_the_tag(tmp_path: Path) -> None:
    z = benin()
    with rasterio.open(BENIN) as src:
        transform, crs = src.transform, src.crs.to_string()
    tagged = write_dem(tmp_path / "tagged.tif", z, transform, crs, nodata=0, dtype="int16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(slope_deg(tagged), slope_deg(BENIN, dem_nodata=0))
    # another tag (−32768, absent here): the file decided, so no check; --dem-nodata 0 masks the zeros as well
    other = write_dem(tmp_path / "other.tif", z, transform, crs, nodata=-32768, dtype="int16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.nanmax(slope_deg(other)) > 80
        np.testing.assert_array_equal(slope_deg(other, dem_nodata=0), slope_deg(BENIN, dem_nodata=0))


@pytest.mark.parametrize("sentinel, dtype", [(-32768, "int16"), (-9999, "float32"), (32767, "int16"),
                                              (65535, "uint16")])
def test_void_sentinels_are_warned_at_any_share(tmp_path: Path, sentinel: int, dtype: str) -> None:
    z = np.full((20, 30), 150.0)
    z[5, 7] = sentinel  # 1 of 600 pixels = 0.17 %
    path = write_dem(tmp_path / "s.tif", z, Affine(30, 0, 0, 0, -30, 600), "EPSG:32631", dtype=dtype)
    with pytest.warns(DataWarning, match=rf"s\.tif: no nodata tag, and 0\.2 % of the pixels \(1 of 600\) are "
                                         rf"{sentinel}, while the other heights span 150–150 m: a classic no-data "
                                         rf"value .*Pass --dem-nodata {sentinel} to treat them"):
        raw = slope_deg(path)
    assert np.nanmax(raw) > 85
    masked = slope_deg(path, dem_nodata=sentinel)
    np.testing.assert_array_equal(np.isnan(masked), next_to(z == sentinel))  # the 9 pixels around it
    assert np.nanmax(masked) == 0.0


def test_a_few_zeros_stay_below_the_1_percent_threshold(tmp_path: Path) -> None:
    z = np.full((20, 30), 150.0)
    z.ravel()[:5] = 0.0  # 5 of 600 = 0.83 % < 1 %: not warned
    path = write_dem(tmp_path / "few.tif", z, Affine(30, 0, 0, 0, -30, 600), "EPSG:32631", dtype="int16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slope_deg(path)
    z.ravel()[5] = 0.0  # 6 of 600 = 1.0 %: warned
    path = write_dem(tmp_path / "six.tif", z, Affine(30, 0, 0, 0, -30, 600), "EPSG:32631", dtype="int16")
    with pytest.warns(DataWarning, match=r"1\.0 % of the pixels \(6 of 600\) are exactly 0"):
        slope_deg(path)


def test_bad_dem_nodata_values() -> None:
    with pytest.raises(UsageError, match=r"--dem-nodata 'zero': give the height value that means no data"):
        slope_deg(BENIN, dem_nodata="zero")
    with pytest.raises(UsageError, match=r"dem_benin_srtm_30m_voids\.tif: --dem-nodata 0\.5 cannot occur in its "
                                         r"int16 heights"):
        slope_deg(BENIN, dem_nodata=0.5)


def test_slope_geotiff_records_the_nodata(tmp_path: Path) -> None:
    with pytest.warns(DataWarning, match="exactly 0"):
        slope_deg(BENIN, tmp_path / "warned.tif")
    slope_deg(BENIN, tmp_path / "set.tif", dem_nodata=0)
    slope_deg(BENIN, tmp_path / "none.tif", dem_nodata="none")
    slope_deg(ROME, tmp_path / "rome.tif")
    tags = {}
    for name in ("warned", "set", "none", "rome"):
        with rasterio.open(tmp_path / f"{name}.tif") as src:
            tags[name] = {k: v for k, v in src.tags().items() if k.startswith("DEM_")}
    assert tags == {
        "warned": {"DEM_NODATA": "none", "DEM_NODATA_FROM": "none (no nodata tag, no --dem-nodata)",
                   "DEM_NODATA_WARNING": "48.7 % of the pixels (584 of 1,200) are exactly 0"},
        "set": {"DEM_NODATA": "0", "DEM_NODATA_FROM": "--dem-nodata"},
        "none": {"DEM_NODATA": "none", "DEM_NODATA_FROM": "--dem-nodata none"},
        "rome": {"DEM_NODATA": "-32768", "DEM_NODATA_FROM": "nodata tag"},
    }


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    """`plotsm ARGS` in this process: exit code, stdout and stderr as a subprocess gives them."""
    return run_cli(*args)


def test_cli_dem_nodata_and_new_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "newdir" / "sub" / "slope.tif"
    res = cli("dem", "slope", BENIN, "--out", out, "--dem-nodata", "0")
    assert res.returncode == 0, res.stderr
    assert "warning:" not in res.stderr and f"wrote {out}" in res.stdout.replace("\n", "")
    with rasterio.open(out) as src:
        assert src.tags()["DEM_NODATA"] == "0"
        np.testing.assert_array_equal(src.read(1), slope_deg(BENIN, dem_nodata=0))
    res = cli("dem", "slope", BENIN, "--out", tmp_path / "warned.tif")
    assert res.returncode == 0, res.stderr
    stderr = " ".join(res.stderr.split())
    assert stderr.startswith("warning: ") and "48.7 % of the pixels (584 of 1,200) are exactly 0" in stderr
    assert "--dem-nodata 0" in stderr and ".py:" not in stderr  # one line per warning, no Python source line
    res = cli("dem", "slope", BENIN, "--out", tmp_path / "bad.tif", "--dem-nodata", "zero")
    assert res.returncode == 2 and "give the height value" in res.stderr and not (tmp_path / "bad.tif").exists()
