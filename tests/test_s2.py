"""plotsm.sources.s2 and plotsm.sources.composite: L2A offsets of three real baselines, NDVI of real 29RKH
pixels worked out by hand from their DNs, SCL/CLM/MG2 masks, encodings, atomic block-wise writing, monthly
composites and gap filling on the real eo-learn Slovenia series checked against per-pixel numpy, S1 pairing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from hypothesis import given, settings
from hypothesis import strategies as st

from plotsm.errors import DataWarning, InputError
from plotsm.sources.s2 import masks as s2_masks
from plotsm.sources.s2 import ndvi as s2_ndvi
from plotsm.sources.composite import (MonthlyComposites, fill_gaps_linear, monthly_composites, pair_ndvi,
                                       write_monthly_composites)
from plotsm.sources.s2 import (SCL_MASKED_CLASSES, decode_ndvi_uint8, encode_ndvi_uint8, l2a_offsets_for_baseline,
                               ndvi_from_l2a, ndvi_from_theia, read_l2a_offsets)
from plotsm.sources.s2.layer import Layer

DATA = Path(__file__).parent / "data"
B04, B08, SCL = DATA / "s2_29rkh_b04.tif", DATA / "s2_29rkh_b08.tif", DATA / "s2_29rkh_scl.tif"
PB0214 = l2a_offsets_for_baseline("02.14")  # the 29RKH product (STAC s2:processing_baseline 02.14)


def mtd(baseline: str) -> Path:
    return DATA / f"s2_mtd_msil2a_n{baseline}.xml"


# ------------------------------------------------------------------------------------------- L2A offsets


@pytest.mark.parametrize(("name", "baseline", "offset"), [("0212", "02.12", 0.0), ("0400", "04.00", -1000.0),
                                                          ("0509", "05.09", -1000.0)])
def test_offsets_of_three_real_baselines(name: str, baseline: str, offset: float) -> None:
    meta = read_l2a_offsets(mtd(name))
    assert meta["processing_baseline"] == baseline
    assert meta["boa_quantification_value"] == 10000.0
    assert len(meta["boa_add_offset"]) == 13
    assert set(meta["boa_add_offset"].values()) == {offset}
    assert meta["boa_add_offset"]["B4"] == meta["boa_add_offset"]["B8"] == offset


def test_offsets_for_baseline_alone() -> None:
    assert l2a_offsets_for_baseline("03.01")["boa_add_offset"] == {"B4": 0.0, "B8": 0.0}
    assert l2a_offsets_for_baseline("04.00")["boa_add_offset"] == {"B4": -1000.0, "B8": -1000.0}
    with pytest.raises(InputError, match="unknown processing baseline 'N0400'"):
        l2a_offsets_for_baseline("N0400")


def _edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    out = tmp_path / "MTD_MSIL2A.xml"
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


def test_unknown_baseline_names_the_file(tmp_path: Path) -> None:
    bad = _edited(tmp_path, mtd("0400"), "<PROCESSING_BASELINE>04.00<", "<PROCESSING_BASELINE>next<")
    with pytest.raises(InputError, match=r"MTD_MSIL2A\.xml: unknown processing baseline 'next'"):
        read_l2a_offsets(bad)


def test_missing_baseline_names_the_file(tmp_path: Path) -> None:
    bad = _edited(tmp_path, mtd("0212"), "<PROCESSING_BASELINE>02.12</PROCESSING_BASELINE>", "")
    with pytest.raises(InputError, match=r"MTD_MSIL2A\.xml: no PROCESSING_BASELINE"):
        read_l2a_offsets(bad)


def test_new_baseline_without_offsets_is_refused(tmp_path: Path) -> None:
    bad = _edited(tmp_path, mtd("0509"), "BOA_ADD_OFFSET", "OTHER_OFFSET")
    with pytest.raises(InputError, match=r"baseline 05\.09 .*no BOA_ADD_OFFSET"):
        read_l2a_offsets(bad)


def test_missing_metadata_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="L2A metadata not found"):
        read_l2a_offsets(tmp_path / "MTD_MSIL2A.xml")


# ----------------------------------------------------------------------------------------- L2A NDVI, real


def test_ndvi_of_real_pixels_by_hand() -> None:
    with rasterio.open(B04) as red, rasterio.open(B08) as nir, rasterio.open(SCL) as scl:
        dn_red, dn_nir, classes = red.read(1), nir.read(1), scl.read(1)
    # DNs read directly: (0, 0) B4 3094 B8 3486; (100, 5) 3368 / 3840; (64, 64) 2286 / 2546; SCL there = 5 (bare)
    assert (dn_red[0, 0], dn_nir[0, 0], classes[0, 0]) == (3094, 3486, 5)
    assert (dn_red[100, 5], dn_nir[100, 5], classes[50, 2]) == (3368, 3840, 5)
    assert (dn_red[64, 64], dn_nir[64, 64], classes[32, 32]) == (2286, 2546, 5)
    ndvi = ndvi_from_l2a(B04, B08, SCL, PB0214)
    assert isinstance(ndvi, np.ndarray) and ndvi.dtype == np.float32 and ndvi.shape == (128, 128)
    # offset 0: NDVI = (3486 − 3094) / (3486 + 3094) = 392 / 6580
    assert ndvi[0, 0] == pytest.approx(392 / 6580, abs=1e-6)
    assert ndvi[100, 5] == pytest.approx(472 / 7208, abs=1e-6)
    assert ndvi[64, 64] == pytest.approx(260 / 4832, abs=1e-6)
    # pixel (127, 127) lies in 20-m-like SCL cell (63, 63) = class 10 (cirrus): masked
    assert classes[63, 63] == 10 and np.isnan(ndvi[127, 127])
    # SCL cell (0, 28) is cirrus: its four band pixels (0..1, 56..57) are NaN, their neighbours at col 55 not
    assert classes[0, 28] == 10 and classes[0, 27] == 5
    assert np.isnan(ndvi[0:2, 56:58]).all() and not np.isnan(ndvi[0:2, 55]).any()


def test_nearest_scl_resampling_masks_exactly_the_covered_pixels() -> None:
    with rasterio.open(SCL) as scl:
        classes = scl.read(1)
    masked = np.isin(np.repeat(np.repeat(classes, 2, axis=0), 2, axis=1), sorted(SCL_MASKED_CLASSES))
    ndvi = ndvi_from_l2a(B04, B08, SCL, PB0214)
    assert 0 < masked.sum() < masked.size
    np.testing.assert_array_equal(np.isnan(ndvi), masked)
    kept = ndvi_from_l2a(B04, B08, SCL, PB0214, masked_scl_classes=[0])
    assert not np.isnan(kept).any()


def test_offset_of_baseline_04_changes_the_ndvi() -> None:
    ndvi = ndvi_from_l2a(B04, B08, SCL, read_l2a_offsets(mtd("0400")))
    # (3486 − 1000 − (3094 − 1000)) / (3486 − 1000 + 3094 − 1000) = 392 / 4580
    assert ndvi[0, 0] == pytest.approx(392 / 4580, abs=1e-6)
    from_xml = ndvi_from_l2a(B04, B08, SCL, mtd("0400"))
    np.testing.assert_array_equal(ndvi, from_xml)


def test_no_metadata_warns() -> None:
    with pytest.warns(DataWarning, match="assuming BOA_ADD_OFFSET 0"):
        ndvi = ndvi_from_l2a(B04, B08, SCL)
    np.testing.assert_array_equal(ndvi, ndvi_from_l2a(B04, B08, SCL, PB0214))


def test_written_geotiff_is_tiled_zstd_and_blockwise_equal(tmp_path: Path) -> None:
    whole = ndvi_from_l2a(B04, B08, SCL, PB0214)
    out = ndvi_from_l2a(B04, B08, SCL, PB0214, out=tmp_path / "ndvi.tif", block_size=48)
    assert out == tmp_path / "ndvi.tif"
    assert os.listdir(tmp_path) == ["ndvi.tif"]  # no temporary file left behind
    with rasterio.open(out) as src, rasterio.open(B04) as ref:
        assert src.profile["tiled"] and src.profile["compress"] == "zstd"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.transform == ref.transform and src.crs == ref.crs
        np.testing.assert_array_equal(src.read(1), whole)


def test_overviews_only_on_request(tmp_path: Path) -> None:
    # 600 px > one 512-px tile: overviews of factor 2 when asked, none by default
    rng = np.random.default_rng(3)
    red = _write(tmp_path / "FRE_B4.tif", rng.integers(100, 3000, (600, 600), dtype=np.int16))
    nir = _write(tmp_path / "FRE_B8.tif", rng.integers(100, 5000, (600, 600), dtype=np.int16))
    plain = ndvi_from_theia(red, nir, out=tmp_path / "plain.tif")
    pyramid = ndvi_from_theia(red, nir, out=tmp_path / "pyramid.tif", overviews=True)
    codes = ndvi_from_theia(red, nir, out=tmp_path / "codes.tif", encoding="uint8", overviews=True)
    with rasterio.open(plain) as a, rasterio.open(pyramid) as b, rasterio.open(codes) as c:
        assert a.overviews(1) == [] and b.overviews(1) == [2] and c.overviews(1) == [2]
        assert c.profile["compress"] == "zstd" and c.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_write_geotiff_atomic_defaults_unchanged(tmp_path: Path) -> None:
    from plotsm.sources import write_geotiff_atomic

    profile = {"crs": "EPSG:32631", "transform": Affine(10, 0, 0, 0, -10, 0), "width": 600, "height": 600,
               "count": 1, "dtype": "float32", "nodata": np.nan}
    with write_geotiff_atomic(tmp_path / "a.tif", profile) as dst:
        dst.write(np.ones((600, 600), dtype=np.float32), 1)
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.profile["compress"] == "deflate" and src.overviews(1) == [2]
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"


def _aligned_case(tmp_path: Path, k: int, nodata: int | None) -> tuple[Path, Path]:
    """A 37 × 41 band grid at 10 m and a uint8 mask of k · 10 m whose corner is 3 columns left of and 5 rows
    below the band's corner, so that its pixels straddle odd band columns and it covers the band only partly."""
    band = tmp_path / "band.tif"
    with rasterio.open(band, "w", driver="GTiff", width=41, height=37, count=1, dtype="int16", crs="EPSG:32631",
                       transform=Affine(10, 0, 500_000, 0, -10, 4_800_000)) as dst:
        dst.write(np.ones((37, 41), dtype=np.int16), 1)
    mask = tmp_path / f"mask_{k}.tif"
    values = np.random.default_rng(k).integers(0, 13, (30 // k + 1, 40 // k + 1), dtype=np.uint8)
    with rasterio.open(mask, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="uint8", crs="EPSG:32631", nodata=nodata,
                       transform=Affine(10 * k, 0, 500_000 - 30, 0, -10 * k, 4_800_000 - 50)) as dst:
        dst.write(values, 1)
    return band, mask


def test_repeat_pixels_is_np_repeat() -> None:
    values = np.random.default_rng(0).random((5, 7)) < 0.5
    for k in range(1, 9):
        np.testing.assert_array_equal(s2_masks._repeat_pixels(values, k),
                                      np.repeat(np.repeat(values, k, axis=0), k, axis=1), err_msg=f"k={k}")


@pytest.mark.parametrize(("k", "nodata", "fill"), [(2, 0, 0), (2, None, 255), (3, 7, 255), (1, None, 0),
                                                   (4, None, 0), (6, 0, 0)])
def test_aligned_mask_equals_nearest_reprojection(tmp_path: Path, k: int, nodata: int | None, fill: int) -> None:
    band, mask = _aligned_case(tmp_path, k, nodata)
    masked = np.asarray([0, 1, 3, 8, 9, 10, 11])
    convert = lambda v: np.isin(v, masked)  # noqa: E731
    layer = Layer(mask, "SCL", convert)
    # the MG2-like test on an int16 copy of the mask takes the path without lookup table
    wide = tmp_path / "mask_int16.tif"
    with rasterio.open(mask) as src:
        profile = {**src.profile, "dtype": "int16"}
        with rasterio.open(wide, "w", **profile) as dst:
            dst.write(src.read(1).astype(np.int16), 1)
    bits = Layer(wide, "MG2", lambda v: (v.astype(np.int64) & 0b1010) != 0)
    windows = [Window(0, 0, 41, 37), Window(5, 3, 11, 9), Window(1, 2, 7, 13), Window(38, 30, 3, 7)]
    windows += list(s2_ndvi._windows(41, 37, 7))
    with rasterio.open(band) as grid:
        for lay in (layer, bits):
            with rasterio.open(lay.path) as src:
                reader = s2_masks.MaskReader(lay, src, grid, fill)
                assert reader.alignment == (k, -3, 5)
                assert (reader.table is not None) == (lay is layer)
                for window in windows:
                    expected = lay.convert(s2_masks._mask_on_window(src, grid, window, fill))
                    got = reader.invalid(window)
                    assert got.shape == (window.height, window.width)
                    np.testing.assert_array_equal(got, expected, err_msg=f"{lay.role} k={k} {window}")


def test_mask_on_another_grid_is_reprojected(tmp_path: Path) -> None:
    band, mask = _aligned_case(tmp_path, 2, None)
    with rasterio.open(mask) as src:  # shift by a quarter of a band pixel: not aligned any more
        profile = {**src.profile, "transform": src.transform @ Affine.translation(0.125, 0)}
        values = src.read(1)
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(values, 1)
    with rasterio.open(band) as grid, rasterio.open(shifted) as src:
        reader = s2_masks.MaskReader(Layer(shifted, "SCL", lambda v: v > 6), src, grid, 0)
        assert reader.alignment is None
        window = Window(5, 3, 11, 9)
        np.testing.assert_array_equal(reader.invalid(window), s2_masks._mask_on_window(src, grid, window, 0) > 6)


def test_real_scl_fast_path_equals_reprojection(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = ndvi_from_l2a(B04, B08, SCL, PB0214, block_size=45)
    monkeypatch.setattr(s2_masks, "_aligned_factor", lambda src, grid: None)
    slow = ndvi_from_l2a(B04, B08, SCL, PB0214, block_size=45)
    np.testing.assert_array_equal(fast, slow)


def test_writer_thread_keeps_order_and_raises_its_error() -> None:
    from plotsm.sources import write_windows

    class Recorder:
        def __init__(self, fail_at: int | None = None) -> None:
            self.windows: list[Window] = []
            self.fail_at = fail_at

        def write(self, data: np.ndarray, band: int, window: Window) -> None:
            if len(self.windows) == self.fail_at:
                raise OSError("no space left on device")
            self.windows.append(window)

    windows = list(s2_ndvi._windows(100, 90, 16))
    ok = Recorder()
    write_windows(ok, ((w, np.zeros((w.height, w.width))) for w in windows))
    assert ok.windows == windows
    produced: list[Window] = []

    def blocks():  # records how far the producer got
        for w in windows:
            produced.append(w)
            yield w, np.zeros((w.height, w.width))

    broken = Recorder(fail_at=2)
    with pytest.raises(OSError, match="no space left"):
        write_windows(broken, blocks())
    assert broken.windows == windows[:2] and len(produced) < len(windows)  # the producer stopped early


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = s2_ndvi.ndvi_index

    def flaky(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk gone")
        return real(red, nir)

    monkeypatch.setattr(s2_ndvi, "ndvi_index", flaky)
    with pytest.raises(RuntimeError, match="disk gone"):
        ndvi_from_l2a(B04, B08, SCL, PB0214, out=tmp_path / "ndvi.tif", block_size=32)
    assert os.listdir(tmp_path) == []


def test_uint8_encoding_by_hand(tmp_path: Path) -> None:
    ndvi = np.array([-1.0, 0.0, 0.5, 1.0, np.nan, 0.123], dtype=np.float32)
    codes = encode_ndvi_uint8(ndvi)
    np.testing.assert_array_equal(codes, [0, 100, 150, 200, 255, 112])  # round((ndvi + 1) · 100), 255 no data
    np.testing.assert_allclose(decode_ndvi_uint8(codes), [-1.0, 0.0, 0.5, 1.0, np.nan, 0.12], atol=1e-6)
    out = ndvi_from_l2a(B04, B08, SCL, PB0214, out=tmp_path / "ndvi8.tif", encoding="uint8")
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        np.testing.assert_array_equal(src.read(1), encode_ndvi_uint8(ndvi_from_l2a(B04, B08, SCL, PB0214)))


def test_missing_band_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"B08 \(NIR, 10 m\) band missing"):
        ndvi_from_l2a(B04, None, SCL, PB0214)
    with pytest.raises(InputError, match=r"B04_10m\.jp2: B04 \(red, 10 m\) band not found"):
        ndvi_from_l2a(tmp_path / "B04_10m.jp2", B08, SCL, PB0214)
    with pytest.raises(InputError, match="SCL .* not found"):
        ndvi_from_l2a(B04, B08, tmp_path / "SCL_20m.jp2", PB0214)


def test_bands_on_different_grids_are_refused() -> None:
    with pytest.raises(InputError, match="B08 band grid .* differs"):
        ndvi_from_l2a(B04, SCL, None, PB0214)


# ----------------------------------------------------------------------------------------- Theia / MAJA


def _write(path: Path, data: np.ndarray, res: float = 10.0) -> Path:
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype, "crs": "EPSG:32631", "transform": Affine(res, 0, 500_000, 0, -res, 4_800_000)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def test_theia_ndvi_and_masks_by_hand(tmp_path: Path) -> None:
    red = _write(tmp_path / "FRE_B4.tif", np.array([[1000, -10000, 2000], [500, 800, 1200]], dtype=np.int16))
    nir = _write(tmp_path / "FRE_B8.tif", np.array([[3000, 4000, 2000], [1500, 2400, 3600]], dtype=np.int16))
    clm = _write(tmp_path / "CLM_R1.tif", np.array([[0, 0, 0], [0, 0, 2]], dtype=np.uint8))
    # MG2: (0, 2) bit 4 (topographic shadow, kept); (1, 0) bit 0 water; (1, 1) bit 3 cloud shadow
    mg2 = _write(tmp_path / "MG2_R1.tif", np.array([[0, 0, 16], [1, 8, 0]], dtype=np.uint8))
    plain = ndvi_from_theia(red, nir)
    # (0.3 − 0.1)/(0.3 + 0.1) = 0.5; −10000 no data; 0; (0.15 − 0.05)/0.2 = 0.5; 0.16/0.32 = 0.5; 0.24/0.48 = 0.5
    np.testing.assert_allclose(plain, [[0.5, np.nan, 0.0], [0.5, 0.5, 0.5]], atol=1e-6)
    masked = ndvi_from_theia(red, nir, clm=clm, mg2=mg2)
    np.testing.assert_allclose(masked, [[0.5, np.nan, 0.0], [np.nan, np.nan, np.nan]], atol=1e-6)


def test_theia_missing_band_is_named(tmp_path: Path) -> None:
    red = _write(tmp_path / "FRE_B4.tif", np.ones((2, 2), dtype=np.int16))
    with pytest.raises(InputError, match=r"FRE_B8 \(NIR\) band missing"):
        ndvi_from_theia(red, None)
    with pytest.raises(InputError, match="CLM cloud mask not found"):
        ndvi_from_theia(red, red, clm=tmp_path / "CLM_R1.tif")


# ---------------------------------------------------------------------------- composites and gap filling


@pytest.fixture(scope="module")
def slovenia() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.load(DATA / "s2_eolearn_slovenia_ndvi_clm.npz")
    return data["ndvi"], data["clm"] == 0, data["timestamps"]


def _seconds(times: np.ndarray) -> np.ndarray:
    return np.asarray(times, dtype="datetime64[s]").astype(np.int64).astype(np.float64)


def test_gap_filling_matches_np_interp_on_real_series(slovenia: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ndvi, valid, times = slovenia
    valid = valid.copy()
    valid[:, 0, 0] = False  # one pixel never clear → NaN
    filled = fill_gaps_linear(ndvi, times, valid)
    np.testing.assert_array_equal(fill_gaps_linear(ndvi, times, valid, block_pixels=37), filled)
    daily = np.arange(times.min().astype("datetime64[D]") - 5, times.max().astype("datetime64[D]") + 5)
    filled_daily = fill_gaps_linear(ndvi, times, valid, target_dates=daily)
    assert filled.shape == ndvi.shape and filled_daily.shape == (len(daily),) + ndvi.shape[1:]
    assert np.isnan(filled[:, 0, 0]).all() and np.isnan(filled_daily[:, 0, 0]).all()
    t, tau = _seconds(times), _seconds(daily)
    rng = np.random.default_rng(7)
    for i, j in rng.integers(0, 40, size=(150, 2)):
        ok = valid[:, i, j]
        if not ok.any():
            continue
        expected = np.interp(t, t[ok], ndvi[ok, i, j].astype(np.float64))
        np.testing.assert_allclose(filled[:, i, j], expected, atol=1e-6)
        np.testing.assert_allclose(filled_daily[:, i, j], np.interp(tau, t[ok], ndvi[ok, i, j]), atol=1e-6)
    np.testing.assert_array_equal(filled[valid], ndvi[valid])  # clear observations unchanged


def test_gap_filling_rules_by_hand() -> None:
    times = np.array(["2021-01-01", "2021-01-11", "2021-01-21", "2021-01-31"], dtype="datetime64[D]")
    series = np.array([[np.nan, 0.2, np.nan, 0.6], [np.nan] * 4, [0.5, np.nan, np.nan, np.nan]]).T
    filled = fill_gaps_linear(series, times)
    # before the first valid date: the first (0.2); between 11 and 31 Jan at 21 Jan: halfway 0.4
    np.testing.assert_allclose(filled[:, 0], [0.2, 0.2, 0.4, 0.6], atol=1e-7)
    assert np.isnan(filled[:, 1]).all()
    np.testing.assert_allclose(filled[:, 2], [0.5] * 4)  # after the last: the last


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.one_of(st.none(), st.floats(-1, 1))), min_size=1, max_size=12,
                unique_by=lambda item: item[0]))
def test_gap_filling_is_np_interp(obs: list[tuple[int, float | None]]) -> None:
    days = np.array([d for d, _ in obs], dtype="timedelta64[D]") + np.datetime64("2020-01-01")
    values = np.array([np.nan if v is None else v for _, v in obs])
    filled = fill_gaps_linear(values[:, None], days)[:, 0]
    ok = ~np.isnan(values)
    if not ok.any():
        assert np.isnan(filled).all()
        return
    order = np.argsort(days)
    t = _seconds(days)
    expected = np.interp(t[order], t[order][ok[order]], values[order][ok[order]])
    np.testing.assert_allclose(filled[order], expected, atol=1e-6)


def test_monthly_composites_by_hand() -> None:
    times = ["2021-01-05T10:00", "2021-01-20T10:00", "2021-01-25T10:00", "2021-02-14T10:00"]
    stack = np.array([[0.2, 0.1], [0.4, np.nan], [0.9, np.nan], [0.6, np.nan]])
    valid = np.array([[True, True], [True, True], [False, True], [True, True]])  # 25 Jan cloudy on pixel 0
    comp = monthly_composites(stack, times, valid)
    np.testing.assert_array_equal(comp.months, np.array(["2021-01", "2021-02"], dtype="datetime64[M]"))
    np.testing.assert_allclose(comp.ndvi, [[0.3, 0.1], [0.6, np.nan]], atol=1e-7)
    np.testing.assert_array_equal(comp.n_valid, [[2, 1], [1, 0]])


def test_monthly_composites_real_series(slovenia: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ndvi, valid, times = slovenia
    comp = monthly_composites(ndvi, times, valid, block_rows=7)
    np.testing.assert_array_equal(comp.ndvi, monthly_composites(ndvi, times, valid).ndvi)  # blocks don't matter
    months = times.astype("datetime64[M]")
    for k in (0, 8, len(comp.months) - 1):
        members = months == comp.months[k]
        for i, j in [(0, 0), (13, 27), (39, 5)]:
            obs = ndvi[members & valid[:, i, j], i, j]
            expected = np.median(obs) if obs.size else np.nan
            np.testing.assert_allclose(comp.ndvi[k, i, j], expected, atol=1e-7)
            assert comp.n_valid[k, i, j] == obs.size


def test_pair_ndvi_rules_by_hand() -> None:
    comp = MonthlyComposites(months=np.array(["2021-01", "2021-03"], dtype="datetime64[M]"),
                             ndvi=np.array([[0.2, np.nan], [0.6, 0.7]], dtype=np.float32),
                             n_valid=np.array([[1, 0], [1, 1]], dtype=np.int16))
    # month centres: 16 Jan 12:00 and 16 Mar 12:00 (59 days apart); S1 on 15 Feb 12:00 is 30 days after the first
    s1 = np.datetime64("2021-02-15T12:00")
    np.testing.assert_allclose(pair_ndvi(s1, comp, "interpolate"), [0.2 + 0.4 * 30 / 59, 0.7], atol=1e-6)
    np.testing.assert_allclose(pair_ndvi(s1, comp, "nearest"), [0.6, 0.7])  # 29 days to March < 30 to January
    np.testing.assert_allclose(pair_ndvi("2021-01-30T05:00", comp, "nearest"), [0.2, 0.7])  # Jan empty pixel
    np.testing.assert_allclose(pair_ndvi("2021-03-02T05:00", comp, "month"), [0.6, 0.7])
    np.testing.assert_allclose(pair_ndvi("2021-01-02T05:00", comp, "month"), [0.2, np.nan])
    with pytest.raises(InputError, match="no NDVI composite for 2021-02"):
        pair_ndvi(s1, comp, "month")
    np.testing.assert_allclose(comp.filled().ndvi, [[0.2, 0.7], [0.6, 0.7]], atol=1e-7)


def test_stack_and_dates_must_agree() -> None:
    with pytest.raises(InputError, match="has 2 dates but 3 timestamps"):
        fill_gaps_linear(np.zeros((2, 3)), ["2021-01-01", "2021-01-02", "2021-01-03"])


def test_monthly_composites_from_rasters_match_arrays(slovenia: tuple[np.ndarray, np.ndarray, np.ndarray],
                                                      tmp_path: Path) -> None:
    ndvi, valid, times = slovenia
    first = np.flatnonzero(times < np.datetime64("2016-03-01"))  # 2015-07 … 2016-02: a few months, fast
    paths = []
    for k in first:
        layer = np.where(valid[k], ndvi[k], np.nan).astype(np.float32)
        paths.append(_write(tmp_path / f"ndvi_{k:02d}.tif", layer))
    out_dir = tmp_path / "monthly"
    out_dir.mkdir()
    written = write_monthly_composites(paths, times[first], out_dir, block_size=16)
    expected = monthly_composites(ndvi[first], times[first], valid[first])
    assert list(written) == [str(m) for m in expected.months]
    for k, month in enumerate(expected.months):
        with rasterio.open(written[str(month)]) as src:
            np.testing.assert_allclose(src.read(1), expected.ndvi[k], atol=1e-7)
    assert sorted(os.listdir(out_dir)) == sorted(path.name for path in written.values())


def test_monthly_composites_from_rasters_refuse_other_grid(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.tif", np.zeros((4, 4), dtype=np.float32))
    b = _write(tmp_path / "b.tif", np.zeros((4, 4), dtype=np.float32), res=20.0)
    with pytest.raises(InputError, match=r"b\.tif: grid .* differs"):
        write_monthly_composites([a, b], ["2021-01-01", "2021-01-11"], tmp_path)


def test_ndvi_is_computed_block_by_block(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sizes: list[int] = []
    real = s2_ndvi.ndvi_index

    def spy(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
        sizes.append(red.size)
        return real(red, nir)

    monkeypatch.setattr(s2_ndvi, "ndvi_index", spy)
    ndvi_from_l2a(B04, B08, SCL, PB0214, out=tmp_path / "ndvi.tif", block_size=40)
    assert len(sizes) == 16 and max(sizes) == 40 * 40  # 128 px = 3 × 40 + 8 per side
