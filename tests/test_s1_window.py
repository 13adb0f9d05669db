"""plotsm.sources.s1.calibrate_window: the separable window path equals max(DN² − N, 0) / A² with the LUTs evaluated
at every pixel (:func:`sigma_nought_lut`, :func:`noise_lut`, float64) within float32 (1e-6 relative) on the real
annotation of tests/data (trimmed IPF ≥ 2.90 and legacy range-only files, the full sarsen S1B product with its
three azimuth-noise blocks), on windows that straddle annotation vectors, azimuth blocks, the image edges and the
last vector; DN 0 → NaN; the same clipped count as that per-pixel evaluation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plotsm.sources.s1.calibrate as s1_calibrate
from plotsm.sources.s1 import calibrate_window, noise_lut, read_calibration, read_noise, sigma_nought_lut
from plotsm.sources.s1 import lut as s1

DATA = Path(__file__).parent / "data"
FILES = {"ipf290": ("s1_calibration_ipf290.xml", "s1_noise_ipf290.xml"),
         "legacy": ("s1_calibration_legacy.xml", "s1_noise_legacy.xml"),
         "sarsen": ("s1_sarsen_calibration_vv.xml", "s1_sarsen_noise_vv.xml")}
RTOL = 1e-6


@lru_cache(maxsize=None)
def luts(name: str) -> tuple[s1.LUT, s1.NoiseLUT]:
    cal, noise = FILES[name]
    return read_calibration(DATA / cal), read_noise(DATA / noise)


def reference(dn: np.ndarray, row0: int, col0: int, lut: s1.LUT,
              noise: s1.NoiseLUT | None) -> tuple[np.ndarray, int]:
    """max(DN² − N, 0) / A² on the window's pixel grid, A and N evaluated at every pixel (float64; DN 0 or
    non-finite → NaN), and the number of samples clipped to 0."""
    rows = np.arange(row0, row0 + dn.shape[0], dtype=np.float64)
    cols = np.arange(col0, col0 + dn.shape[1], dtype=np.float64)
    lines, pixels = np.broadcast_arrays(rows[:, None], cols[None, :])
    dn64 = np.asarray(dn, dtype=np.float64)
    power = dn64 * dn64
    power[(dn64 == 0) | ~np.isfinite(power)] = np.nan
    if noise is not None:
        power = power - noise_lut(noise, lines, pixels)  # NaN outside every azimuth block
    negative = power < 0  # NaN is not < 0
    power[negative] = 0.0
    return power / sigma_nought_lut(lut, lines, pixels) ** 2, int(negative.sum())


def assert_matches(dn: np.ndarray, row0: int, col0: int, lut: s1.LUT,
                   noise: s1.NoiseLUT | None) -> tuple[np.ndarray, int]:
    got, n_clipped = calibrate_window(dn, row0, col0, lut, noise)
    expected, n_expected = reference(dn, row0, col0, lut, noise)
    assert got.dtype == np.float32 and got.shape == dn.shape
    # atol 0: zeros (clipped) must be zeros; NaN (no data, no noise block) must be NaN at the same pixels
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=0)
    assert n_clipped == n_expected
    return got, n_clipped


def dn_window(shape: tuple[int, int], seed: int, high: int = 60) -> np.ndarray:
    """uint16 DN in 0..high: with N ≈ 1,000–1,600 a third or more are clipped, some are 0 (no data)."""
    return np.random.default_rng(seed).integers(0, high + 1, shape, dtype=np.uint16)


# (row0, col0, height, width) of windows, per file, and what they straddle
WINDOWS = {
    "sarsen": [
        (600, 8800, 800, 200),     # vectors at lines 668 and 1336; IW1 | IW2 seam at samples 8889 | 8890
        (9000, 17650, 100, 120),   # IW2 | IW3 seam at 17700 | 17701
        (-15, -25, 40, 60),        # before the first line and sample: edge values, no azimuth block → NaN
        (16650, 26000, 120, 150),  # last image line 16704 (noise vector at 16704, calibration at 17373),
                                   # last sample 26101, then beyond both
        (17300, 100, 200, 50),     # beyond the last calibration vector (17373): edge values, noise NaN
    ],
    "ipf290": [
        (20250, 8600, 120, 250),   # IW1 ends at line 20308; the second IW2 block starts at 20309, sample 8684:
                                   # samples 8600–8683 from line 20309 on lie in no block → NaN
        (5200, 17500, 200, 120),   # vectors at 5325 (calibration) and 5328 (noise); IW2 | IW3 at 17559 | 17560
        (15900, 25400, 150, 200),  # beyond the last noise (15984) and calibration (15974) vectors, sample 25506
        (21600, 25300, 150, 300),  # the last azimuth block ends at line 21681 and sample 25506
    ],
    "legacy": [
        (4600, 9250, 200, 150),    # vectors at 4697 (pixel 9313) and 9394 (pixel 9303): ragged pixel positions
        (14000, 23200, 150, 200),  # beyond the last vector (14091) and its last pixel (23278)
        (-10, 0, 30, 23400),       # a whole line width, above the first line
    ],
}


@pytest.mark.parametrize("name, window", [(n, w) for n, ws in WINDOWS.items() for w in ws],
                         ids=[f"{n}-{w[0]}-{w[1]}" for n, ws in WINDOWS.items() for w in ws])
def test_window_equals_per_pixel_lut(name: str, window: tuple[int, int, int, int]) -> None:
    row0, col0, height, width = window
    lut, noise = luts(name)
    dn = dn_window((height, width), seed=abs(row0) + abs(col0))
    got, n_clipped = assert_matches(dn, row0, col0, lut, noise)
    assert n_clipped > 0 or name == "sarsen"  # the sarsen windows above the image have no noise block
    plain, n_plain = assert_matches(dn, row0, col0, lut, None)
    assert n_plain == 0 and np.isfinite(plain[dn > 0]).all()


def test_seam_values_come_from_each_block() -> None:
    """The IW1 | IW2 seam of the sarsen product: both sides calibrated, each with its own azimuth vector."""
    lut, noise = luts("sarsen")
    dn = np.full((3, 4), 300, dtype=np.uint16)
    got, _ = assert_matches(dn, 1000, 8888, lut, noise)
    assert np.isfinite(got).all()
    no_azimuth = s1.NoiseLUT(noise.source, "range", noise.range, ())
    plain, _ = calibrate_window(dn, 1000, 8888, lut, no_azimuth)
    assert (got[:, :2] != plain[:, :2]).all() and (got[:, 2:] != plain[:, 2:]).all()


def test_ipf290_notch_is_nan() -> None:
    lut, noise = luts("ipf290")
    got, _ = assert_matches(np.full((4, 4), 100, dtype=np.uint16), 20307, 8682, lut, noise)
    # lines 20307, 20308: IW1 (to sample 8751); lines 20309, 20310: second IW2 block from sample 8684 on
    assert np.isfinite(got[:2]).all()
    assert np.isnan(got[2:, :2]).all() and np.isfinite(got[2:, 2:]).all()


def test_by_hand_with_noise() -> None:
    """The point of test_s1.test_calibrate_by_hand_with_noise, as a 1 × 1 window."""
    lut, noise = luts("sarsen")
    a = 6.332904e2 + 10 / 40 * (6.330739e2 - 6.332904e2)
    rng0 = 1.113578e3 + 10 / 40 * (1.110665e3 - 1.113578e3)
    rng1 = 1.128390e3 + 10 / 40 * (1.125436e3 - 1.128390e3)
    n = (rng0 + 155 / 668 * (rng1 - rng0)) * (1.132940 + 5 / 8 * (1.135365 - 1.132940))
    got, n_clipped = calibrate_window(np.array([[200]], dtype=np.uint16), 155, 5010, lut, noise)
    assert got[0, 0] == pytest.approx((200.0**2 - n) / a**2, rel=1e-6) and n_clipped == 0


def test_dn_zero_and_non_finite_are_nan() -> None:
    lut, noise = luts("legacy")
    dn = np.array([[0, 100, 0, 250], [7, 0, 65535, 1]], dtype=np.uint16)
    for nz in (noise, None):
        got, _ = assert_matches(dn, 1000, 9000, lut, nz)
        assert np.array_equal(np.isnan(got), dn == 0)
    dn_float = np.array([[np.nan, 100.0, np.inf, 0.0, 250.0]])
    got, _ = assert_matches(dn_float, 1000, 9000, lut, noise)
    assert np.array_equal(np.isnan(got), np.array([[True, False, True, True, False]]))


def test_clipped_count_equals_per_pixel_lut() -> None:
    lut, noise = luts("legacy")
    # N at (0, 0) is 1.606331e+03 (test_s1): DN 40 and 10 go negative, 41 and 100 do not, 0 is no data
    got, n_clipped = assert_matches(np.array([[40, 10, 41, 100, 0]], dtype=np.uint16), 0, 0, lut, noise)
    assert n_clipped == 2 and got[0, 0] == 0 and got[0, 1] == 0


def test_high_dn_without_noise() -> None:
    """DN up to 65535: DN² is rounded to float32 (7 digits), still within 1e-6 of the per-pixel float64 evaluation."""
    lut, _ = luts("sarsen")
    dn = np.random.default_rng(3).integers(60000, 65536, (50, 400), dtype=np.uint16)
    assert_matches(dn, 8000, 12000, lut, None)


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    lut, noise = luts("ipf290")
    dn = dn_window((90, 300), seed=7)
    whole, n_whole = calibrate_window(dn, 20260, 8550, lut, noise)
    monkeypatch.setattr(s1_calibrate, "WINDOW_CHUNK_PX", 1)  # one row per chunk
    rowwise, n_rowwise = calibrate_window(dn, 20260, 8550, lut, noise)
    np.testing.assert_array_equal(rowwise, whole)
    assert n_rowwise == n_whole


def test_empty_and_wrong_shapes() -> None:
    lut, noise = luts("sarsen")
    got, n_clipped = calibrate_window(np.zeros((0, 5), dtype=np.uint16), 0, 0, lut, noise)
    assert got.shape == (0, 5) and n_clipped == 0
    with pytest.raises(ValueError, match=r"dn has shape \(5,\); give a 2-D window"):
        calibrate_window(np.ones(5, dtype=np.uint16), 0, 0, lut, noise)


# --------------------------------------------------------------------------------------------- properties

windows = st.tuples(st.sampled_from(sorted(FILES)), st.integers(-60, 22_000), st.integers(-60, 26_200),
                    st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**32 - 1), st.booleans())


@settings(max_examples=80, deadline=None)
@given(windows)
def test_any_window_equals_per_pixel_lut(case: tuple[str, int, int, int, int, int, bool]) -> None:
    name, row0, col0, height, width, seed, with_noise = case
    lut, noise = luts(name)
    assert_matches(dn_window((height, width), seed), row0, col0, lut, noise if with_noise else None)


@settings(max_examples=40, deadline=None)
@given(windows, st.integers(1, 23), st.booleans())
def test_split_windows_give_the_same_pixels(case: tuple[str, int, int, int, int, int, bool], cut: int,
                                            along_rows: bool) -> None:
    """A window calibrated in two pieces equals the whole, bit for bit, and the clipped counts add up."""
    name, row0, col0, height, width, seed, with_noise = case
    lut, noise = luts(name)
    nz = noise if with_noise else None
    dn = dn_window((height, width), seed)
    whole, n_whole = calibrate_window(dn, row0, col0, lut, nz)
    if along_rows:
        cut = min(cut, height)
        (a, n_a), (b, n_b) = calibrate_window(dn[:cut], row0, col0, lut, nz), calibrate_window(
            dn[cut:], row0 + cut, col0, lut, nz)
        joined = np.vstack([a, b])
    else:
        cut = min(cut, width)
        (a, n_a), (b, n_b) = calibrate_window(dn[:, :cut], row0, col0, lut, nz), calibrate_window(
            dn[:, cut:], row0, col0 + cut, lut, nz)
        joined = np.hstack([a, b])
    np.testing.assert_array_equal(joined, whole)
    assert n_a + n_b == n_whole
