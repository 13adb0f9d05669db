"""Trust: an input plotsm cannot interpret is refused or decoded, never turned into a value flagged ok.

Real rasters of the Benin inland valley (tests/data/README.md: σ⁰ VV linear, θ and NDVI of September 2019 on one
10 m grid, 295 real segments as parcels) are rewritten in the encodings users meet: NDVI stretched to 0–255 or
× 10000 in integers, plotsm's own uint8, zeros for no data, σ⁰ in dB, θ in radians. Each is either refused with a
message that says what the values look like and which option fixes it (exit 4, nothing written), or decoded to
the very numbers the float reference gives. Also: the unit/scale rules of :mod:`plotsm.raster` on hand-made
arrays, and the property that every accepted encoding of the same data stores identical results.
"""

from __future__ import annotations

import json
import warnings
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plotsm.cli import main
from plotsm.errors import InputError, UsageError
from plotsm.raster import Encoding, inspect_raster, resolve_decoding
from plotsm.sources.s2 import encode_ndvi_uint8

DATA = Path(__file__).parent / "data"
VV, THETA, NDVI = (DATA / "zonal_benin_vv_201909.tif", DATA / "trust_benin_angle_201909.tif",
                   DATA / "trust_benin_ndvi_201909.tif")
PARCELS = DATA / "zonal_benin_segments.gpkg"


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), dict(src.profile)


def write(path: Path, data: np.ndarray, profile: dict, *, nodata: float | None = None, tags: dict | None = None,
          scale: float | None = None, offset: float | None = None) -> Path:
    meta = {**profile, "dtype": data.dtype, "nodata": nodata, "driver": "GTiff"}
    with rasterio.open(path, "w", **meta) as dst:
        if tags:
            dst.update_tags(**tags)
        if scale is not None or offset is not None:
            dst.scales, dst.offsets = (scale if scale is not None else 1.0,), (offset if offset is not None else 0.0,)
        dst.write(data, 1)
    return path


def plotsm(*args: object) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr) with the console's line wrapping undone."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, " ".join(out.getvalue().split()), " ".join(err.getvalue().split())


def run(out: Path, vv: Path = VV, theta: Path = THETA, ndvi: Path = NDVI, *extra: object) -> tuple[int, str, str]:
    return plotsm("-q", "run", "--parcels", PARCELS, "--vv", vv, "--theta", theta, "--ndvi", ndvi,
                  "--date", "2019-09-15T05:40:00Z", "--out", out, *extra)


