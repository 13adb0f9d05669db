"""plotsm.sources.s1: σ⁰ calibration and thermal-noise LUTs of real S1 annotation XML (trimmed CDSE IPF ≥ 2.90 and
legacy range-only files, and the untrimmed S1B IW GRDH of the sarsen test SAFE, IPF 003.40), interpolated at
sample points and checked against bilinear values worked out by hand from the numbers in the XML text; σ⁰ of
:func:`calibrate_window` (1 × 1 windows at those points) and :func:`calibrate_positions` against the same values.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from plotsm.errors import InputError
from plotsm.sources.s1 import (calibrate_positions, calibrate_window, noise_lut, read_calibration, read_noise,
                               sigma_nought_lut)
from plotsm.sources.s1 import lut as s1

DATA = Path(__file__).parent / "data"
CAL_IPF290, NOISE_IPF290 = DATA / "s1_calibration_ipf290.xml", DATA / "s1_noise_ipf290.xml"
CAL_LEGACY, NOISE_LEGACY = DATA / "s1_calibration_legacy.xml", DATA / "s1_noise_legacy.xml"
CAL_SARSEN, NOISE_SARSEN = DATA / "s1_sarsen_calibration_vv.xml", DATA / "s1_sarsen_noise_vv.xml"


def lerp(a: float, b: float, w: float) -> float:
    return a + w * (b - a)


def vector_text(path: Path, tag: str, line: int) -> str:
    """The XML text of the ``<tag>`` vector at ``<line>line</line>`` (to show the hand-copied numbers are there)."""
    text = path.read_text(encoding="utf-8")
    for block in re.findall(rf"<{tag}>.*?</{tag}>", text, re.S):
        if f"<line>{line}</line>" in block:
            return block
    raise AssertionError(f"no <{tag}> at line {line} in {path.name}")


@pytest.fixture(scope="module")
def sarsen() -> tuple[s1.LUT, s1.NoiseLUT]:
    return read_calibration(CAL_SARSEN), read_noise(NOISE_SARSEN)


# --------------------------------------------------------------------------------------------- reading


def test_layouts_are_detected() -> None:
    modern, legacy = read_noise(NOISE_IPF290), read_noise(NOISE_LEGACY)
    assert modern.layout == "range+azimuth" and len(modern.azimuth) == 5
    assert [b.swath for b in modern.azimuth] == ["IW1", "IW2", "IW3", "IW2", "IW3"]
    assert (modern.azimuth[3].first_line, modern.azimuth[3].first_pixel) == (20309, 8684)
    assert legacy.layout == "range" and legacy.azimuth == ()
    assert list(legacy.range.lines) == [0, 4697, 9394, 14091]
    assert not legacy.range.regular  # pixel 9312 / 9313 / 9303 / 9305 in the four vectors
    assert read_calibration(CAL_IPF290).absolute_calibration_constant == pytest.approx(0.8995)
    assert read_calibration(CAL_LEGACY).absolute_calibration_constant == 1.0


def test_sarsen_safe_is_read(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    cal, noise = sarsen
    assert len(cal.sigma_nought.lines) == 27 and cal.sigma_nought.pixels[0].size == 654
    assert noise.layout == "range+azimuth" and len(noise.range.lines) == 27
    assert [(b.swath, b.first_pixel, b.last_pixel, b.last_line) for b in noise.azimuth] == [
        ("IW1", 0, 8889, 16704), ("IW2", 8890, 17700, 16704), ("IW3", 17701, 26101, 16704)]


# ------------------------------------------------------------------------- calibration LUT, by hand


def test_sigma_nought_ipf290_by_hand() -> None:
    # line 0 and line 5325 carry the same sigmaNought; pixel 1560 → 6.228287e+02, 3120 → 6.135883e+02
    for line in (0, 5325):
        assert "6.228287e+02 6.135883e+02" in vector_text(CAL_IPF290, "calibrationVector", line)
    lut = read_calibration(CAL_IPF290)
    expected = lerp(6.228287e2, 6.135883e2, (2000 - 1560) / (3120 - 1560))
    got = sigma_nought_lut(lut, [2000.0, 0.0], [2000.0, 0.0])
    assert got[0] == pytest.approx(expected, rel=1e-7)
    assert got[1] == pytest.approx(6.328027e2, rel=1e-7)  # first sample of the first vector


def test_sigma_nought_sarsen_by_hand(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    # lines 668 and 1336, pixels 5000 and 5040: 6.332904e+02, 6.330739e+02 on both lines
    for line in (668, 1336):
        block = vector_text(CAL_SARSEN, "calibrationVector", line)
        assert "5000 5040" in block and "6.332904e+02 6.330739e+02" in block
    expected = lerp(6.332904e2, 6.330739e2, 10 / 40)
    assert sigma_nought_lut(sarsen[0], 1000, 5010) == pytest.approx(expected, rel=1e-7)


# ------------------------------------------------------------------------------ noise LUT, by hand


def test_noise_ipf290_by_hand() -> None:
    noise = read_noise(NOISE_IPF290)
    # range: lines 0 / 5328, pixels 1600 / 3200
    assert "8.351952e+02 7.746929e+02" in vector_text(NOISE_IPF290, "noiseRangeVector", 0)
    assert "8.372875e+02 7.764565e+02" in vector_text(NOISE_IPF290, "noiseRangeVector", 5328)
    wp, wl = (2000 - 1600) / 1600, 2000 / 5328
    rng = lerp(lerp(8.351952e2, 7.746929e2, wp), lerp(8.372875e2, 7.764565e2, wp), wl)
    # azimuth, block IW1 (lines 0..20308, samples 0..8751): lines 0 / 2530 → 1.095119, 1.014538
    az = lerp(1.095119, 1.014538, 2000 / 2530)
    # the point (20400, 9000): range vectors end at line 15984 (trimmed file) → edge value of that vector,
    # pixels 8000 / 9552 → 7.567352e+02, 5.396522e+02; azimuth from the second IW2 block (lines 20309..20942,
    # samples 8684..17559), lines 20380 / 20460 → 1.014416, 1.020986
    assert "7.567352e+02 5.396522e+02" in vector_text(NOISE_IPF290, "noiseRangeVector", 15984)
    rng2 = lerp(7.567352e2, 5.396522e2, (9000 - 8000) / (9552 - 8000))
    az2 = lerp(1.014416, 1.020986, (20400 - 20380) / 80)
    got = noise_lut(noise, [2000, 20400], [2000, 9000])
    assert got[0] == pytest.approx(rng * az, rel=1e-6)
    assert got[1] == pytest.approx(rng2 * az2, rel=1e-6)
    # sample 8700 belongs to IW1 up to line 20308 and to the second IW2 block from line 20309 on
    at_8700 = noise_lut(noise, [20308, 20309], [8700, 8700]) / range_noise_only(noise, [20308, 20309], [8700, 8700])
    assert at_8700[0] == pytest.approx(1.123392, rel=1e-6)  # IW1: last value, line 20308
    assert at_8700[1] == pytest.approx(1.009457, rel=1e-6)  # IW2 (2nd block): first value, line 20309
    # outside every block (beyond the last line 21681): no noise, NaN
    assert np.isnan(noise_lut(noise, 21682, 100))


def range_noise_only(noise: s1.NoiseLUT, lines: list[int], pixels: list[int]) -> np.ndarray:
    """Range part alone, to isolate the azimuth factor."""
    return noise_lut(s1.NoiseLUT(noise.source, "range", noise.range, ()), lines, pixels)


def test_noise_legacy_by_hand_irregular_pixels() -> None:
    noise = read_noise(NOISE_LEGACY)
    # line 4697: pixels 9313 / 10873 → 7.693961e+02, 5.497944e+02; line 9394: 9303 / 10863 → 7.550677e+02,
    # 5.402006e+02 (pixel positions differ between the two vectors)
    b0, b1 = vector_text(NOISE_LEGACY, "noiseVector", 4697), vector_text(NOISE_LEGACY, "noiseVector", 9394)
    assert "9313 10873" in b0 and "7.693961e+02 5.497944e+02" in b0
    assert "9303 10863" in b1 and "7.550677e+02 5.402006e+02" in b1
    r0 = lerp(7.693961e2, 5.497944e2, (9320 - 9313) / 1560)
    r1 = lerp(7.550677e2, 5.402006e2, (9320 - 9303) / 1560)
    expected = lerp(r0, r1, (7000 - 4697) / (9394 - 4697))
    assert noise_lut(noise, 7000, 9320) == pytest.approx(expected, rel=1e-7)
    # and at the first sample of the first vector, exactly the annotated value
    assert noise_lut(noise, 0, 0) == pytest.approx(1.606331e3, rel=1e-7)


def test_noise_sarsen_by_hand(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    # range: lines 0 / 668, pixels 5000 / 5040
    assert "1.113578e+03 1.110665e+03" in vector_text(NOISE_SARSEN, "noiseRangeVector", 0)
    assert "1.128390e+03 1.125436e+03" in vector_text(NOISE_SARSEN, "noiseRangeVector", 668)
    rng = lerp(lerp(1.113578e3, 1.110665e3, 10 / 40), lerp(1.128390e3, 1.125436e3, 10 / 40), 155 / 668)
    # azimuth, IW1 block: lines 150 / 158 (an irregular step of the annotation) → 1.132940, 1.135365
    text = NOISE_SARSEN.read_text(encoding="utf-8")
    assert "130 140 150 158 159 160" in text and "1.132940e+00 1.135365e+00 1.124603e+00" in text
    az = lerp(1.132940, 1.135365, 5 / 8)
    assert noise_lut(sarsen[1], 155, 5010) == pytest.approx(rng * az, rel=1e-6)


def test_ragged_and_regular_interpolation_agree(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    grid = sarsen[1].range
    assert grid.regular
    rng = np.random.default_rng(0)
    lines, pixels = rng.uniform(-50, 17000, 2000), rng.uniform(-50, 26200, 2000)
    regular = s1._bilinear(grid, lines, pixels)
    ragged = s1._bilinear_ragged(grid, lines, pixels)
    np.testing.assert_allclose(ragged, regular, rtol=1e-12)


# ----------------------------------------------------------------------------------------- calibrate


def at_points(dn: np.ndarray, lines: np.ndarray, pixels: np.ndarray, cal: s1.LUT,
              noise: s1.NoiseLUT | None = None) -> tuple[np.ndarray, int]:
    """σ⁰ of each DN at its own (integer) image point, each a 1 × 1 window of :func:`calibrate_window`, and the
    number clipped to 0."""
    dn, lines, pixels = np.broadcast_arrays(dn, lines, pixels)
    results = [calibrate_window(np.array([[d]]), int(line), int(pixel), cal, noise)
               for d, line, pixel in zip(dn.ravel(), lines.ravel(), pixels.ravel())]
    return np.array([r[0][0, 0] for r in results]).reshape(dn.shape), sum(r[1] for r in results)


def test_calibrate_matches_xarray_sentinel_without_noise(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    from xarray_sentinel import calibrate_intensity
    from xarray_sentinel.sentinel1 import open_calibration_dataset

    lines, pixels = np.array([100.0, 2000.0, 7000.0]), np.array([10.0, 5000.0, 20000.0, 26000.0])
    dn = np.array([[50, 120, 300, 7], [1, 2000, 45, 90], [640, 33, 81, 12]], dtype=np.float64)
    dn_da = xr.DataArray(dn, dims=("line", "pixel"), coords={"line": lines, "pixel": pixels})
    reference = calibrate_intensity(dn_da, open_calibration_dataset(CAL_SARSEN, attrs={})["sigmaNought"])
    got, _ = at_points(dn, lines[:, None], pixels[None, :], sarsen[0])
    np.testing.assert_allclose(got, reference.values, rtol=1e-6)


def test_calibrate_by_hand_with_noise(sarsen: tuple[s1.LUT, s1.NoiseLUT]) -> None:
    cal, noise = sarsen
    a = lerp(6.332904e2, 6.330739e2, 10 / 40)
    n = lerp(lerp(1.113578e3, 1.110665e3, 10 / 40), lerp(1.128390e3, 1.125436e3, 10 / 40), 155 / 668) * lerp(
        1.132940, 1.135365, 5 / 8)
    got, _ = at_points(np.array([200.0]), np.array([155]), np.array([5010]), cal, noise)
    assert got[0] == pytest.approx((200.0**2 - n) / a**2, rel=1e-6)
    # the same point as a position inside a window (bilinear weight 1 on its pixel)
    window = np.array([[190, 195], [200, 205]], dtype=np.uint16)
    at, n_clipped = calibrate_positions(window, 154, 5010, np.array([155.0]), np.array([5010.0]), cal, noise)
    assert at[0] == pytest.approx((200.0**2 - n) / a**2, rel=1e-6) and n_clipped == 0


def test_dn_zero_is_nan() -> None:
    cal, noise = read_calibration(CAL_LEGACY), read_noise(NOISE_LEGACY)
    got, _ = at_points(np.array([0, 100, 0, 250]), np.array([1000]), np.array([0, 500, 9000, 20000]), cal, noise)
    assert np.isnan(got[0]) and np.isnan(got[2])
    assert np.all(np.isfinite(got[[1, 3]])) and np.all(got[[1, 3]] > 0)
    assert np.isnan(calibrate_window(np.zeros((2, 2)), 0, 0, cal)[0]).all()


def test_negative_after_noise_removal_is_clipped_and_counted() -> None:
    cal, noise = read_calibration(CAL_LEGACY), read_noise(NOISE_LEGACY)
    # N at (0, 0) is 1.606331e+03 → DN 40 (1600) and DN 10 (100) go negative, DN 41 (1681) and DN 100 do not
    dn = np.array([40, 10, 41, 100, 0])
    got, n_clipped = at_points(dn, np.array([0]), np.array([0]), cal, noise)
    assert (n_clipped, int(np.isfinite(got).sum())) == (2, 4)  # 2 of 4 valid samples were negative
    assert got[0] == 0.0 and got[1] == 0.0
    assert got[2] == pytest.approx((41.0**2 - 1.606331e3) / 6.616063e2**2, rel=1e-6)
    assert got[3] > 0 and np.isnan(got[4])


def test_positions_clip_after_interpolating() -> None:
    """Between DN 40 at (0, 0), negative after noise removal, and DN 41 at (0, 1), positive: the position
    (0, 0.5) takes the mean of the two unclipped values, positive, and is not counted as clipped."""
    cal, noise = read_calibration(CAL_LEGACY), read_noise(NOISE_LEGACY)
    dn = np.array([[40, 41]], dtype=np.uint16)
    n, a = noise_lut(noise, [0, 0], [0, 1]), sigma_nought_lut(cal, [0, 0], [0, 1])
    unclipped = (dn[0].astype(float) ** 2 - n) / a**2
    assert unclipped[0] < 0 < unclipped[1]
    got, n_clipped = calibrate_positions(dn, 0, 0, np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.5, 1.0]), cal, noise)
    assert got[0] == 0.0 and n_clipped == 1
    assert got[1] == pytest.approx(unclipped.mean(), rel=1e-6) and got[1] > 0
    assert got[2] == pytest.approx(unclipped[1], rel=1e-6)
    assert got.dtype == np.float32
    nan, _ = calibrate_positions(dn, 0, 0, np.array([np.nan]), np.array([0.0]), cal, noise)
    assert np.isnan(nan).all()


# ------------------------------------------------------------------------------------------------ errors


def test_corrupt_xml_is_an_input_error(tmp_path: Path) -> None:
    text = NOISE_IPF290.read_text(encoding="utf-8")
    broken = tmp_path / "noise-corrupt.xml"
    broken.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(InputError, match=r"noise-corrupt\.xml is not readable XML"):
        read_noise(broken)
    cal_broken = tmp_path / "calibration-corrupt.xml"
    cal_broken.write_text(CAL_IPF290.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    with pytest.raises(InputError, match=r"calibration-corrupt\.xml is not readable XML"):
        read_calibration(cal_broken)
    assert InputError.exit_code == 4


def test_missing_or_wrong_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.xml not found"):
        read_calibration(tmp_path / "nowhere.xml")
    with pytest.raises(InputError, match=r"s1_noise_legacy\.xml has root <noise>, expected <calibration>"):
        read_calibration(NOISE_LEGACY)
    empty = tmp_path / "noise-empty.xml"
    empty.write_text("<?xml version='1.0'?><noise><adsHeader/></noise>", encoding="utf-8")
    with pytest.raises(InputError, match=r"noise-empty\.xml holds neither <noiseRangeVectorList>"):
        read_noise(empty)
    bad_number = tmp_path / "noise-badnumber.xml"
    bad_number.write_text(NOISE_LEGACY.read_text(encoding="utf-8").replace("1.606331e+03", "1.6O6331e+03"),
                          encoding="utf-8")
    with pytest.raises(InputError, match=r"noise-badnumber\.xml: <noiseLut> holds a non-number"):
        read_noise(bad_number)
