"""plotsm.zonal: hand-computed values, parity with rasterstats (centre rule) and exactextract (coverage rule)
on generated and real rasters, label cache, errors, and invariance to parcel order, block size and threads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterstats import zonal_stats

from plotsm.errors import InputError, UsageError
from plotsm.zonal import plan as zonal  # the module whose CHUNK_PIXELS the planner reads (patched below)
from plotsm.parcels import read_parcels
from plotsm.zonal import STATISTICS, Grid, LabelCache, ZonalEngine, coverage_weights, rasterize_labels

DATA = Path(__file__).parent / "data"
UTM = "EPSG:32631"
X0, Y0 = 500_000.0, 4_800_000.0  # top-left corner of the generated rasters
RES = 10.0
COLUMNS = ["parcel_id", "n_valid", "n_pixels", "valid_fraction", "mean", "std", "min", "max"]


# ------------------------------------------------------------------------------------------------ helpers


def write_raster(path: Path, data: np.ndarray, *, nodata: float | None = None, crs: str | None = UTM,
                 x0: float = X0, y0: float = Y0, **profile: object) -> Path:
    meta = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1, "dtype": data.dtype,
            "crs": crs, "transform": Affine(RES, 0.0, x0, 0.0, -RES, y0), "nodata": nodata, **profile}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning for the no-CRS case
        with rasterio.open(path, "w", **meta) as dst:
            dst.write(data, 1)
    return path


def box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A rectangle in pixel units (column, row) of the generated grid, as UTM coordinates."""
    return shapely.box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def parcels(geoms: list, crs: str = UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"parcel_id": np.arange(1, len(geoms) + 1)}, geometry=geoms, crs=crs)


def reference_center(gdf_utm: gpd.GeoDataFrame, raster: Path) -> pd.DataFrame:
    """rasterstats on the raster's array. Given a file without a nodata tag, rasterstats reads pixels outside
    the raster as 0 (rasterio's boundless read) and counts them as data; with the array and an explicit nodata
    it fills them with nodata, which is what plotsm does (outside pixels are not the parcel's pixels)."""
    with rasterio.open(raster) as src:
        array, affine, nodata = src.read(1), src.transform, src.nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterstats' own deprecation and masked-element warnings
        ref = pd.DataFrame(zonal_stats(gdf_utm, array, affine=affine, nodata=-999.0 if nodata is None else nodata,
                                       stats="count mean std min max")).astype(float)
        inside = zonal_stats(gdf_utm, np.ones(array.shape, np.uint8), affine=affine, nodata=0, stats="count")
    ref["n_pixels"] = [row["count"] for row in inside]
    return ref


def reference_coverage(gdf_utm: gpd.GeoDataFrame, raster: Path) -> pd.DataFrame:
    return exact_extract(str(raster), gdf_utm, ["count", "mean", "stdev", "min", "max"], output="pandas")