def stored(out: Path) -> pd.DataFrame:
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        return con.sql("SELECT o.parcel_id, o.n_valid, o.vv_linear_mean, o.theta_deg, o.ndvi, m.status, m.network, "
                       "m.mv_pct FROM observations o JOIN moisture m USING (parcel_id, acquisition_id) "
                       "ORDER BY parcel_id").df()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The float rasters as they are: 86 parcels ok, 209 no_data (outside the valley's σ⁰)."""
    out = tmp_path_factory.mktemp("reference")
    code, _, err = run(out)
    assert code == 0, err
    table = stored(out)
    assert table["status"].value_counts().to_dict() == {"no_data": 209, "ok": 86}
    return table


# ---------------------------------------------------------------------------------------------- NDVI scales


def test_ndvi_stretched_to_0_255_is_refused_with_what_it_looks_like(tmp_path):
    """The reported case: NDVI 0–1 → 0–255 as uint8, no data written as 0, no nodata tag. It used to be read as
    NDVI (most parcels ndvi_above_max, 4 parcels ok at NDVI 0 where the NDVI was no data), exit 0."""
    ndvi, profile = read(NDVI)
    byte = write(tmp_path / "ndvi_0_255.tif", np.where(np.isnan(ndvi), 0, np.round(ndvi * 255)).astype(np.uint8),
                 profile)
    zeros = 100.0 * np.isnan(ndvi).sum() / ndvi.size  # every pixel is read in the sample (one 170-row strip)
    code, _, err = run(tmp_path / "out", VV, THETA, byte)
    assert code == 4
    assert f"ndvi_0_255.tif: NDVI stored as uint8 integers without a scale, no nodata tag (values 0 to " \
           f"{int(np.nanmax(np.round(ndvi * 255)))}, median 0; {zeros:.1f} % of them are 0, which probably marks " \
           "missing data (--ndvi-nodata 0))" in err
    assert "--ndvi-scale 0.00392157 (1/255)" in err and "--ndvi-scale 0.00784314 --ndvi-offset -1" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_ndvi_0_255_with_its_scale_and_nodata_never_gives_ok_at_no_data(tmp_path, reference):
    ndvi, profile = read(NDVI)
    byte = write(tmp_path / "ndvi_0_255.tif", np.where(np.isnan(ndvi), 0, np.round(ndvi * 255)).astype(np.uint8),
                 profile)
    code, _, err = run(tmp_path / "out", VV, THETA, byte, "--ndvi-scale", 1 / 255, "--ndvi-nodata", 0)
    assert code == 0, err
    got = stored(tmp_path / "out")
    assert got["ndvi"].isna().equals(reference["ndvi"].isna())  # no data stays no data, never NDVI 0
    assert not ((got["status"] == "ok") & got["ndvi"].isna()).any()
    np.testing.assert_allclose(got["ndvi"], reference["ndvi"], atol=0.5 / 255)  # within half a quantum
    assert (got["status"] == reference["status"]).all()


def test_plotsm_uint8_ndvi_is_decoded_by_run(tmp_path, reference):
    """`plotsm s2 ndvi --uint8` output (round((NDVI+1)·100), 255 no data, its tag) used to give every parcel
    ndvi_above_max in `run`, although `s2 composite` decoded it."""
    ndvi, profile = read(NDVI)
    codes = write(tmp_path / "ndvi_u8.tif", encode_ndvi_uint8(ndvi), profile, nodata=255,
                  tags={"NDVI_ENCODING": "round((ndvi+1)*100), 255 nodata"})
    code, _, err = run(tmp_path / "out", VV, THETA, codes)
    assert code == 0, err
    got = stored(tmp_path / "out")
    np.testing.assert_allclose(got["ndvi"], reference["ndvi"], atol=0.005)  # the encoding's step is 0.01
    assert (got["status"] == reference["status"]).all()


def test_ndvi_times_10000_is_refused_then_decoded_by_option_or_by_its_own_scale(tmp_path, reference):
    ndvi, profile = read(NDVI)
    ints = np.where(np.isnan(ndvi), -10000, np.round(ndvi * 10000)).astype(np.int16)
    bare = write(tmp_path / "ndvi_x10000.tif", ints, profile)
    code, _, err = run(tmp_path / "refused", VV, THETA, bare)
    assert code == 4 and "This looks like NDVI × 10000: pass --ndvi-scale 0.0001" in err
    code, _, err = run(tmp_path / "option", VV, THETA, bare, "--ndvi-scale", "0.0001", "--ndvi-nodata", "-10000")
    assert code == 0, err
    tagged = write(tmp_path / "ndvi_scaled.tif", ints, profile, nodata=-10000, scale=0.0001)  # GDAL scale metadata
    code, _, err = run(tmp_path / "own", VV, THETA, tagged)
    assert code == 0, err
    for out in ("option", "own"):
        got = stored(tmp_path / out)
        np.testing.assert_allclose(got["ndvi"], reference["ndvi"], atol=0.5e-4)
        assert (got["status"] == reference["status"]).all()
    code, _, err = run(tmp_path / "clash", VV, THETA, tagged, "--ndvi-scale", "0.01")
    assert code == 4 and "the file says NDVI = value × 0.0001 + 0" in err and "Drop the options" in err


def test_float_ndvi_with_zeros_for_no_data_is_refused_unless_said(tmp_path, reference):
    ndvi, profile = read(NDVI)
    zeroed = write(tmp_path / "ndvi_zero.tif", np.where(np.isnan(ndvi), 0, ndvi).astype(np.float32), profile)
    code, _, err = run(tmp_path / "refused", VV, THETA, zeroed)
    assert code == 4
    assert f"{100 * np.isnan(ndvi).mean():.1f} % of the valid NDVI pixels are exactly 0 and the file has no " \
           "nodata tag" in err and "Pass --ndvi-nodata 0" in err
    code, _, err = run(tmp_path / "said", VV, THETA, zeroed, "--ndvi-nodata", "0")
    assert code == 0, err
    got = stored(tmp_path / "said")
    pd.testing.assert_frame_equal(got, reference)  # zeros as no data: exactly the float reference


def test_out_of_range_ndvi_pixels_are_masked_and_counted(tmp_path, reference):
    """Three impossible NDVI pixels (7.0) in the largest parcel: never used, counted with the stored input."""
    ndvi, profile = read(NDVI)
    big = reference.loc[reference["status"] == "ok"].sort_values("n_valid").iloc[-1]
    import geopandas as gpd
    from rasterio.features import geometry_mask

    parcel = gpd.read_file(PARCELS).set_index("label").loc[int(big["parcel_id"])]
    inside = ~geometry_mask([parcel.geometry], ndvi.shape, profile["transform"])
    rows, cols = np.nonzero(inside & np.isfinite(ndvi))
    spoiled = ndvi.copy()
    spoiled[rows[:3], cols[:3]] = 7.0
    path = write(tmp_path / "ndvi_spoiled.tif", spoiled, profile)
    code, _, err = run(tmp_path / "out", VV, THETA, path)
    assert code == 0, err
    got = stored(tmp_path / "out").set_index("parcel_id")
    kept = ndvi[inside & np.isfinite(ndvi)]
    expected = np.delete(kept, [0, 1, 2]).astype(np.float64).mean()  # rows/cols are in the same row-major order
    assert got.loc[big["parcel_id"], "ndvi"] == pytest.approx(expected, rel=1e-12)
    with duckdb.connect(str(tmp_path / "out" / "plotsm.duckdb"), read_only=True) as con:
        inputs = json.loads(con.execute("SELECT inputs FROM acquisitions").fetchone()[0])
    ndvi_input = next(i for i in inputs if i["role"] == "ndvi")
    assert ndvi_input["checked"]["n_out_of_range_masked"] == 3
    assert ndvi_input["encoding"] == "float32 NDVI, no nodata tag"


def test_mostly_out_of_range_ndvi_is_refused(tmp_path):
    ndvi, profile = read(NDVI)
    path = write(tmp_path / "ndvi_pct.tif", (ndvi * 100).astype(np.float32), profile)
    code, _, err = run(tmp_path / "out", VV, THETA, path)
    assert code == 4
    assert "% of the valid NDVI pixels are outside [−1, 1]" in err
    assert "This looks like NDVI in percent: pass --ndvi-scale 0.01" in err


# ---------------------------------------------------------------------------------------------- σ⁰ and θ


def test_sigma0_in_db_without_the_option_is_refused(tmp_path):
    vv, profile = read(VV)
    db = (10 * np.log10(vv.astype(np.float64))).astype(np.float32)
    path = write(tmp_path / "vv.tif", db, profile)
    code, _, err = run(tmp_path / "out", path)
    assert code == 4
    median = float(np.nanmedian(db.astype(np.float64)))
    assert f"vv.tif: 100.0 % of the valid σ⁰ pixels are negative (values {np.nanmin(db):.4g} to " \
           f"{np.nanmax(db):.4g}, median {median:.4g}), which linear power cannot be: this looks like dB. Pass " \
           "--vv-unit db" in err
    assert not (tmp_path / "out").exists()


def test_sigma0_in_db_and_theta_in_radians_with_their_options_give_the_reference(tmp_path, reference):
    """σ⁰ stored as dB = 10·log10(σ⁰) and θ as radians: decoded (10^(0.1·dB), degrees) to the reference's
    numbers (float32 rounding of the stored values: 1e-6 relative)."""
    vv, vprof = read(VV)
    theta, tprof = read(THETA)
    db = write(tmp_path / "vv_db.tif", (10 * np.log10(vv.astype(np.float64))).astype(np.float32), vprof)
    rad = write(tmp_path / "theta_rad.tif", np.radians(theta.astype(np.float64)).astype(np.float32), tprof)
    code, _, err = run(tmp_path / "refused", VV, rad)
    assert code == 4 and "this looks like radians (0.35–0.87 rad = 20–50°). Pass --theta-unit radian" in err
    code, _, err = run(tmp_path / "out", db, rad, NDVI, "--vv-unit", "db", "--theta-unit", "radian")
    assert code == 0, err
    got = stored(tmp_path / "out")
    for column in ("vv_linear_mean", "theta_deg", "mv_pct"):
        np.testing.assert_allclose(got[column], reference[column], rtol=2e-6)
    assert (got["status"] == reference["status"]).all()


def test_a_tag_that_contradicts_the_option_is_refused(tmp_path):
    vv, profile = read(VV)
    tagged = write(tmp_path / "vv.tif", vv, profile, tags={"UNIT": "linear"})
    code, _, err = run(tmp_path / "out", tagged, THETA, NDVI, "--vv-unit", "db")
    assert code == 4 and "tagged UNIT=linear but --vv-unit says db" in err


def test_elevation_angle_instead_of_incidence_is_refused(tmp_path):
    theta, profile = read(THETA)
    path = write(tmp_path / "elevation.tif", (90.0 - theta).astype(np.float32), profile)
    code, _, err = run(tmp_path / "out", VV, path)
    assert code == 4
    assert f"incidence angles have a median of {90 - np.nanmedian(theta):.1f}°" in err
    assert "an elevation angle (90° − θ)" in err


def test_slope_above_90_degrees_is_refused(tmp_path):
    ndvi, profile = read(NDVI)
    path = write(tmp_path / "slope.tif", np.full(ndvi.shape, 250.0, np.float32), profile)
    code, _, err = run(tmp_path / "out", VV, THETA, NDVI, "--slope", path)
    assert code == 4 and "100.0 % of the valid slope pixels are outside 0–90°" in err


# ------------------------------------------------------------------------------------------- raster rules


GRID = {"crs": "EPSG:32631", "transform": Affine(10, 0, 500_000, 0, -10, 4_800_000), "width": 8, "height": 4,
        "count": 1}


@pytest.mark.parametrize(("unit", "stored_value", "degrees"), [("percent", 100.0, 45.0), ("radian", np.pi / 6, 30.0),
                                                                ("degree", 12.5, 12.5)])
def test_slope_units_from_tags(tmp_path, unit, stored_value, degrees):
    path = write(tmp_path / "slope.tif", np.full((4, 8), stored_value, np.float32), GRID, tags={"UNIT": unit})
    decoding = inspect_raster(path, "slope")
    values, _ = decoding.decode(np.full((4, 8), stored_value, np.float32))
    np.testing.assert_allclose(values, degrees, rtol=1e-6)


def test_integer_sigma0_is_refused_as_uncalibrated(tmp_path):
    path = write(tmp_path / "dn.tif", np.full((4, 8), 412, np.uint16), GRID)
    with pytest.raises(InputError, match=r"dn\.tif: σ⁰ stored as uint16 integers without a scale: these look like "
                                         r"uncalibrated digital numbers"):
        inspect_raster(path, "sigma0")


@pytest.mark.usefixtures("cli_words")
def test_options_are_checked():
    with pytest.raises(UsageError, match=r"--ndvi-scale 0\.0: expected a finite, non-zero factor"):
        Encoding(ndvi_scale=0.0)
    with pytest.raises(UsageError, match=r"--theta-unit 'grad': expected degree or radian"):
        Encoding(theta_unit="grad")  # type: ignore[arg-type]


def test_nodata_values_outside_the_band_type_never_match(tmp_path):
    """A nodata of −9999 on a uint8 band cannot occur: no pixel is taken for it (nor wraps to 241); the 241s
    decode to 1.41, outside [−1, 1]: masked one by one, and the raster refused since they are half of it."""
    data = np.array([[241, 100] * 4] * 4, np.uint8)
    path = write(tmp_path / "u8.tif", data, GRID)
    encoding = Encoding(ndvi_scale=0.01, ndvi_offset=-1.0, ndvi_nodata=-9999.0)
    with rasterio.open(path) as src:
        decoding = resolve_decoding(src, path, "ndvi", encoding)
    values, stats = decoding.decode(data.copy())
    assert (stats.n_valid, stats.n_out_of_range) == (32, 16)
    np.testing.assert_array_equal(values, np.where(data.ravel() == 241, np.nan, np.float32(0.0)))
    with pytest.raises(InputError, match=r"u8\.tif: 50\.0 % of the valid NDVI pixels are outside \[−1, 1\] .*The "
                                         r"scale or offset is wrong"):
        inspect_raster(path, "ndvi", encoding)


# ------------------------------------------------------------------------------------ one data, any encoding


def _scene(tmp_path: Path, k: np.ndarray, n_db: np.ndarray) -> dict[str, dict[str, Path]]:
    """The same NDVI (k/100 − 1, k integer) and σ⁰ (10^(0.1·n), n integer dB) in every accepted encoding."""
    grid = {"crs": "EPSG:32631", "transform": Affine(10, 0, 500_000, 0, -10, 4_800_000), "width": k.shape[1],
            "height": k.shape[0], "count": 1}
    nd = {"float": write(tmp_path / "ndvi_f.tif", (k * 0.01 - 1.0).astype(np.float32), grid, nodata=None),
          "plotsm_uint8": write(tmp_path / "ndvi_u8.tif", k.astype(np.uint8), grid, nodata=255,
                                tags={"NDVI_ENCODING": "round((ndvi+1)*100), 255 nodata"}),
          "gdal_scale": write(tmp_path / "ndvi_s.tif", k.astype(np.int16), grid, nodata=-1, scale=0.01, offset=-1.0)}
    vv = {"linear": write(tmp_path / "vv_lin.tif", (10.0 ** (n_db * 0.1)).astype(np.float32), grid),
          "db": write(tmp_path / "vv_db.tif", n_db.astype(np.float32), grid, tags={"UNIT": "dB"})}
    theta = write(tmp_path / "theta.tif", np.full(k.shape, 36.5, np.float32), grid)
    return {"ndvi": nd, "vv": vv, "theta": {"deg": theta}}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_every_accepted_encoding_stores_identical_results(tmp_path_factory, seed):
    """NDVI as float32, plotsm's uint8 and int16 with GDAL scale/offset; σ⁰ linear and dB (tagged): the stored
    observations and moisture are identical (bit for bit) for every combination."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    shape = (40, 60)
    k = rng.integers(100, 176, shape)  # NDVI 0.00–0.75
    n_db = rng.integers(-20, -4, shape)
    tmp = tmp_path_factory.mktemp("encodings")
    files = _scene(tmp, k, n_db)
    boxes = [shapely.box(500_000 + 100 * i, 4_800_000 - 100 * (j + 1), 500_000 + 100 * (i + 1), 4_800_000 - 100 * j)
             for i in range(6) for j in range(4)]
    gpd.GeoDataFrame({"pid": range(len(boxes))}, geometry=boxes, crs="EPSG:32631").to_file(tmp / "p.gpkg")
    results = []
    for nd_name, nd in files["ndvi"].items():
        for vv_name, vv in files["vv"].items():
            out = tmp / f"out_{nd_name}_{vv_name}"
            code, _, err = plotsm("-q", "run", "--parcels", tmp / "p.gpkg", "--vv", vv, "--theta",
                                  files["theta"]["deg"], "--ndvi", nd, "--date", "2024-04-06T17:49:12Z", "--out", out)
            assert code == 0, err
            results.append(stored(out))
    for other in results[1:]:
        pd.testing.assert_frame_equal(other, results[0], check_exact=True)
    assert (results[0]["status"] == "ok").sum() >= 20


# ---------------------------------------------------------------------------------------- the same rasters


def test_one_acquisition_one_id_whatever_the_entry_point(tmp_path):
    """σ⁰ and θ written as `plotsm s1 calibrate` writes them (tags ACQUISITION_START, PLATFORM, ORBIT_DIRECTION,
    RELATIVE_ORBIT): `run --vv --theta` (no --date needed) and `run --s1 FOLDER` store one acquisition under one
    id, with its platform and orbit; a --date that contradicts the tags is refused; the same σ⁰ under another
    date is refused by the store."""
    vv, vprof = read(VV)
    theta, tprof = read(THETA)
    tags = {"ACQUISITION_START": "2019-09-14T05:39:27.123456Z", "PLATFORM": "S1B", "ORBIT_DIRECTION": "descending",
            "RELATIVE_ORBIT": "22"}
    s1 = tmp_path / "s1"
    s1.mkdir()
    sig = write(s1 / "S1B_20190914T053927_D022_VV_sigma0.tif", vv, vprof, tags={**tags, "QUANTITY": "sigma0"})
    inc = write(s1 / "S1B_20190914T053927_D022_VV_theta.tif", theta, tprof,
                tags={**tags, "QUANTITY": "incidence_angle", "UNIT": "degree"})
    nd = tmp_path / "ndvi"
    nd.mkdir()
    (nd / "ndvi_2019-09.tif").write_bytes(NDVI.read_bytes())
    out = tmp_path / "out"
    code, _, err = plotsm("-q", "run", "--parcels", PARCELS, "--vv", sig, "--theta", inc, "--ndvi", NDVI,
                          "--out", out)
    assert code == 0, err
    code, stdout, err = plotsm("run", "--parcels", PARCELS, "--s1", s1, "--ndvi", nd, "--out", out)
    assert code == 0, err
    assert "20190914T053927_S1B skipped: already stored with the same inputs and settings" in stdout  # one id
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT acquisition_id, platform, orbit_direction, relative_orbit FROM acquisitions").fetchall()
    assert rows == [("20190914T053927_S1B", "S1B", "descending", 22)]
    code, _, err = plotsm("-q", "run", "--parcels", PARCELS, "--vv", sig, "--theta", inc, "--ndvi", NDVI,
                          "--date", "2019-09-26", "--out", out)
    assert code == 4
    assert "--date 2019-09-26 contradicts S1B_20190914T053927_D022_VV_sigma0.tif, which is of 2019-09-14T05:39:27Z" \
        in err
    plain = write(tmp_path / "vv_plain.tif", (vv * 1.02).astype(np.float32), vprof)  # no tags, no date in the name
    code, _, err = plotsm("-q", "run", "--parcels", PARCELS, "--vv", plain, "--theta", THETA, "--ndvi", NDVI,
                          "--date", "2019-09-26T05:39:27Z", "--out", out)
    assert code == 0, err
    copy = tmp_path / "vv_copy.tif"
    copy.write_bytes(plain.read_bytes())
    code, _, err = plotsm("-q", "run", "--parcels", PARCELS, "--vv", copy, "--theta", THETA, "--ndvi", NDVI,
                          "--date", "2019-10-08T05:39:27Z", "--out", out)
    assert code == 4
    assert "the store already holds its σ⁰ raster (vv_copy.tif) as 20190926T053927 (2019-09-26T05:39:27Z)" in err
    untimed = write(tmp_path / "vv_untimed.tif", (vv * 1.01).astype(np.float32), vprof)
    code, _, err = plotsm("-q", "run", "--parcels", PARCELS, "--vv", untimed, "--theta", THETA, "--ndvi", NDVI,
                          "--date", "2019-09-14T05:39:27Z", "--out", out)
    assert code == 4
    assert re.search(r"the store already holds an acquisition at the same time \(vv_untimed\.tif\) as "
                     r"20190914T053927_S1B \(2019-09-14T05:39:27Z\); one acquisition has one id, and this run names "
                     r"it 20190914T053927\. .*plotsm delete 20190914T053927_S1B", err), err
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM acquisitions").fetchone()[0] == 2


# -------------------------------------------------------------------------------------- files and exit codes


def _blocked(tmp_path: Path) -> Path:
    """A destination that cannot be created: its parent is a regular file (works as root too, unlike chmod)."""
    wall = tmp_path / "wall"
    wall.write_text("a file, not a folder")
    return wall / "sub"


def test_unwritable_destinations_exit_6_naming_the_path_in_every_command(tmp_path, reference):
    blocked = _blocked(tmp_path)
    ndvi_u8 = tmp_path / "NDVI_31PEM_20190915.tif"
    ndvi, profile = read(NDVI)
    write(ndvi_u8, ndvi, profile)
    s2 = tmp_path / "S2A_29RKH_20200219_0_L2A"
    s2.mkdir()
    for band in ("b04", "b08", "scl"):
        (s2 / f"{band.upper()}.tif").write_bytes((DATA / f"s2_29rkh_{band}.tif").read_bytes())
    (s2 / "S2A_29RKH_20200219_0_L2A.json").write_bytes((DATA / "s2_29rkh_stac_item.json").read_bytes())
    commands = {
        "run": ["run", "--parcels", PARCELS, "--vv", VV, "--theta", THETA, "--ndvi", NDVI, "--date", "2019-09-15",
                "--out", blocked],
        "export": ["export", "--out", reference.attrs.get("out", tmp_path), "--to", blocked / "m.parquet"],
        "s2 ndvi": ["s2", "ndvi", s2, "--out", blocked],
        "s2 composite": ["s2", "composite", ndvi_u8, "--out", blocked],
        "dem slope": ["dem", "slope", DATA / "dem_srtm_rome_30m.tif", "--out", blocked / "slope.tif"],
        "s1 calibrate": ["s1", "calibrate", tmp_path / "S1B.SAFE", "--out", blocked],
    }
    for name, args in commands.items():
        code, _, err = plotsm(*args)
        assert code == 6, (name, err)
        assert str(tmp_path / "wall") in err and "Traceback" not in err, (name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NDVI_31PEM_20190915.tif", "S2A_29RKH_20200219_0_L2A", "wall"]


def test_s2_composite_checks_every_input_before_writing(tmp_path):
    """One bad input among many: exit 4 naming it, and no monthly file written (it used to write four months
    before failing on the fifth)."""
    ndvi, profile = read(NDVI)
    paths = [write(tmp_path / f"NDVI_31PEM_2019{m:02d}15.tif", ndvi, profile) for m in range(3, 8)]
    bad = paths[-1]
    bad.write_bytes(bad.read_bytes()[:2000])  # truncated: the header survives, the pixels do not
    code, _, err = plotsm("s2", "composite", *paths, "--out", tmp_path / "monthly")
    assert code == 4 and bad.name in err
    assert not (tmp_path / "monthly").exists()


def test_stale_temporary_files_of_a_killed_writer_are_removed_at_the_next_start(tmp_path):
    """A temporary file of a dead process (or of an older plotsm, whose names carried no pid) is removed when the
    same file is written again; one of a live process is left alone."""
    import os

    from plotsm.atomic import clean_stale, temporary_name

    target = tmp_path / "slope.tif"
    live = temporary_name(target)  # this process: alive
    live.write_bytes(b"in progress")
    dead = Path(str(temporary_name(target)).replace(f"-{os.getpid()}-", "-4194303-"))  # above the pid range
    dead.write_bytes(b"left by a SIGKILL")
    legacy = tmp_path / ".slope.tif.k2j4h1x9.tmp"
    legacy.write_bytes(b"older plotsm")
    other = tmp_path / ".other.tif.k2j4h1x9.tmp"
    other.write_bytes(b"another file's temporary: not ours to judge")
    code, _, err = plotsm("dem", "slope", DATA / "dem_srtm_rome_30m.tif", "--out", target)
    assert code == 0, err
    assert live.exists() and not dead.exists() and not legacy.exists() and other.exists()
    assert clean_stale(tmp_path) == []  # the live one is still not stale


def test_quiet_prints_no_acquisition_lines_and_flags_show_no_type(tmp_path, capsys):
    code, stdout, err = run(tmp_path / "out")
    assert code == 0, err
    assert stdout == "" and err == ""
    code, stdout, _ = plotsm("run", "--help")
    assert code == 0 and "--force" in stdout and "<bool>" not in stdout


def test_overlapping_parcels_are_reported_under_the_centre_rule(tmp_path):
    """A segment given twice (the reported case: the first copy of each duplicate got 0 pixels, silently)."""
    import geopandas as gpd

    from plotsm.errors import ParcelsWarning

    gdf = gpd.read_file(PARCELS)
    biggest = gdf.loc[[gdf["nbPixels"].idxmax()]].assign(label=-1)
    doubled = pd.concat([gdf, biggest], ignore_index=True)
    doubled.to_file(tmp_path / "doubled.gpkg")
    n_px = int(biggest["nbPixels"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("always", ParcelsWarning)  # shown by the CLI, as a user sees it
        code, _, err = plotsm("-q", "run", "--parcels", tmp_path / "doubled.gpkg", "--vv", VV, "--theta", THETA,
                              "--ndvi", NDVI, "--date", "2019-09-15", "--out", tmp_path / "out")
    assert code == 0, err
    assert f"warning: 2 parcels overlap another (1 pair, {n_px * 100:,} m² in all; e.g. 13435 and -1 share " \
           f"{n_px * 100:,} m²): under --rule center each pixel goes to one parcel, the later one in the file, so " \
           "the other loses it. Fix the geometries or pass --rule coverage." in err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # coverage weights handle overlaps exactly: nothing to report
        code, _, err = plotsm("-q", "run", "--parcels", tmp_path / "doubled.gpkg", "--vv", VV, "--theta", THETA,
                              "--ndvi", NDVI, "--date", "2019-09-15", "--rule", "coverage", "--out", tmp_path / "cov")
    assert code == 0, err


def test_the_ndvi_gap_is_stored_per_acquisition(tmp_path, reference):
    """NDVI ndvi_201909 stands for the middle of September, 2019-09-16T00:00; the acquisition is of
    2019-09-15T05:40:00: 18 h 20 min apart = 0.76 day."""
    code, _, err = run(tmp_path / "out")
    assert code == 0, err
    with duckdb.connect(str(tmp_path / "out" / "plotsm.duckdb"), read_only=True) as con:
        assert con.execute("SELECT ndvi_gap_days FROM acquisitions").fetchone()[0] == 0.76


def test_s2_ndvi_uint8_output_is_decoded_as_ndvi(tmp_path):
    """`plotsm s2 ndvi --uint8` writes GDAL scale 0.01 / offset −1 and its tag; plotsm.raster (what `run` and
    `s2 composite` read through) decodes it to the float output within half a step (0.005)."""
    product = tmp_path / "S2A_29RKH_20200219_0_L2A"
    product.mkdir()
    for band in ("b04", "b08", "scl"):
        (product / f"{band.upper()}.tif").write_bytes((DATA / f"s2_29rkh_{band}.tif").read_bytes())
    (product / "S2A_29RKH_20200219_0_L2A.json").write_bytes((DATA / "s2_29rkh_stac_item.json").read_bytes())
    for flag, folder in (("", "float"), ("--uint8", "uint8")):
        code, _, err = plotsm("s2", "ndvi", product, "--out", tmp_path / folder, *([flag] if flag else []))
        assert code == 0, err
    coded = tmp_path / "uint8" / "NDVI_29RKH_20200219.tif"
    with rasterio.open(coded) as src:
        assert (src.scales, src.offsets, src.nodata, src.dtypes[0]) == ((0.01,), (-1.0,), 255.0, "uint8")
        raw = src.read(1)
    decoding = inspect_raster(coded, "ndvi")
    values, _ = decoding.decode(raw.copy())
    expected, _ = read(tmp_path / "float" / "NDVI_29RKH_20200219.tif")
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected.ravel()))
    np.testing.assert_allclose(values, expected.ravel(), atol=0.005 + 1e-7)
