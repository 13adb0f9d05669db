"""plotsm segment: NDVI stacks cut into plots — exact recovery of known plots, no seams at tile edges, cloud gaps,
agricultural masks with coverage weights, the minimum area, input checks, the CLI, and plots as parcels."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from conftest import RES, UTM, X0, Y0, run_cli, write_raster
from rasterio.features import rasterize

from plotsm.errors import InputError, UsageError
from plotsm.segment import NoMaskWarning, SegmentSettings, segment_ndvi, write_plots
from plotsm.segment.quality import agreement, grid_like, homogeneity

TRANSFORM = Affine(RES, 0.0, X0, 0.0, -RES, Y0)


def layout_blocks() -> np.ndarray:
    """A 120 × 120 px layout of 7 fields: rectangles of several sizes, an L-shaped field, a thin strip."""
    lab = np.zeros((120, 120), dtype=np.int32)
    lab[:, :] = 1
    lab[0:50, 0:45] = 2
    lab[0:50, 45:120] = 3
    lab[50:120, 0:30] = 4
    lab[50:85, 30:80] = 5  # with 6 below and right of it: field 6 is an L
    lab[85:120, 30:120] = 6
    lab[50:85, 80:120] = 6
    lab[60:75, 90:110] = 7  # a field inside another
    lab[50:53, 30:120] = 1  # a strip of 3 px × 90 px (30 m: the narrowest plot with an interior pixel)
    return lab


def trajectories(lab: np.ndarray, months: int, seed: int = 1) -> np.ndarray:
    """NDVI trajectories of the fields of ``lab`` (rows 1…n), every two touching fields ≥ 0.15 apart in RMS
    over the months (fields apart may be alike, as in a real landscape)."""
    rng = np.random.default_rng(seed)
    n = int(lab.max())
    pairs = np.concatenate([np.stack([lab[:, :-1].ravel(), lab[:, 1:].ravel()], 1),
                            np.stack([lab[:-1].ravel(), lab[1:].ravel()], 1)])
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    t = np.zeros((n + 1, months))
    for k in range(1, n + 1):
        before = np.concatenate([pairs[pairs[:, 1] == k, 0], pairs[pairs[:, 0] == k, 1]])
        before = before[before < k]
        while True:
            t[k] = rng.uniform(0.1, 0.85, size=months)
            if not before.size or np.sqrt(((t[before] - t[k]) ** 2).mean(axis=1)).min() >= 0.15:
                break
    return t


def stack(lab: np.ndarray, months: int = 6, noise: float = 0.01, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    traj = trajectories(lab, months)
    cube = traj[lab].transpose(2, 0, 1) + rng.normal(0.0, noise, (months,) + lab.shape)
    return cube.astype(np.float32)


def write_months(folder: Path, cube: np.ndarray, year: int = 2024) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, band in enumerate(cube):
        write_raster(folder / f"ndvi_{year}-{k + 1:02d}.tif", band, nodata=float("nan"))
    return folder


def segment(folder: Path, **settings: object) -> gpd.GeoDataFrame:
    kw = {"workers": 1, "min_area_ha": 0.01}
    kw.update(settings)  # type: ignore[arg-type]
    mask = kw.pop("mask", None)
    classes = kw.pop("mask_classes", (40,))
    min_frac = kw.pop("mask_min_frac", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoMaskWarning)
        return segment_ndvi(folder, SegmentSettings(**kw), mask=mask, mask_classes=classes,  # type: ignore[arg-type]
                            mask_min_frac=min_frac)


def burn(plots: gpd.GeoDataFrame, shape: tuple[int, int]) -> np.ndarray:
    return rasterize(zip(plots.geometry, plots["plot_id"]), out_shape=shape, transform=TRANSFORM, dtype="int32")


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label rasters cut the pixels the same way, whatever their ids."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return np.unique(pairs[0]).size == pairs.shape[1] == np.unique(pairs[1]).size


def test_known_plots_are_recovered_exactly_with_their_statistics(tmp_path: Path) -> None:
    lab = layout_blocks()
    cube = stack(lab)
    plots = segment(write_months(tmp_path / "ndvi", cube))
    assert len(plots) == 7
    got = burn(plots, lab.shape)
    assert same_partition(got, lab)
    assert shapely.is_valid(plots.geometry.values).all()
    assert (plots.geometry.geom_type == "Polygon").all()
    for row in plots.itertuples():
        pixels = got == row.plot_id
        assert row.n_pixels == pixels.sum()
        assert row.area_m2 == pytest.approx(pixels.sum() * RES * RES, rel=1e-9)
        for k in range(cube.shape[0]):
            values = cube[k][pixels].astype(np.float64)
            assert getattr(row, f"ndvi_mean_2024_{k + 1:02d}") == pytest.approx(values.mean(), abs=1e-6)
            assert getattr(row, f"ndvi_std_2024_{k + 1:02d}") == pytest.approx(values.std(), abs=1e-5)
    l_shape = plots.loc[plots["n_pixels"] == (lab == 6).sum()]
    assert len(l_shape) == 1 and len(l_shape.geometry.iloc[0].exterior.coords) == 7  # an L: 6 corners, closed
    assert plots.crs.to_epsg() == 32631


def test_a_plot_across_tile_edges_is_one_polygon_and_tiling_changes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lab = np.repeat(np.repeat(rng.integers(1, 30, size=(15, 15)), 10, axis=0), 10, axis=1).astype(np.int32)
    _, lab = np.unique(lab, return_inverse=True)
    lab = lab.reshape(150, 150).astype(np.int32) + 1
    lab[30:110, 40:100] = lab.max() + 1  # crosses the tile edges at row 64 and column 64: four tiles
    from scipy import ndimage

    parts = np.zeros_like(lab)  # fields as connected pieces (a value may repeat in distant blocks)
    n = 0
    for v in np.unique(lab):
        comp, k = ndimage.label(lab == v)
        parts[comp > 0] = comp[comp > 0] + n
        n += k
    cube = stack(parts, months=5, noise=0.01, seed=3)
    folder = write_months(tmp_path / "ndvi", cube)
    tiled = segment(folder, tile_px=64, halo_px=8, workers=2)
    whole = segment(folder, tile_px=2048)
    a, b = burn(tiled, lab.shape), burn(whole, lab.shape)
    assert same_partition(a, parts) and same_partition(b, parts)
    big = tiled.loc[tiled["n_pixels"] == 80 * 60]
    assert len(big) == 1
    assert big.geometry.iloc[0].equals(shapely.box(X0 + 400, Y0 - 1100, X0 + 1000, Y0 - 300))


def test_cloud_gaps_change_neither_the_plots_nor_the_statistics_of_what_was_seen(tmp_path: Path) -> None:
    lab = layout_blocks()
    cube = stack(lab)
    gappy = cube.copy()
    gappy[1, 10:40, 5:70] = np.nan  # a cloud over parts of fields 2 and 3
    gappy[3][lab == 4] = np.nan  # field 4 unseen in April
    gappy[4, :, 100:] = np.nan  # the edge of the swath in May
    plots = segment(write_months(tmp_path / "ndvi", gappy))
    got = burn(plots, lab.shape)
    assert same_partition(got, lab)
    field4 = plots.loc[plots["plot_id"] == np.bincount(got[lab == 4]).argmax()].iloc[0]
    assert np.isnan(field4["ndvi_mean_2024_04"]) and np.isnan(field4["ndvi_std_2024_04"])
    field2 = plots.loc[plots["plot_id"] == np.bincount(got[lab == 2]).argmax()].iloc[0]
    assert field2["ndvi_mean_2024_02"] == pytest.approx(np.nanmean(gappy[1][lab == 2].astype(np.float64)), abs=1e-6)
    assert field2["n_pixels"] == (lab == 2).sum()


def test_pixels_never_observed_are_left_out(tmp_path: Path) -> None:
    lab = layout_blocks()
    cube = stack(lab)
    cube[:, :, :10] = np.nan  # ten columns with no observation in any month
    plots = segment(write_months(tmp_path / "ndvi", cube))
    got = burn(plots, lab.shape)
    assert (got[:, :10] == 0).all() and (got[:, 10:] > 0).all()
    assert plots["area_m2"].sum() == pytest.approx(120 * 110 * 100.0)


def test_minimum_area_absorbs_small_segments_into_their_nearest_neighbour(tmp_path: Path) -> None:
    lab = np.ones((60, 60), dtype=np.int32)
    lab[:, 30:] = 2
    lab[10:13, 10:13] = 3  # 9 px = 0.09 ha inside field 1
    cube = stack(lab, months=4)
    folder = write_months(tmp_path / "ndvi", cube)
    kept = segment(folder, min_area_ha=0.05)
    assert sorted(kept["n_pixels"]) == [9, 1800 - 9, 1800]
    assert kept.loc[kept["n_pixels"] == 9, "area_m2"].iloc[0] == pytest.approx(900.0)
    absorbed = segment(folder, min_area_ha=0.1)
    assert sorted(absorbed["n_pixels"]) == [1800, 1800]
    hole_free = absorbed.loc[absorbed["n_pixels"] == 1800].geometry
    assert all(len(g.interiors) == 0 for g in hole_free)
    # a small field alone in no data has no neighbour to join: it is dropped
    cube2 = np.full_like(cube, np.nan)
    cube2[:, :3, :3] = 0.5  # a 3 × 3 px = 0.09 ha field
    cube2[:, 30:, 30:] = 0.3  # a 9 ha field, apart
    only = segment(write_months(tmp_path / "ndvi2", cube2), min_area_ha=0.1)
    assert list(only["n_pixels"]) == [900]


def test_merge_tolerance_is_in_ndvi_units(tmp_path: Path) -> None:
    lab = np.ones((40, 80), dtype=np.int32)
    lab[:, 40:] = 2
    cube = np.where(lab == 1, 0.50, 0.54)[None].repeat(3, axis=0).astype(np.float32)  # 0.04 apart every month
    folder = write_months(tmp_path / "ndvi", cube)
    assert len(segment(folder, merge_ndvi=0.05)) == 1
    assert len(segment(folder, merge_ndvi=0.03)) == 2


def _mask_raster(path: Path, classes: np.ndarray, x0: float, y0: float, res: float, nodata: float | None = 0) -> Path:
    return write_raster(path, classes.astype(np.uint8), nodata=nodata, x0=x0, y0=y0, res=res)


def test_raster_mask_share_is_coverage_weighted(tmp_path: Path) -> None:
    lab = np.ones((40, 80), dtype=np.int32)
    lab[:, 40:] = 2
    folder = write_months(tmp_path / "ndvi", stack(lab, months=3))
    # a 20 m land-cover raster shifted by 10 m: its pixel edges fall in the middle of the NDVI pixels
    classes = np.full((22, 42), 30, dtype=np.uint8)
    classes[:, :11] = 40  # cropland over x in [X0 − 10, X0 + 210): 210 m of field 1's 400 m width
    mask = _mask_raster(tmp_path / "worldcover.tif", classes, X0 - 10, Y0 + 10, 20.0)
    plots = segment(folder, mask=mask, mask_min_frac=0.0)
    share = dict(zip(np.where(plots.bounds["minx"] == X0, "left", "right"), plots["agri_frac"]))
    # field 1 spans x 0–400 m and y 0–400 m; the mask rows cover y in [−10, 430): all of it
    assert share["left"] == pytest.approx(210 / 400, abs=1e-6)
    assert share["right"] == pytest.approx(0.0, abs=1e-9)
    kept = segment(folder, mask=mask, mask_min_frac=0.5)
    assert list(kept.bounds["minx"]) == [X0]
    both = segment(folder, mask=mask, mask_classes=(30, 40), mask_min_frac=0.99)
    assert len(both) == 2 and both["agri_frac"].min() == pytest.approx(1.0, abs=1e-6)


def test_raster_mask_nodata_and_outside_count_as_not_agricultural(tmp_path: Path) -> None:
    lab = np.ones((40, 40), dtype=np.int32)
    folder = write_months(tmp_path / "ndvi", stack(lab, months=3))
    classes = np.full((40, 20), 40, dtype=np.uint8)  # covers only the left half (200 m of 400 m)
    classes[:10, :] = 0  # no data over the top quarter
    mask = _mask_raster(tmp_path / "mask.tif", classes, X0, Y0, 10.0)
    (share,) = segment(folder, mask=mask, mask_min_frac=0.0)["agri_frac"]
    assert share == pytest.approx(0.5 * 0.75, abs=1e-6)


def test_vector_mask_share_is_exact(tmp_path: Path) -> None:
    lab = np.ones((40, 80), dtype=np.int32)
    lab[:, 40:] = 2
    folder = write_months(tmp_path / "ndvi", stack(lab, months=3))
    crop = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0 - 400, X0 + 120, Y0),
                                      shapely.box(X0 + 60, Y0 - 400, X0 + 120, Y0)], crs=UTM)  # overlapping
    path = tmp_path / "crops.gpkg"
    crop.to_crs("EPSG:4326").to_file(path)
    plots = segment(folder, mask=path, mask_min_frac=0.0)
    left = plots.bounds["minx"] == X0
    assert plots.loc[left, "agri_frac"].iloc[0] == pytest.approx(120 / 400, abs=1e-3)  # overlaps counted once
    assert plots.loc[~left, "agri_frac"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_a_multiband_raster_is_a_stack_of_months(tmp_path: Path) -> None:
    lab = layout_blocks()
    cube = stack(lab, months=4)
    path = tmp_path / "stack.tif"
    with rasterio.open(path, "w", driver="GTiff", width=120, height=120, count=4, dtype="float32", crs=UTM,
                       transform=TRANSFORM, nodata=float("nan")) as dst:
        dst.write(cube)
        for k in range(4):
            dst.set_band_description(k + 1, f"NDVI 2023-{k + 3:02d}")
    plots = segment(path)
    assert same_partition(burn(plots, lab.shape), lab)
    assert [c for c in plots.columns if c.startswith("ndvi_mean")] == [f"ndvi_mean_2023_{m:02d}" for m in (3, 4, 5, 6)]


def test_inputs_plotsm_cannot_interpret_are_refused(tmp_path: Path) -> None:
    lab = np.ones((40, 40), dtype=np.int32)
    cube = stack(lab, months=2)
    good = write_months(tmp_path / "good", cube)
    other = tmp_path / "other"
    other.mkdir()
    write_raster(other / "ndvi_2024-03.tif", cube[0], nodata=float("nan"), x0=X0 + 10)
    with pytest.raises(InputError, match="differs from"):
        segment_ndvi([good, other / "ndvi_2024-03.tif"])
    raw = tmp_path / "raw"
    raw.mkdir()
    write_raster(raw / "ndvi_2024-01.tif", np.round(cube[0] * 10_000).astype(np.int16))
    with pytest.raises(InputError, match="ndvi"):
        segment_ndvi(raw)
    geo = tmp_path / "geo"
    geo.mkdir()
    write_raster(geo / "ndvi_2024-01.tif", cube[0], nodata=float("nan"), crs="EPSG:4326", x0=3.0, y0=45.0,
                 res=0.0001)
    with pytest.raises(InputError, match="projected CRS"):
        segment_ndvi(geo)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no NDVI raster"):
        segment_ndvi(empty)
    twice = tmp_path / "twice"
    twice.mkdir()
    write_raster(twice / "ndvi_2024-01.tif", cube[0], nodata=float("nan"))
    write_raster(twice / "NDVI_202401_median.tif", cube[1], nodata=float("nan"))
    with pytest.raises(InputError, match="month 2024-01"):
        segment_ndvi(twice)
    with pytest.raises(UsageError, match="merge_ndvi"):
        SegmentSettings(merge_ndvi=-0.1)
    with pytest.raises(UsageError, match="mask_min_frac"):
        segment_ndvi(good, mask_min_frac=1.5)


def test_plotsm_uint8_ndvi_is_decoded(tmp_path: Path) -> None:
    from plotsm.raster import NDVI_UINT8_TAG

    lab = layout_blocks()
    cube = stack(lab, months=3)
    folder = tmp_path / "u8"
    folder.mkdir()
    for k, band in enumerate(cube):
        write_raster(folder / f"ndvi_2024-{k + 1:02d}.tif", np.round((band + 1) * 100).astype(np.uint8),
                     nodata=255, tags={NDVI_UINT8_TAG: "round((ndvi+1)*100)"})
    plots = segment(folder)
    assert same_partition(burn(plots, lab.shape), lab)
    assert plots["ndvi_mean_2024_01"].between(0.05, 0.9).all()


def test_quality_measures_hand_computed() -> None:
    h = homogeneity(np.array([[1, 1, 2, 2]]), np.array([[[0.1, 0.3, 0.5, 0.5]]]))
    assert h.within == pytest.approx(0.005) and h.between == pytest.approx(0.0225)
    assert h.within_share == pytest.approx(0.005 / 0.0275)
    a = agreement(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 2]]))
    assert (a.over, a.under) == (pytest.approx(1 / 6), pytest.approx(0.25))
    assert (a.over_weighted, a.under_weighted) == (pytest.approx(0.25), pytest.approx(0.125))
    assert a.share_in_one == pytest.approx(0.75)


@pytest.mark.usefixtures("cli_words")
def test_cli_writes_plots_that_run_takes_as_parcels(tmp_path: Path, demo_scene: object) -> None:
    scene = demo_scene
    ndvi = [Path(str(a["ndvi"])) for a in scene.acquisitions]  # type: ignore[attr-defined]
    out = tmp_path / "plots.gpkg"
    args = ["segment", *[x for p in ndvi for x in ("--ndvi", p)], "--out", out, "--min-area-ha", "0.1"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "No agricultural mask" in done.stderr and "wrote" in done.stdout
    plots = gpd.read_file(out, layer="plots")
    truth = gpd.read_file(scene.parcels).to_crs(plots.crs)  # type: ignore[attr-defined]
    with rasterio.open(ndvi[0]) as src:
        shape, transform = src.shape, src.transform
    seg = rasterize(zip(plots.geometry, plots["plot_id"]), out_shape=shape, transform=transform, dtype="int32")
    ref = rasterize(zip(truth.geometry, range(1, len(truth) + 1)), out_shape=shape, transform=transform,
                    dtype="int32")
    # the demo's parcels differ by a random NDVI level over two months, so neighbours alike in both merge; the
    # plots still follow the parcels far better than a grid of as many cells, and are nearly uniform
    grid = grid_like(seg.shape, len(plots))
    assert agreement(seg, ref).share_in_one > agreement(grid, ref).share_in_one + 0.1
    cube = np.stack([rasterio.open(p).read(1, masked=True).filled(np.nan) for p in dict.fromkeys(ndvi)])
    assert homogeneity(seg, cube).within_share < 0.05 < homogeneity(grid, cube).within_share
    run = run_cli("run", "--parcels", out, "--vv", scene.acquisitions[0]["vv"],  # type: ignore[attr-defined]
                  "--theta", scene.acquisitions[0]["theta"], "--ndvi", ndvi[0],  # type: ignore[attr-defined]
                  "--out", tmp_path / "store")
    assert run.returncode == 0, run.stderr


def test_cli_errors_name_the_option(tmp_path: Path) -> None:
    folder = write_months(tmp_path / "ndvi", stack(np.ones((30, 30), dtype=np.int32), months=2))
    bad = run_cli("segment", "--ndvi", folder, "--mask-classes", "crop", "--out", tmp_path / "p.gpkg")
    assert bad.returncode == 2 and "--mask-classes crop" in bad.stderr
    wrong = run_cli("segment", "--ndvi", folder, "--out", tmp_path / "p.shp")
    assert wrong.returncode == 2 and ".gpkg or a .parquet" in wrong.stderr
    missing = run_cli("segment", "--ndvi", tmp_path / "nowhere", "--out", tmp_path / "p.gpkg")
    assert missing.returncode == 4 and "nowhere" in missing.stderr
    assert not (tmp_path / "p.gpkg").exists()


def test_geoparquet_output_round_trips(tmp_path: Path) -> None:
    lab = layout_blocks()
    plots = segment(write_months(tmp_path / "ndvi", stack(lab, months=2)))
    path = write_plots(plots, tmp_path / "plots.parquet")
    back = gpd.read_parquet(path)
    assert back.crs.to_epsg() == 32631 and len(back) == 7
    assert list(back.columns) == list(plots.columns)


def test_real_slovenian_months_give_homogeneous_plots_that_follow_the_land_use(tmp_path: Path) -> None:
    """68 real Sentinel-2 NDVI dates (cut: rows 0–39, columns 0–39 of the eo-learn patch), clouds as no data,
    composited per month by `s2 composite`'s function, segmented with the defaults, compared with the real RABA
    land-use polygons of the same cut and with a regular grid of as many cells."""
    from plotsm.sources.composite import write_monthly_composites

    data = np.load(Path(__file__).parent / "data" / "s2_eolearn_slovenia_ndvi_clm.npz")
    # the patch's bbox (bbox.geojson) is 999.48 m × 1009.74 m for 100 × 101 px
    transform = Affine(999.4792220051564 / 100, 0.0, 465181.0522318204, 0.0, -1009.742295 / 101, 5080254.63349641)
    (tmp_path / "dates").mkdir()
    paths, days = [], []
    for k, stamp in enumerate(data["timestamps"]):
        day = str(stamp)[:10]
        path = tmp_path / "dates" / f"NDVI_{day.replace('-', '')}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=1, dtype="float32",
                           crs="EPSG:32633", transform=transform, nodata=float("nan")) as dst:
            dst.write(np.where(data["clm"][k] > 0, np.nan, data["ndvi"][k]).astype(np.float32), 1)
        paths.append(path)
        days.append(day)
    months = write_monthly_composites(paths, days, tmp_path / "monthly")
    assert len(months) == 27
    cube = np.stack([rasterio.open(p).read(1) for p in months.values()])
    plots = segment(tmp_path / "monthly", min_area_ha=0.1)
    assert 8 <= len(plots) <= 40
    assert shapely.is_valid(plots.geometry.values).all() and plots.crs.to_epsg() == 32633
    lulc = gpd.read_file(Path(__file__).parent / "data" / "segment_slovenia_lulc_rows0-39_cols0-39.gpkg")
    shape = (40, 40)
    seg = rasterize(zip(plots.geometry, plots["plot_id"]), out_shape=shape, transform=transform, dtype="int32")
    ref = rasterize(zip(lulc.geometry, range(1, len(lulc) + 1)), out_shape=shape, transform=transform,
                    dtype="int32")
    grid = grid_like(shape, len(plots))
    mine, base, land_use = homogeneity(seg, cube), homogeneity(grid, cube), homogeneity(ref, cube)
    assert mine.within_share < 0.8 * base.within_share  # measured: 0.54 for 11 plots against 0.73 for 9 cells
    assert mine.within_share < land_use.within_share  # the land-use polygons mix NDVI behaviours (0.74)
    assert agreement(seg, ref).over_weighted < agreement(grid, ref).over_weighted - 0.1  # measured 0.39 / 0.60