def assert_matches_rasterstats(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert (ours["n_valid"].to_numpy() == ref["count"].to_numpy()).all()
    assert (ours["n_pixels"].to_numpy() == ref["n_pixels"].to_numpy()).all()
    np.testing.assert_allclose(ours["mean"], ref["mean"], rtol=1e-6, atol=0)  # rasterstats sums in float32
    np.testing.assert_allclose(ours["std"], ref["std"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ours["min"], ref["min"])
    np.testing.assert_array_equal(ours["max"], ref["max"])


def assert_matches_exactextract(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    np.testing.assert_allclose(ours["n_valid"], ref["count"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours["mean"], ref["mean"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours["std"], ref["stdev"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ours["min"], ref["min"])
    np.testing.assert_array_equal(ours["max"], ref["max"])


# ---------------------------------------------------------------------------------------- generated scene

SHAPE = (48, 64)  # rows, columns


def scene_parcels() -> gpd.GeoDataFrame:
    """A partition (no overlaps) in UTM: Voronoi cells over an area that extends past the raster's east edge
    (cells half outside), with a parcel smaller than a pixel carved out of one cell and one parcel outside."""
    rng = np.random.default_rng(42)
    area = box(0, 0, SHAPE[1] + 12, SHAPE[0])
    seeds = shapely.multipoints(np.column_stack([
        rng.uniform(area.bounds[0], area.bounds[2], 45), rng.uniform(area.bounds[1], area.bounds[3], 45)]))
    cells = list(shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=area)), area))
    tiny = box(10.1, 10.1, 10.4, 10.4)  # 3 m × 3 m: holds no pixel centre
    home = next(i for i, c in enumerate(cells) if c.contains(tiny))
    cells[home] = cells[home].difference(tiny)
    outside = box(SHAPE[1] + 30, 0, SHAPE[1] + 35, 5)
    return parcels([*cells, tiny, outside])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(7)
    values = rng.gamma(4.4, 0.05 / 4.4, SHAPE).astype(np.float32)
    values[5:15, 20:35] = np.nan  # a hole of no data
    values[rng.uniform(size=SHAPE) < 0.05] = np.nan
    tagged = values.copy()
    tagged[np.isnan(tagged)] = -9999.0
    tagged[30:34, 0:10] = -9999.0
    gdf_utm = scene_parcels()
    return {
        "folder": folder,
        "nan": write_raster(folder / "nan.tif", values),  # NaN, no nodata tag
        "tagged": write_raster(folder / "tagged.tif", tagged, nodata=-9999.0, tiled=True, blockxsize=16, blockysize=16),
        "all_nan": write_raster(folder / "all_nan.tif", np.full(SHAPE, np.nan, np.float32)),
        "striped": write_raster(folder / "striped.tif", values, tiled=False, blockysize=1),
        "utm": gdf_utm,
        "lonlat": gdf_utm.to_crs("EPSG:4326"),
        "tiny": len(gdf_utm) - 2,
        "outside": len(gdf_utm) - 1,
    }


# --------------------------------------------------------------------------------------- hand-computed 4×4


@pytest.fixture()
def tiny_raster(tmp_path: Path) -> Path:
    data = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, np.nan, 12], [13, 14, 15, -9999]], dtype=np.float32)
    return write_raster(tmp_path / "tiny.tif", data, nodata=-9999.0)


def test_hand_computed_center(tiny_raster: Path) -> None:
    left, right, outside = box(0, 0, 2, 4), box(2, 0, 4, 4), box(10, 0, 12, 2)
    out = ZonalEngine(parcels([left, right, outside])).stats(tiny_raster)
    assert list(out.columns) == COLUMNS and out["parcel_id"].tolist() == [1, 2, 3]
    assert out["n_valid"].tolist() == [8, 6, 0] and out["n_pixels"].tolist() == [8, 8, 0]
    assert out["n_valid"].dtype == np.int64
    # left: 1 2 5 6 9 10 13 14 → mean 7.5, deviations ±6.5 ±5.5 ±2.5 ±1.5 → variance 162/8 = 20.25
    assert out.loc[0, ["mean", "std", "min", "max", "valid_fraction"]].tolist() == [7.5, 4.5, 1.0, 14.0, 1.0]
    # right: 3 4 7 8 12 15 valid (NaN and the nodata value excluded)
    right_values = np.array([3, 4, 7, 8, 12, 15], dtype=float)
    assert out.loc[1, "mean"] == pytest.approx(49 / 6)
    assert out.loc[1, "std"] == pytest.approx(right_values.std(ddof=0))
    assert out.loc[1, ["min", "max", "valid_fraction"]].tolist() == [3.0, 15.0, 0.75]
    assert out.loc[2, ["mean", "std", "min", "max"]].isna().all() and np.isnan(out.loc[2, "valid_fraction"])
    strip = box(0.4, 0, 1.8, 1)  # holds the centres of pixels (0,0) and (0,1)
    out = ZonalEngine(parcels([strip])).stats(tiny_raster)
    assert out.loc[0, ["n_valid", "mean", "std", "min", "max"]].tolist() == [2, 1.5, 0.5, 1.0, 2.0]


