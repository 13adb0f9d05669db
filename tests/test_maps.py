"""Moisture as rasters (``plotsm export --format cog``) and quick-look maps (``plotsm map``), on a small store whose
values are known: a 10 × 10 grid of 100 m × 150 m parcels, 200 m apart, mv_pct = number / 10 + 10 (A1) or + 20
(A2), every seventh parcel flagged ``too_few_pixels`` (no moisture)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import rasterio
import shapely
from conftest import run_cli, write_raster

from plotsm.errors import UsageError
from plotsm.raster import Grid
from plotsm.report.quicklook import quicklook_png
from plotsm.report.rasters import burn, export_cogs, make_grid
from plotsm.store import Store

N_SIDE = 10
X0, Y0 = 500_000.0, 4_800_000.0
DATES = {"A1": "2024-04-06T17:49:12Z", "A2": "2024-04-18T17:49:12Z"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parcels(crs: str = "EPSG:32631") -> gpd.GeoDataFrame:
    ix, iy = np.meshgrid(np.arange(N_SIDE), np.arange(N_SIDE))
    x, y = X0 + 200.0 * ix.ravel(), Y0 + 200.0 * iy.ravel()
    gdf = gpd.GeoDataFrame({"parcel_id": np.arange(1, N_SIDE**2 + 1)},
                           geometry=shapely.box(x, y, x + 100.0, y + 150.0), crs="EPSG:32631")
    return gdf.to_crs(crs)


def expected_mv(number: int, acq_id: str) -> float:
    return number / 10 + (10.0 if acq_id == "A1" else 20.0)


def is_ok(number: int) -> bool:
    return number % 7 != 0


def build(folder: Path, crs: str = "EPSG:32631") -> Path:
    gdf = parcels(crs)
    with Store(folder) as store:
        store.write_parcels(gdf)
        ids = gdf["parcel_id"].astype(str).tolist()
        obs = pd.DataFrame({"parcel_id": ids, "n_valid": 40, "n_pixels": 50, "valid_fraction": 0.8,
                            "vv_linear_mean": 0.1, "vv_linear_std": 0.01, "theta_deg": 36.0, "ndvi": 0.3,
                            "slope_deg": 1.0})
        for acq_id, when in DATES.items():

            def fn(inputs: pa.Table, acq_id: str = acq_id) -> pd.DataFrame:
                numbers = [int(i) for i in inputs.column("parcel_id").to_pylist()]
                mv = [expected_mv(n, acq_id) if is_ok(n) else np.nan for n in numbers]
                return pd.DataFrame({"parcel_id": [str(n) for n in numbers],
                                     "mv_pct": pd.array(mv, dtype="Float64"), "network": "all",
                                     "status": ["ok" if is_ok(n) else "too_few_pixels" for n in numbers],
                                     "model_version": "test-1"})

            store.write_acquisition({"acquisition_id": acq_id, "datetime_utc": when}, obs, fn)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("maps-run"))


def centres() -> list[tuple[int, float, float]]:
    """(number, x, y) of each parcel's centre in UTM 31N."""
    gdf = parcels()
    c = gdf.geometry.centroid
    return list(zip(gdf["parcel_id"].tolist(), c.x.tolist(), c.y.tolist()))


# ------------------------------------------------------------------------------------------------- COG float