def test_hand_computed_coverage(tiny_raster: Path) -> None:
    strip = box(0.4, 0, 1.8, 1)  # covers 0.6 of pixel (0,0) = 1 and 0.8 of pixel (0,1) = 2
    corner = box(2.5, 2.5, 4, 4)  # 0.25 of NaN, 0.5 of 12, 0.5 of 15, 1.0 of nodata
    out = ZonalEngine(parcels([strip, corner]), rule="coverage").stats(tiny_raster)
    mean = (0.6 * 1 + 0.8 * 2) / 1.4
    assert out.loc[0, "n_valid"] == pytest.approx(1.4) and out.loc[0, "n_pixels"] == pytest.approx(1.4)
    assert out.loc[0, "mean"] == pytest.approx(mean)
    assert out.loc[0, "std"] == pytest.approx(np.sqrt((0.6 * (1 - mean) ** 2 + 0.8 * (2 - mean) ** 2) / 1.4))
    assert out.loc[0, ["min", "max"]].tolist() == [1.0, 2.0]
    assert out.loc[1, "n_pixels"] == pytest.approx(2.25) and out.loc[1, "n_valid"] == pytest.approx(1.0)
    assert out.loc[1, "mean"] == pytest.approx(13.5) and out.loc[1, "valid_fraction"] == pytest.approx(1 / 2.25)


def test_db_to_linear_averages_linear_power(tmp_path: Path) -> None:
    raster = write_raster(tmp_path / "db.tif", np.array([[-10.0, -20.0]], dtype=np.float32))
    engine = ZonalEngine(parcels([box(0, 0, 2, 1)]))
    assert engine.stats(raster, transform="db_to_linear").loc[0, "mean"] == pytest.approx(0.055, rel=1e-6)
    assert engine.stats(raster, transform="linear").loc[0, "mean"] == pytest.approx(-15.0)
    assert engine.stats(raster).loc[0, "min"] == pytest.approx(-20.0)
    with pytest.raises(UsageError, match=r"transform 'log': expected one of"):
        engine.stats(raster, transform="log")  # type: ignore[arg-type]


def test_integer_raster_with_nodata(tmp_path: Path) -> None:
    raster = write_raster(tmp_path / "dem.tif", np.array([[100, 0], [300, 40000]], dtype=np.uint16), nodata=0)
    out = ZonalEngine(parcels([box(0, 0, 2, 2)])).stats(raster)
    assert out.loc[0, ["n_valid", "n_pixels"]].tolist() == [3, 4]
    assert out.loc[0, "mean"] == pytest.approx(40400 / 3) and out.loc[0, "max"] == 40000.0


# ----------------------------------------------------------------------- parity with the reference tools


@pytest.mark.parametrize("raster", ["nan", "tagged", "striped"])
def test_center_rule_equals_rasterstats(scene: dict, raster: str) -> None:
    ours = ZonalEngine(scene["lonlat"]).stats(scene[raster])  # parcels in EPSG:4326, raster in UTM
    ref = reference_center(scene["lonlat"].to_crs(UTM), scene[raster])
    assert_matches_rasterstats(ours, ref)
    assert ours.loc[scene["tiny"], "n_pixels"] == 0 and np.isnan(ours.loc[scene["tiny"], "mean"])
    assert ours.loc[scene["outside"], "n_pixels"] == 0
    assert (ours["n_valid"] < ours["n_pixels"]).any() and (ours["n_valid"] > 0).sum() > 30


@pytest.mark.parametrize("raster", ["nan", "tagged"])
def test_coverage_rule_equals_exactextract(scene: dict, raster: str) -> None:
    ours = ZonalEngine(scene["lonlat"], rule="coverage").stats(scene[raster])
    ref = reference_coverage(scene["lonlat"].to_crs(UTM), scene[raster])
    assert_matches_exactextract(ours, ref)
    tiny = scene["tiny"]
    assert ours.loc[tiny, "n_pixels"] == pytest.approx(0.09, rel=1e-6)  # exactextract's fractions are float32
    assert ours.loc[tiny, "n_valid"] in (0.0, ours.loc[tiny, "n_pixels"])


def test_parcels_half_outside_the_raster(scene: dict) -> None:
    gdf = scene["utm"]
    inside = box(0, 0, SHAPE[1], SHAPE[0])
    half = (gdf.intersection(inside).area / gdf.area).between(0.2, 0.8).to_numpy()
    assert half.sum() >= 2
    center = ZonalEngine(gdf).stats(scene["nan"])
    coverage = ZonalEngine(gdf, rule="coverage").stats(scene["nan"])
    expected_px = gdf.intersection(inside).area.to_numpy() / RES**2
    np.testing.assert_allclose(coverage["n_pixels"], expected_px, rtol=1e-6)  # float32 fractions (exactextract)
    assert (np.abs(center["n_pixels"].to_numpy()[half] - expected_px[half]) < 0.5 * expected_px[half]).all()


def test_all_nan_raster(scene: dict) -> None:
    for rule in ("center", "coverage"):
        out = ZonalEngine(scene["utm"], rule=rule).stats(scene["all_nan"])
        assert (out["n_valid"] == 0).all() and out[["mean", "std", "min", "max"]].isna().all().all()
        inside = out["n_pixels"] > 0
        assert inside.sum() > 30 and (out.loc[inside, "valid_fraction"] == 0).all()


def test_real_benin_raster_center_and_coverage() -> None:
    raster = DATA / "zonal_benin_vv_201909.tif"
    segments = read_parcels(DATA / "zonal_benin_segments.gpkg")
    center = ZonalEngine(segments.gdf).stats(raster)
    assert_matches_rasterstats(center, reference_center(segments.gdf, raster))
    coverage = ZonalEngine(segments.gdf, rule="coverage").stats(raster)
    assert_matches_exactextract(coverage, reference_coverage(segments.gdf, raster))
    assert (center["n_valid"] == 0).any() and (center["n_valid"] > 100).any()  # NaN outside the valley
    # segments follow pixel edges: both rules see the same pixels
    np.testing.assert_allclose(center["n_pixels"], coverage["n_pixels"], rtol=1e-9)
    assert center["parcel_id"].tolist() == segments.gdf["parcel_id"].tolist()


def test_real_benin_raster_with_parcels_in_lonlat() -> None:
    raster = DATA / "zonal_benin_vv_201909.tif"
    lonlat = read_parcels(DATA / "zonal_benin_segments.gpkg").gdf.to_crs("EPSG:4326")
    ours = ZonalEngine(lonlat).stats(raster)
    assert_matches_rasterstats(ours, reference_center(lonlat.to_crs(UTM), raster))