def test_one_cog_per_date_with_the_stored_values_at_parcel_centres(run: Path, tmp_path: Path):
    result = run_cli("export", "--format", "cog", "--out", run, "--to", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moisture_A1.tif", "moisture_A2.tif"]  # no leftovers
    for acq_id in DATES:
        with rasterio.open(tmp_path / f"moisture_{acq_id}.tif") as src:
            assert src.crs.to_epsg() == 32631 and src.res == (10.0, 10.0) and src.dtypes == ("float32",)
            assert src.transform.c % 10 == 0 and src.transform.f % 10 == 0  # edges on multiples of --res
            values = [v[0] for v in src.sample([(x, y) for _, x, y in centres()])]
            gap = next(src.sample([(X0 + 150.0, Y0 + 75.0)]))[0]  # between two parcels
        for (number, _, _), value in zip(centres(), values):
            if is_ok(number):
                assert value == pytest.approx(expected_mv(number, acq_id), abs=1e-5)
            else:
                assert np.isnan(value)
        assert np.isnan(gap)


def test_tags_and_cog_layout(run: Path, tmp_path: Path):
    (item,) = export_cogs(run, tmp_path, date="2024-04-18")
    with rasterio.open(item.path) as src:
        tags = src.tags()
        assert tags["ACQUISITION_ID"] == "A2" and tags["DATETIME_UTC"] == "2024-04-18T17:49:12Z"
        assert tags["ENCODING"] == "float" and tags["UNIT"] == "vol.%"
        assert tags["N_PARCELS_OK"] == str(sum(is_ok(n) for n in range(1, 101)))
        assert "mv_pct" in src.descriptions[0] and "vol.%" in src.descriptions[0]
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.profile["tiled"] and src.block_shapes == [(512, 512)]
        assert src.width < 512 and src.overviews(1) == []  # one tile: no overview needed
        assert np.isnan(src.nodata)


def test_a_raster_larger_than_a_tile_has_overviews(run: Path, tmp_path: Path):
    (item,) = export_cogs(run, tmp_path, date="2024-04-06", res=2.0)
    with rasterio.open(item.path) as src:
        assert src.width > 512 and src.res == (2.0, 2.0)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1)[0] == 2


def test_grid_takes_the_given_raster_grid_exactly(run: Path, tmp_path: Path):
    ref = write_raster(tmp_path / "ndvi.tif", np.zeros((60, 50), "float32"), x0=X0 - 15.0, y0=Y0 + 2015.0, res=40.0)
    maps = tmp_path / "maps"
    result = run_cli("export", "--format", "cog", "--out", run, "--grid", ref, "--to", maps, "--date", "2024-04-06")
    assert result.returncode == 0, result.stderr
    with rasterio.open(ref) as a, rasterio.open(maps / "moisture_A1.tif") as b:
        assert (b.crs, b.transform, b.shape) == (a.crs, a.transform, a.shape)
        (value,) = next(b.sample([(X0 + 200.0 * 3 + 50.0, Y0 + 75.0)]))  # parcel 4
    assert value == pytest.approx(expected_mv(4, "A1"), abs=1e-5)


def test_a_grid_away_from_the_parcels_is_refused(run: Path, tmp_path: Path):
    ref = write_raster(tmp_path / "far.tif", np.zeros((10, 10), "float32"), x0=X0 + 50_000.0)
    result = run_cli("export", "--format", "cog", "--out", run, "--grid", ref, "--to", tmp_path / "maps")
    assert result.returncode == 4
    assert "meets no parcel" in result.stderr and "--res" in result.stderr
    assert not (tmp_path / "maps").exists()


def test_geographic_parcels_are_burnt_in_their_utm_zone(tmp_path: Path):
    folder = build(tmp_path / "run", crs="EPSG:4326")
    written = export_cogs(folder, tmp_path / "maps", date="2024-04-06")
    with rasterio.open(written[0].path) as src:
        assert src.crs.to_epsg() == 32631
        (value,) = next(src.sample([(X0 + 200.0 * 2 + 50.0, Y0 + 200.0 + 75.0)]))  # parcel 13
    assert value == pytest.approx(expected_mv(13, "A1"), abs=1e-5)


def test_smaller_parcel_wins_where_parcels_overlap():
    grid = Grid("EPSG:32631", rasterio.Affine(10.0, 0, X0, 0, -10.0, Y0 + 100.0), 10, 10)
    big, small = shapely.box(X0, Y0, X0 + 100, Y0 + 100), shapely.box(X0 + 40, Y0 + 40, X0 + 60, Y0 + 60)
    # export_cogs burns from the largest area to the smallest: a later geometry replaces an earlier one
    out = burn(gpd.GeoSeries([big, small], crs="EPSG:32631"), np.array([10.0, np.nan]), grid)
    assert np.isnan(out[5, 5]) and out[0, 0] == 10.0
    coded = burn(gpd.GeoSeries([big, small], crs="EPSG:32631"), np.array([10.0, 20.5]), grid, "s2mp")
    assert coded[5, 5] == 102 and coded[0, 0] == 50  # round(5 · 20.5) = 102 (half to even), 5 · 10