def test_real_rpg_multipolygons_with_text_ids(tmp_path: Path) -> None:
    """Real RPG parcels (Lambert-93, MultiPolygon, text ids) over a UTM raster covering a few of them."""
    parcels = read_parcels(DATA / "parcels_rpg2022.gpkg")
    utm = parcels.gdf.to_crs(UTM)
    x0, y0, x1, y1 = utm.geometry.iloc[0].bounds
    width, height = int((x1 - x0) // RES) + 20, int((y1 - y0) // RES) + 20
    rng = np.random.default_rng(3)
    values = rng.normal(0.1, 0.02, (height, width)).astype(np.float32)
    values[: height // 3, : width // 3] = np.nan
    raster = write_raster(tmp_path / "rpg.tif", values, x0=np.floor(x0) - 100, y0=np.ceil(y1) + 100)
    ours = ZonalEngine(parcels.gdf).stats(raster)
    assert ours["parcel_id"].tolist() == parcels.gdf["parcel_id"].tolist()
    assert ours.loc[0, "n_valid"] > 10 and (ours["n_pixels"] == 0).sum() >= 90
    assert_matches_rasterstats(ours, reference_center(utm, raster))
    coverage = ZonalEngine(parcels.gdf, rule="coverage").stats(raster)
    assert_matches_exactextract(coverage, reference_coverage(utm, raster))


# -------------------------------------------------------------------------------------- labels and cache


def test_rasterize_labels_and_coverage_weights(scene: dict) -> None:
    grid = Grid.from_raster(scene["nan"])
    labels = rasterize_labels(scene["utm"], grid)
    assert labels.shape == SHAPE and labels.dtype == np.int32
    assert labels.min() == 0 and labels.max() < len(scene["utm"])  # the raster is covered: no background
    weights = coverage_weights(scene["utm"], grid)
    assert weights.shape == (len(scene["utm"]), SHAPE[0] * SHAPE[1])
    np.testing.assert_allclose(np.asarray(weights.sum(axis=0)).ravel(), 1.0, rtol=1e-6)  # a partition


def test_overlapping_parcels_last_one_wins_in_the_label_raster(tiny_raster: Path) -> None:
    grid = Grid.from_raster(tiny_raster)
    labels = rasterize_labels(parcels([box(0, 0, 4, 4), box(0, 0, 2, 2)]), grid)
    assert (labels[:2, :2] == 1).all() and (labels[2:, :] == 0).all()


def test_grid_key_is_stable_and_tells_grids_apart(scene: dict, tmp_path: Path) -> None:
    a, b = Grid.from_raster(scene["nan"]), Grid.from_raster(scene["tagged"])
    assert a.key() == b.key() and len(a.key()) == 16
    shifted = write_raster(tmp_path / "shifted.tif", np.zeros(SHAPE, np.float32), x0=X0 + 5)
    assert Grid.from_raster(shifted).key() != a.key()


@pytest.mark.parametrize("rule", ["center", "coverage"])
def test_label_cache_reused_and_invalidated(scene: dict, tmp_path: Path, rule: str) -> None:
    cache = tmp_path / "cache"
    first = ZonalEngine(scene["lonlat"], rule=rule, cache_dir=cache)
    result = first.stats(scene["nan"])
    first.stats(scene["tagged"])  # same grid: labels reused in memory
    assert first.n_builds == 1
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == LabelCache.SUFFIX[rule]
    mtime = files[0].stat().st_mtime_ns
    second = ZonalEngine(scene["lonlat"], rule=rule, cache_dir=cache)  # a new run: labels read from disk
    pd.testing.assert_frame_equal(second.stats(scene["nan"]), result)
    assert second.n_builds == 0 and files[0].stat().st_mtime_ns == mtime
    changed = scene["lonlat"].copy()
    changed.loc[0, "geometry"] = shapely.affinity.translate(changed.geometry.iloc[0], 1e-4, 0)
    third = ZonalEngine(changed, rule=rule, cache_dir=cache)
    third.stats(scene["nan"])
    assert third.n_builds == 1 and len(list(cache.iterdir())) == 2  # no temporary file left behind


@pytest.mark.parametrize("rule", ["center", "coverage"])
def test_corrupt_cache_file_is_rebuilt(scene: dict, tmp_path: Path, rule: str) -> None:
    expected = ZonalEngine(scene["utm"], rule=rule, cache_dir=tmp_path).stats(scene["nan"])
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"broken")
    engine = ZonalEngine(scene["utm"], rule=rule, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(engine.stats(scene["nan"]), expected)
    assert engine.n_builds == 1 and path.stat().st_size > 100
    again = ZonalEngine(scene["utm"], rule=rule, cache_dir=tmp_path)
    again.stats(scene["nan"])
    assert again.n_builds == 0


# ------------------------------------------------------------------------------------------------- errors


def test_corrupt_geotiff(scene: dict, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    engine = ZonalEngine(scene["utm"])
    with pytest.raises(InputError, match=r"garbage\.tif: cannot read raster"):
        engine.stats(garbage)
    truncated = tmp_path / "truncated.tif"
    rng = np.random.default_rng(0)
    write_raster(truncated, rng.normal(size=(256, 256)).astype(np.float32), x0=X0, tiled=True, compress="deflate",
                 blockxsize=64, blockysize=64)
    blob = truncated.read_bytes()
    truncated.write_bytes(blob[: len(blob) // 2] + bytes(len(blob) - len(blob) // 2))  # tiles zeroed out
    with pytest.raises(InputError, match=r"truncated\.tif: cannot read"):
        engine.stats(truncated)


def test_missing_raster_and_raster_without_crs(scene: dict, tmp_path: Path) -> None:
    engine = ZonalEngine(scene["utm"])
    with pytest.raises(InputError, match=r"absent\.tif: raster not found"):
        engine.stats(tmp_path / "absent.tif")
    nocrs = write_raster(tmp_path / "nocrs.tif", np.zeros(SHAPE, np.float32), crs=None)
    with pytest.raises(InputError, match=r"nocrs\.tif: raster has no CRS"):
        engine.stats(nocrs)
    with pytest.raises(InputError, match=r"nan\.tif: band 2 requested, the raster has 1 band"):
        engine.stats(scene["nan"], band=2)


def test_engine_arguments() -> None:
    gdf = parcels([box(0, 0, 1, 1)])
    with pytest.raises(UsageError, match=r"rule 'nearest': expected one of center, coverage"):
        ZonalEngine(gdf, rule="nearest")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"block_rows=0"):
        ZonalEngine(gdf, block_rows=0)
    with pytest.raises(InputError, match=r"parcels have no CRS"):
        ZonalEngine(gdf.set_crs(None, allow_override=True))


def test_progress_callback(scene: dict) -> None:
    calls: list[tuple[int, int]] = []
    ZonalEngine(scene["utm"], block_rows=10).stats(scene["striped"], progress=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_statistics_registry_names_the_columns() -> None:
    assert ["parcel_id", *STATISTICS] == COLUMNS


# ----------------------------------------------------------------------------------------------- property


@pytest.fixture(scope="module")
def baselines(scene: dict) -> dict[str, pd.DataFrame]:
    return {rule: ZonalEngine(scene["utm"], rule=rule).stats(scene["striped"]) for rule in ("center", "coverage")}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    block_rows=st.sampled_from([1, 2, 3, 7, 16, 47, 1024]),
    threads=st.sampled_from([1, 2, 3]),
    chunk_pixels=st.sampled_from([1, 64, 200, zonal.CHUNK_PIXELS]),
    rule=st.sampled_from(["center", "coverage"]),
)
def test_independent_of_parcel_order_block_size_chunks_and_threads(
    scene: dict, baselines: dict, seed: int, block_rows: int, threads: int, chunk_pixels: int, rule: str
) -> None:
    order = np.random.default_rng(seed).permutation(len(scene["utm"]))
    shuffled = scene["utm"].iloc[order]
    default, zonal.CHUNK_PIXELS = zonal.CHUNK_PIXELS, chunk_pixels
    try:
        out = ZonalEngine(shuffled, rule=rule, block_rows=block_rows, threads=threads).stats(scene["striped"])
    finally:
        zonal.CHUNK_PIXELS = default
    assert out["parcel_id"].tolist() == shuffled["parcel_id"].tolist()  # output keeps the parcels' order
    expected = baselines[rule].iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected, check_exact=False, rtol=1e-12, atol=1e-15)