# ------------------------------------------------------------------------------------------------- COG s2mp


def test_s2mp_encoding_in_lon_lat(run: Path, tmp_path: Path):
    result = run_cli("export", "--format", "cog", "--encoding", "s2mp", "--out", run, "--to", tmp_path,
                     "--date", "2024-04-06")
    assert result.returncode == 0, result.stderr
    lonlat = parcels().set_geometry(parcels().geometry.centroid).to_crs("EPSG:4326")
    with rasterio.open(tmp_path / "moisture_A1.tif") as src:
        assert src.crs.to_epsg() == 4326 and src.dtypes == ("uint8",) and src.nodata == 0
        assert src.res[1] == pytest.approx(10.0 / 111_320.0)
        assert src.tags()["ENCODING"] == "s2mp" and src.tags()["MV_PCT"] == "value / 5"
        assert src.scales == (0.2,)
        values = [v[0] for v in src.sample(list(zip(lonlat.geometry.x, lonlat.geometry.y)))]
        (outside,) = next(src.sample([(src.bounds.left + src.res[0] / 2, src.bounds.top - src.res[1] / 2)]))
    for number, value in zip(lonlat["parcel_id"], values):
        expected = round(5 * expected_mv(number, "A1")) if is_ok(number) else 0
        assert value == expected, number
    assert outside == 0


# --------------------------------------------------------------------------------------------- usage errors


def test_bad_encoding_exits_2(run: Path, tmp_path: Path):
    result = run_cli("export", "--format", "cog", "--encoding", "int16", "--out", run, "--to", tmp_path)
    assert result.returncode == 2
    assert "--encoding int16" in result.stderr and "float, s2mp" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_date_exits_2_listing_the_dates(run: Path, tmp_path: Path):
    result = run_cli("export", "--format", "cog", "--date", "2024-04-07", "--out", run, "--to", tmp_path)
    assert result.returncode == 2
    assert "2024-04-06, 2024-04-18" in result.stderr


def test_grid_and_res_together_and_raster_options_without_cog_are_refused(run: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="exclude each other"):
        export_cogs(run, tmp_path, grid=tmp_path / "x.tif", res=10.0)
    with pytest.raises(UsageError, match="res=0.0"):
        export_cogs(run, tmp_path, res=0.0)
    result = run_cli("export", "--encoding", "s2mp", "--out", run, "--to", tmp_path / "m.parquet")
    assert result.returncode == 2 and "only for --format cog" in result.stderr


def test_make_grid_needs_a_geometry():
    empty = gpd.GeoDataFrame({"parcel_id": ["a"]}, geometry=[shapely.Polygon()], crs="EPSG:32631")
    with pytest.raises(UsageError, match="no parcel with a geometry"):
        make_grid(empty)


# ---------------------------------------------------------------------------------------------- quick-look


def test_map_writes_a_png(run: Path, tmp_path: Path):
    target = tmp_path / "map.png"
    result = run_cli("map", "--out", run, "--date", "2024-04-06", "--to", target)
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]


def test_map_from_python(run: Path, tmp_path: Path):
    path = quicklook_png(run, "2024-04-18", tmp_path / "q.png", north_arrow=False, vmin=10, vmax=35, dpi=60)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_map_of_a_date_without_data_exits_2(run: Path, tmp_path: Path):
    result = run_cli("map", "--out", run, "--date", "2023-01-01", "--to", tmp_path / "m.png")
    assert result.returncode == 2
    assert "Available dates (UTC): 2024-04-06, 2024-04-18" in result.stderr
    assert not (tmp_path / "m.png").exists()


def test_map_refuses_a_bad_colour_scale(run: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="vmin < vmax"):
        quicklook_png(run, "2024-04-06", tmp_path / "m.png", vmin=30, vmax=10)
