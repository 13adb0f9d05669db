"""plotsm.sources.s1 geocoding and the GRD → σ⁰ / θ rasters, on real annotation and real GCPs.

- Terrain geocoding (sarsen) of the real S1B IW GRDH annotation (IPF 003.40, orbit, srgr polynomials,
  geolocation grid) over flat DEMs at the height of a geolocation grid point: the map point of that grid point
  must come back to its annotated (line, pixel), and its incidence angle to the annotated one.
- GCP geocoding of the real decimated S1A GRD measurement (real DNs, 210 real GCPs): map points of the GCPs land
  on their (row, col), the DN there is the bilinear DN of the four neighbours, and the whole image agrees with
  GDAL's own GCP warp.
- End to end: the real annotation with a synthetic measurement of the real size (DN a known function of line
  and pixel over the Rome DEM, 0 elsewhere), over the real SRTM DEM; σ⁰ at map pixels against values worked
  out from the DN formula and the LUTs; DN 0 → NaN; clipped negatives counted; zip = folder; bad products exit 4
  and leave nothing behind; the outputs go straight into ``plotsm run``.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from conftest import run_cli
from pyproj import Transformer
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import reproject

from plotsm.cli import main
from plotsm.errors import DataWarning, InputError
from plotsm.raster import Grid
from plotsm.sources.s1 import noise_lut, read_calibration, read_noise, sigma_nought_lut
from plotsm.sources.s1.geocode import (EllipsoidIncidence, GcpGeocoder, TerrainGeocoder,
                                       aligned_grid, utm_crs)
from plotsm.sources.s1.grd import position_lookup, calibrate_grd, output_stem, sample_power
from plotsm.sources.s1.product import open_grd_product, remove_stale_extractions

DATA = Path(__file__).parent / "data"
NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
STEM = "s1b-iw-grd-vv-20211223t051122-20211223t051147-030148-039993-001"
DEM = DATA / "dem_srtm_rome_30m.tif"
DECIMATED = DATA / "s1_decimated_iw_vv_cols0-319.tif"
N_LINES, N_SAMPLES = 16705, 26102  # imageInformation of the annotation
#: Image window holding synthetic DNs (the Rome DEM maps to lines 7470–8685, pixels 21641–22630).
LINES, PIXELS = (7168, 9216), (21504, 23040)
ZERO_LINES = (8000, 8100)       # DN 0 (no data) stripe
ONE_PIXELS = (22000, 22050)     # DN 1 stripe: DN² < noise → clipped to 0
GEOID = 48.0                    # EGM96 undulation used in these tests (m); its value does not matter here


def dn_of(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """The synthetic DN at integer image positions (same rule as the fixture writes)."""
    line, pixel = np.asarray(line), np.asarray(pixel)
    dn = 40 + (3 * line + 7 * pixel) % 300
    inside = (line >= LINES[0]) & (line < LINES[1]) & (pixel >= PIXELS[0]) & (pixel < PIXELS[1])
    dn = np.where(inside, dn, 0)
    dn = np.where(inside & (pixel >= ONE_PIXELS[0]) & (pixel < ONE_PIXELS[1]), 1, dn)
    return np.where((line >= ZERO_LINES[0]) & (line < ZERO_LINES[1]), 0, dn)


def build_safe(root: Path, measurement: bool = True, compress: str | None = "deflate") -> Path:
    """The SAFE folder; its measurement is tiled and sparse, deflate-compressed unless ``compress`` is None (real
    GRD measurements are uncompressed: 6 MB here, the synthetic window's tiles)."""
    safe = root / f"{NAME}.SAFE"
    (safe / "annotation" / "calibration").mkdir(parents=True)
    (safe / "manifest.safe").write_bytes(gzip.decompress((DATA / "s1_sarsen_manifest.safe.gz").read_bytes()))
    (safe / "annotation" / f"{STEM}.xml").write_bytes(
        gzip.decompress((DATA / "s1_sarsen_annotation_vv.xml.gz").read_bytes()))
    shutil.copy(DATA / "s1_sarsen_calibration_vv.xml", safe / "annotation" / "calibration" / f"calibration-{STEM}.xml")
    shutil.copy(DATA / "s1_sarsen_noise_vv.xml", safe / "annotation" / "calibration" / f"noise-{STEM}.xml")
    if measurement:
        (safe / "measurement").mkdir()
        rows = np.arange(*LINES)[:, None]
        cols = np.arange(*PIXELS)[None, :]
        with rasterio.open(safe / "measurement" / f"{STEM}.tiff", "w", driver="GTiff", width=N_SAMPLES,
                           height=N_LINES, count=1, dtype="uint16", tiled=True, blockxsize=512, blockysize=512,
                           compress=compress, sparse_ok=True) as dst:  # unwritten tiles read as DN 0
            dst.write(dn_of(rows, cols).astype(np.uint16), 1,
                      window=rasterio.windows.Window(PIXELS[0], LINES[0], PIXELS[1] - PIXELS[0], LINES[1] - LINES[0]))
    return safe


@pytest.fixture(scope="module")
def safe(tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return build_safe(tmp_path_factory.mktemp("s1"))


@pytest.fixture(scope="module")
def raw_safe(tmp_path_factory) -> Path:
    """The SAFE folder with an uncompressed measurement, as real GRD products have."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return build_safe(tmp_path_factory.mktemp("s1raw"), compress=None)


@pytest.fixture(scope="module")
def outputs(safe, tmp_path_factory):
    out = tmp_path_factory.mktemp("s1out")
    with pytest.warns(DataWarning, match="clipped to 0"):
        result = calibrate_grd(safe, out, dem=DEM, geoid_offset_m=GEOID)
    return result


# ----------------------------------------------------------------------------------------------- product


def test_product_metadata(safe):
    with open_grd_product(safe) as p:
        assert (p.platform, p.mode, p.polarisation) == ("S1B", "IW", "VV")
        assert p.orbit_direction == "descending" and p.relative_orbit == 22 and p.absolute_orbit == 30148
        assert p.processor_version == "003.40"
        assert str(p.start_time) == "2021-12-23T05:11:22.594441"
        assert (p.n_lines, p.n_samples, p.range_pixel_spacing_m) == (N_LINES, N_SAMPLES, 10.0)
        assert p.azimuth_time_interval_s == pytest.approx(1.496569996245720e-03, rel=1e-15)
        assert output_stem(p) == "S1B_20211223T051122_D022_VV"


def test_product_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        with open_grd_product(tmp_path / "nothing.SAFE"):
            pass
    safe = build_safe(tmp_path, measurement=False)
    with pytest.raises(InputError, match=r"no measurement/.*download it again"):
        with open_grd_product(safe):
            pass
    with pytest.raises(InputError, match="no VH polarisation|no annotation/s1"):
        with open_grd_product(safe, polarisation="VH", require_measurement=False):
            pass


# ------------------------------------------------------------------------------------------ geocoding


def _flat_dem(path: Path, lon: float, lat: float, height: float) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=100, height=100, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.001, 0, lon - 0.05, 0, -0.001, lat + 0.05)) as dst:
        dst.write(np.full((1, 100, 100), height, dtype="float32"))
    return path


@pytest.mark.parametrize("i, j", [(1, 1), (3, 10), (5, 5), (8, 19), (4, 15)])
def test_terrain_geocoding_returns_to_the_geolocation_grid(safe, tmp_path, i, j):
    """A flat DEM at the height of geolocation grid point (i, j): the map pixel centred on its lat/lon maps back
    to the annotated (line, pixel) within 0.3 pixel (3 m), with the annotated incidence angle."""
    with open_grd_product(safe) as p:
        gcp = p.open_group("gcp")
        lat, lon = float(gcp.latitude[i, j]), float(gcp.longitude[i, j])
        dem = _flat_dem(tmp_path / "flat.tif", lon, lat, float(gcp.height[i, j]))
        crs = utm_crs(lon, lat)
        x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
        grid = Grid(crs=crs.to_wkt(), transform=Affine(10, 0, x - 325, 0, -10, y + 325), width=65, height=65)
        geo = TerrainGeocoder(p, dem, geoid_offset_m=0.0)
        pos = geo.positions(grid)
        full = TerrainGeocoder(p, dem, geoid_offset_m=0.0, seed_step=None).positions(grid)
        theta = EllipsoidIncidence(p)(pos)
    assert abs(pos.lines[32, 32] - int(gcp.line[i])) < 0.3
    assert abs(pos.pixels[32, 32] - int(gcp.pixel[j])) < 0.3
    assert theta[32, 32] == pytest.approx(float(gcp.incidenceAngle[i, j]), abs=2e-3)
    # the orbit-time seed is an optimisation only
    np.testing.assert_allclose(pos.lines, full.lines, atol=1e-3)
    np.testing.assert_allclose(pos.pixels, full.pixels, atol=1e-3)


def test_geoid_heights_without_grid_warn(safe):
    """The SRTM DEM is in EGM96 heights; PROJ has no geoid grid here, so plotsm says so."""
    with open_grd_product(safe) as p, pytest.warns(DataWarning, match="--geoid-offset"):
        TerrainGeocoder(p, DEM)


def _decimated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(DECIMATED) as src:
            return src.read(1).astype(np.float64), src.gcps[0], src.gcps[1], src
    

def test_gcp_geocoding_lands_on_the_gcps():
    """Each real GCP's map point, geocoded alone, maps to its (row, col); the DN there is the bilinear DN² of its
    four neighbours (worked out here by hand)."""
    dn, gcps, gcp_crs, src = _decimated()
    geo = GcpGeocoder(gcps, gcp_crs, n_lines=dn.shape[0], n_samples=dn.shape[1])
    crs = utm_crs(77.0, 10.0)
    to_utm = Transformer.from_crs(gcp_crs, crs, always_xy=True)
    checked = n_inside = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        image = rasterio.open(DECIMATED)
    with image:
        for g in gcps:
            x, y = to_utm.transform(g.x, g.y)
            grid = Grid(crs=crs.to_wkt(), transform=Affine(200, 0, x - 100, 0, -200, y + 100), width=1, height=1)
            pos = geo.positions(grid)
            inside = 0 <= g.row <= dn.shape[0] - 1 and 0 <= g.col <= dn.shape[1] - 1
            if not inside:
                assert np.isnan(pos.lines[0, 0])
                continue
            n_inside += 1
            assert pos.lines[0, 0] == pytest.approx(g.row, abs=1e-6)
            assert pos.pixels[0, 0] == pytest.approx(g.col, abs=1e-6)
            r0, c0 = min(int(g.row), dn.shape[0] - 2), min(int(g.col), dn.shape[1] - 2)
            fr, fc = g.row - r0, g.col - c0
            p = dn[r0:r0 + 2, c0:c0 + 2] ** 2
            if (dn[r0:r0 + 2, c0:c0 + 2] == 0).any():
                continue
            expected = (p[0, 0] * (1 - fr) * (1 - fc) + p[0, 1] * (1 - fr) * fc + p[1, 0] * fr * (1 - fc)
                        + p[1, 1] * fr * fc)
            assert sample_power(image, pos)[0, 0] == pytest.approx(expected, rel=1e-9)
            checked += 1
    # the crop keeps columns 0–319: 5 of the 21 GCP columns (0, 64, …, 256); 9 of the 10 GCP rows lie inside
    # the 837 lines (the last one is at row 837, the bottom edge)
    assert (len(gcps), n_inside, checked) == (210, 45, 45)


def test_gcp_geocoding_agrees_with_gdal_warp():
    """The DN² image geocoded by plotsm equals GDAL's GCP (thin-plate spline) warp of it, once GDAL's corner
    convention is undone (GCP + 0.5): median difference < 0.5 %."""
    dn, gcps, gcp_crs, _ = _decimated()
    crs = utm_crs(77.0, 10.0)
    xs, ys = Transformer.from_crs(gcp_crs, crs, always_xy=True).transform([g.x for g in gcps], [g.y for g in gcps])
    grid = aligned_grid(crs, 200.0, (min(xs), min(ys), max(xs), max(ys)))
    geo = GcpGeocoder(gcps, gcp_crs, n_lines=dn.shape[0], n_samples=dn.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(DECIMATED) as image:
            ours = sample_power(image, geo.positions(grid))
    shifted = [GroundControlPoint(row=g.row + 0.5, col=g.col + 0.5, x=g.x, y=g.y, z=g.z) for g in gcps]
    power = np.where(dn > 0, dn * dn, np.nan).astype(np.float32)
    gdal = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    reproject(power, gdal, gcps=shifted, src_crs=gcp_crs, src_nodata=np.nan, dst_transform=grid.transform,
              dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear, SRC_METHOD="GCP_TPS")
    both = np.isfinite(ours) & np.isfinite(gdal)
    assert both.sum() > 0.9 * np.isfinite(ours).sum() > 10_000
    rel = np.abs(ours[both] - gdal[both]) / gdal[both]
    assert np.median(rel) < 5e-3


# -------------------------------------------------------------------------------------------- end to end


def test_outputs_are_tagged_float32_cogs(outputs):
    assert outputs.sigma0.name == "S1B_20211223T051122_D022_VV_sigma0.tif"
    assert outputs.theta.name == "S1B_20211223T051122_D022_VV_theta.tif"
    for path, quantity in ((outputs.sigma0, "sigma0"), (outputs.theta, "incidence_angle")):
        with rasterio.open(path) as src:
            assert src.dtypes == ("float32",) and np.isnan(src.nodata)
            assert src.crs.to_epsg() == 32633 and src.res == (10.0, 10.0)
            assert src.profile["tiled"] and not src.overviews(1)  # on request only (--overviews)
            structure = src.tags(ns="IMAGE_STRUCTURE")
            assert structure.get("LAYOUT") == "COG"  # GDAL's COG driver wrote it
            tags = src.tags()
        if quantity == "sigma0":  # lossless (bench/codecs.py)
            assert (structure.get("COMPRESSION"), structure.get("PREDICTOR")) == ("ZSTD", "3")
        else:  # within 0.005° (bench/codecs.py)
            assert structure.get("COMPRESSION") == "LERC_ZSTD" and tags["THETA_MAX_ERROR_DEG"] == "0.005"
        assert tags["QUANTITY"] == quantity
        assert tags["ACQUISITION_START"] == "2021-12-23T05:11:22.594441Z"
        assert (tags["PLATFORM"], tags["ORBIT_DIRECTION"], tags["RELATIVE_ORBIT"]) == ("S1B", "descending", "22")
        assert tags["PROCESSOR_VERSION"] == "003.40"
        assert (tags["INCIDENCE"], tags["GEOCODING"], tags["NOISE_REMOVED"]) == ("ellipsoid", "terrain", "true")
        assert int(tags["N_CLIPPED_NEGATIVE"]) == outputs.n_clipped > 0
        assert (tags["GEOCODING_METHOD"], tags["GEOCODING_LOOKUP_STEP_PX"]) == ("lookup", "32")
        assert 0 < float(tags["GEOCODING_LOOKUP_CHECK_PX"]) < 0.025


def test_sigma0_against_the_dn_formula(safe, outputs):
    """σ⁰ at map pixels = (bilinear DN² − N) / A² at the pixel's (line, pixel), DN² from the DN formula."""
    with rasterio.open(outputs.sigma0) as src:
        sigma0 = src.read(1)
    with rasterio.open(outputs.theta) as src:
        theta = src.read(1)
    with open_grd_product(safe) as p:
        geo = TerrainGeocoder(p, DEM, geoid_offset_m=GEOID)
        lookup = position_lookup(geo, outputs.grid)
        pos, theta_expected = lookup.positions(0, 0, geo.heights(outputs.grid))  # the product's positions
        exact = geo.positions(outputs.grid)
        theta_exact = EllipsoidIncidence(p)(exact)
    lut, noise = read_calibration(DATA / "s1_sarsen_calibration_vv.xml"), read_noise(DATA / "s1_sarsen_noise_vv.xml")
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(np.isfinite(sigma0) & (sigma0 > 0))
    pick = rng.choice(len(rows), 200, replace=False)
    for r, c in zip(rows[pick], cols[pick]):
        line, pixel = pos.lines[r, c], pos.pixels[r, c]
        l0, p0 = int(np.floor(line)), int(np.floor(pixel))
        fl, fp = line - l0, pixel - p0
        d2 = dn_of(np.array([[l0, l0], [l0 + 1, l0 + 1]]), np.array([[p0, p0 + 1], [p0, p0 + 1]])).astype(float) ** 2
        power = (d2[0, 0] * (1 - fl) * (1 - fp) + d2[0, 1] * (1 - fl) * fp + d2[1, 0] * fl * (1 - fp)
                 + d2[1, 1] * fl * fp)
        expected = (power - noise_lut(noise, line, pixel)) / sigma_nought_lut(lut, line, pixel) ** 2
        # the product's positions (one lookup for the whole grid, evaluated per 1024² block): σ⁰ differs from the
        # formula by the LUTs' change within one image pixel only (calibrate.py's module docstring)
        assert sigma0[r, c] == pytest.approx(float(expected), rel=1e-5)
    # θ is stored by LERC within 0.005°
    assert np.array_equal(np.isnan(theta), np.isnan(theta_expected))
    assert np.nanmax(np.abs(theta - theta_expected)) <= 0.005 + 1e-5
    # the lookup against the exact solve at every pixel: the same pixels imaged, positions within 0.05 pixel,
    # the incidence angle within 0.001°
    assert np.array_equal(np.isnan(pos.lines), np.isnan(exact.lines))
    assert np.nanmax(np.abs(pos.lines - exact.lines)) < 0.05
    assert np.nanmax(np.abs(pos.pixels - exact.pixels)) < 0.05
    assert np.nanmax(np.abs(theta_expected - theta_exact)) < 1e-3
    assert 35 < np.nanmin(theta) < np.nanmax(theta) < 46  # IW3 near the far edge of the swath


def test_no_data_and_clipping(safe, outputs):
    with rasterio.open(outputs.sigma0) as src:
        sigma0 = src.read(1)
    with open_grd_product(safe) as p:
        pos = TerrainGeocoder(p, DEM, geoid_offset_m=GEOID).positions(outputs.grid)
    in_zero = (pos.lines > ZERO_LINES[0] + 1) & (pos.lines < ZERO_LINES[1] - 2)
    near_zero = (pos.lines > ZERO_LINES[0] - 1) & (pos.lines < ZERO_LINES[1])  # a neighbour has DN 0
    in_one = ((pos.pixels > ONE_PIXELS[0] + 1) & (pos.pixels < ONE_PIXELS[1] - 2) & ~near_zero
              & (pos.lines > LINES[0]) & (pos.lines < LINES[1] - 1))
    assert in_zero.sum() > 1000 and np.isnan(sigma0[in_zero]).all()
    assert in_one.sum() > 1000 and (sigma0[in_one] == 0).all()
    assert outputs.n_clipped >= in_one.sum()
    assert outputs.n_valid == int(np.isfinite(sigma0).sum())


def test_zip_equals_folder(safe, outputs, tmp_path):
    archive = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{NAME}.SAFE/{f.relative_to(safe)}")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.warns(DataWarning, match="clipped to 0"):
        result = calibrate_grd(archive, out, dem=DEM, geoid_offset_m=GEOID, grid=outputs.sigma0)
    for a, b in ((result.sigma0, outputs.sigma0), (result.theta, outputs.theta)):
        with rasterio.open(a) as x, rasterio.open(b) as y:
            np.testing.assert_array_equal(x.read(1), y.read(1))


def build_cog_safe(safe: Path, root: Path) -> Path:
    """The COG_SAFE product CDSE serves for ``safe`` (its STAC items point at these), made as CDSE's converter
    makes it [eu-cdse/utilities GRD2COG.sh v1.00]: the measurement copied by GDAL's COG driver (ZSTD, 1024 px
    blocks, RMS overviews, nodata 0) with the gzipped original TIFF footer and header appended after the COG; the
    annotation, calibration and noise files renamed ``…-cog.xml``; the manifest's hrefs pointed at the new
    names; the folder renamed ``…_<CRC-16>_COG.SAFE``."""
    cog = root / f"{NAME[:-5]}_1A2B_COG.SAFE"
    shutil.copytree(safe, cog)
    tiff = cog / "measurement" / f"{STEM}.tiff"
    with rasterio.open(tiff, "r+") as src:
        src.nodata = 0
    rasterio.shutil.copy(tiff, tiff.with_name(f"{STEM}-cog.tiff"), driver="COG", COMPRESS="ZSTD", BLOCKSIZE=1024,
                         OVERVIEW_COUNT=2, OVERVIEW_RESAMPLING="RMS", BIGTIFF="NO")
    with open(tiff.with_name(f"{STEM}-cog.tiff"), "ab") as f:
        f.write(gzip.compress(b"original TIFF footer") + gzip.compress(b"original TIFF header"))
    tiff.unlink()
    for xml in sorted((cog / "annotation").rglob("*.xml")):
        xml.rename(xml.with_name(f"{xml.stem}-cog.xml"))
    manifest = cog / "manifest.safe"
    text, n = re.subn(r'href="(\./(?:measurement|annotation)/[^"]*-vv-[^"]*?)\.(tiff|xml)"', r'href="\1-cog.\2"',
                      manifest.read_text(encoding="utf-8"))
    assert n == 5  # measurement, annotation, calibration, noise, rfi of VV
    manifest.write_text(text, encoding="utf-8")
    return cog


def test_cog_safe_equals_the_classic_safe(safe, outputs, tmp_path):
    """CDSE's STAC lists S1 GRD as COG_SAFE products: `s1 calibrate` reads that layout (folder and stored zip, as
    CDSE zips it) into the same σ⁰ and θ as the classic SAFE, pixel for pixel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        cog = build_cog_safe(safe, tmp_path)
    with open_grd_product(cog) as p:
        assert p.name == f"{NAME[:-5]}_1A2B_COG" and p.measurement.endswith(f"measurement/{STEM}-cog.tiff")
        assert (p.annotation.name, p.calibration.name, p.noise.name) == (
            f"{STEM}-cog.xml", f"calibration-{STEM}-cog.xml", f"noise-{STEM}-cog.xml")
        assert (p.platform, p.orbit_direction, p.relative_orbit, p.processor_version) == ("S1B", "descending", 22,
                                                                                          "003.40")
        assert output_stem(p) == "S1B_20211223T051122_D022_VV"
    archive = tmp_path / f"{cog.stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # `zip -0rm`, as the converter does
        for f in sorted(cog.rglob("*")):
            if f.is_file():
                zf.write(f, f"{cog.name}/{f.relative_to(cog).as_posix()}")
    for source in (cog, archive):
        out = tmp_path / f"out_{source.suffix.lstrip('.')}"
        out.mkdir()
        with pytest.warns(DataWarning, match="clipped to 0"):
            result = calibrate_grd(source, out, dem=DEM, geoid_offset_m=GEOID, grid=outputs.sigma0)
        for a, b in ((result.sigma0, outputs.sigma0), (result.theta, outputs.theta)):
            with rasterio.open(a) as x, rasterio.open(b) as y:
                got, expected = x.read(1), y.read(1)
                np.testing.assert_array_equal(got, expected)
                assert np.isfinite(got).sum() > 800_000


# ------------------------------------------------------------------------------------------------- CLI


def cli(*args) -> subprocess.CompletedProcess[str]:
    """`plotsm ARGS` in this process: exit code, stdout and stderr as a subprocess gives them."""
    return run_cli(*args)


def test_cli_truncated_zip_exits_4_and_writes_nothing(safe, tmp_path):
    archive = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(safe / "manifest.safe", f"{NAME}.SAFE/manifest.safe")
        zf.write(next((safe / "annotation").glob("*.xml")), f"{NAME}.SAFE/annotation/{STEM}.xml")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    res = cli("s1", "calibrate", archive, "--dem", DEM, "--out", out)
    assert res.returncode == 4, res.stderr
    assert "truncated or corrupt" in res.stderr and archive.name in res.stderr
    assert not out.exists()  # the output folder is created only once the product is read and verified


def _zip_safe(safe: Path, archive: Path, compression: int) -> Path:
    with zipfile.ZipFile(archive, "w", compression) as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{NAME}.SAFE/{f.relative_to(safe).as_posix()}")
    return archive


def _dead_pid() -> int:
    """The pid of a process that has run and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
@pytest.mark.parametrize("suffix", [f"measurement/{STEM}.tiff", f"annotation/{STEM}.xml"],
                         ids=["measurement", "annotation"])
def test_cli_corrupted_member_exits_4_and_writes_nothing(corrupt, raw_safe, tmp_path, monkeypatch, capsys, suffix,
                                                         compression):
    """One flipped byte in the measurement or in the annotation (extracted): exit 4 naming archive!member; no σ⁰
    or θ file, no temporary folder left, and the stale extraction folder of a dead run removed on the way. The
    measurement is uncompressed, as in real products: GDAL's /vsizip/, which checks no CRC, would read the byte
    as a wrong DN and write a σ⁰ with exit 0."""
    temp = tmp_path / "tmp"
    (temp / f"plotsm-s1-{_dead_pid()}-x1y2z3" / f"{NAME}.SAFE").mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    archive = _zip_safe(raw_safe, tmp_path / f"{NAME}.zip", compression)
    member = corrupt(archive, suffix)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["s1", "calibrate", str(archive), "--dem", str(DEM), "--geoid-offset", str(GEOID), "--out", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 4, err
    assert re.search(rf"error: \S+\.zip!{re.escape(member)}: (CRC-32 mismatch|undecodable compressed data|truncated)"
                     r".*re-download it \(compare its size or checksum", err), err
    assert not out.exists()  # --out is created only once the product is read and verified
    assert os.listdir(temp) == []


def test_zip_extraction_folder_carries_the_pid(safe, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    archive = _zip_safe(safe, tmp_path / f"{NAME}.zip", zipfile.ZIP_STORED)
    with open_grd_product(archive) as product:
        assert product.safe_dir.parent.parent == tmp_path / "tmp"
        assert product.safe_dir.parent.name.startswith(f"plotsm-s1-{os.getpid()}-")
        assert product.measurement is not None and product.measurement.endswith(f"measurement/{STEM}.tiff")
    assert os.listdir(tmp_path / "tmp") == []


def test_stale_extractions_of_dead_processes_are_removed(tmp_path):
    """Dead pid: removed. Kept: this process, pid 1 (alive; another user's process when not root, which
    os.kill reports as PermissionError), names without a pid (older plotsm), files, and other prefixes."""
    dead = tmp_path / f"plotsm-s1-{_dead_pid()}-abc123"
    kept = [tmp_path / f"plotsm-s1-{os.getpid()}-def456", tmp_path / "plotsm-s1-1-ghi789",
            tmp_path / "plotsm-s1-k2l3m4n5", tmp_path / "plotsm-s2-99999999-x"]
    for folder in (dead, *kept):
        (folder / "annotation").mkdir(parents=True)
        (folder / "annotation" / "a.xml").write_text("<a/>", encoding="utf-8")
    (tmp_path / "plotsm-s1-999999999-file").write_text("", encoding="utf-8")
    assert remove_stale_extractions(tmp_path) == [dead]
    assert not dead.exists() and all(folder.is_dir() for folder in kept)
    assert (tmp_path / "plotsm-s1-999999999-file").is_file()
    assert remove_stale_extractions(tmp_path / "missing") == []


def test_cli_missing_measurement_and_crsless_dem_exit_4(tmp_path):
    safe = build_safe(tmp_path / "p", measurement=False)
    res = cli("s1", "calibrate", safe, "--dem", DEM, "--out", tmp_path / "o1")
    assert res.returncode == 4 and "no measurement/" in res.stderr
    with rasterio.open(DEM) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs")
    nocrs = tmp_path / "nocrs.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(nocrs, "w", **profile) as dst:
            dst.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        full = build_safe(tmp_path / "q")
    res = cli("s1", "calibrate", full, "--dem", nocrs, "--out", tmp_path / "o2")
    assert res.returncode == 4 and "no CRS" in res.stderr and "nocrs.tif" in res.stderr
    assert not list((tmp_path / "o2").glob("*"))


def test_cli_outputs_go_into_run(safe, outputs, tmp_path):
    """`plotsm s1 calibrate` → `plotsm run`: the σ⁰ and θ rasters are used as they are."""
    import duckdb
    import geopandas as gpd
    from shapely.geometry import box

    out = tmp_path / "s1"
    res = cli("s1", "calibrate", safe, "--dem", DEM, "--geoid-offset", GEOID, "--out", out)
    assert res.returncode == 0, res.stderr
    sigma0 = out / outputs.sigma0.name
    theta = out / outputs.theta.name
    with rasterio.open(sigma0) as src:
        profile = src.profile
        left, top = src.transform.c, src.transform.f
    ndvi = tmp_path / "ndvi.tif"
    profile.update(dtype="float32", nodata=None)
    with rasterio.open(ndvi, "w", **profile) as dst:
        dst.write(np.full((1, profile["height"], profile["width"]), 0.3, dtype="float32"))
    parcels = gpd.GeoDataFrame({"pid": [1, 2, 3]}, geometry=[
        box(left + 1000 + k * 1500, top - 6000, left + 2000 + k * 1500, top - 5000) for k in range(3)],
        crs=profile["crs"])
    parcels.to_file(tmp_path / "parcels.gpkg")
    res = cli("run", "--parcels", tmp_path / "parcels.gpkg", "--vv", sigma0, "--theta", theta, "--ndvi", ndvi,
              "--date", "2021-12-23T05:11:22Z", "--out", tmp_path / "run")
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(str(tmp_path / "run" / "plotsm.duckdb"), read_only=True)
    n = con.execute("select count(*) from moisture").fetchone()[0]
    assert n == 3


def test_ground_range_equals_xarray_sentinel(safe):
    """plotsm's numpy srgr conversion = xarray-sentinel's slant_range_time_to_ground_range."""
    import xarray as xr
    from xarray_sentinel import slant_range_time_to_ground_range

    with open_grd_product(safe) as p:
        geo = TerrainGeocoder(p, DEM, geoid_offset_m=GEOID)
        conversion = p.open_group("coordinate_conversion")
        rng = np.random.default_rng(1)
        seconds = rng.uniform(0, (N_LINES - 1) * p.azimuth_time_interval_s, 500)
        srt = rng.uniform(5.34e-3, 6.41e-3, 500)
        times = p.first_line_time + (seconds * 1e9).astype("timedelta64[ns]")
        ref = slant_range_time_to_ground_range(xr.DataArray(times, dims="i"), xr.DataArray(srt, dims="i"), conversion)
    np.testing.assert_allclose(geo.ground_range(seconds, srt), ref.values, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------- DEM without nodata tag


def _voided_dem(path: Path) -> Path:
    """The Rome SRTM DEM without its nodata tag and with a 40×40 px void of zeros (rows and columns 160–199:
    12.4944–12.5056 E, 41.9944–42.0056 N), as SRTM crops exported with 0 in the voids look."""
    with rasterio.open(DEM) as src:
        profile, z = src.profile, src.read(1)
    z[160:200, 160:200] = 0
    profile.update(nodata=None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)
    return path


def _void_grid() -> Grid:
    """A 10 m UTM 33N grid of 200×200 px centred on the void (12.5 E, 42.0 N)."""
    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(12.5, 42.0)
    return Grid(crs="EPSG:32633", transform=Affine(10, 0, round(x) - 1000, 0, -10, round(y) + 1000), width=200,
                height=200)


def test_terrain_geocoder_dem_voids(safe, tmp_path):
    """Zeros in a DEM without nodata tag: warned (1,600 of 129,600 px = 1.2 %); with dem_nodata=0 the map
    pixels over them have no height and no image position, never a 0 m height."""
    voided = _voided_dem(tmp_path / "voided.tif")
    with rasterio.open(DEM) as src:
        lowest = float(src.read(1).min()) + GEOID  # lowest real height of the DEM (5 m) + the geoid offset
    grid = _void_grid()
    with open_grd_product(safe) as p:
        with pytest.warns(DataWarning, match=r"voided\.tif: no nodata tag, and 1\.2 % of the pixels \(1,600 of "
                                             r"129,600\) are exactly 0, .*at 0 m.* Pass --dem-nodata 0"):
            as_heights = TerrainGeocoder(p, voided, geoid_offset_m=GEOID)
        masked = TerrainGeocoder(p, voided, geoid_offset_m=GEOID, dem_nodata=0)
        reference = TerrainGeocoder(p, DEM, geoid_offset_m=GEOID)
        h0, h1, ref = as_heights.heights(grid), masked.heights(grid), reference.heights(grid)
        pos0, pos1, pos_ref = as_heights.positions(grid), masked.positions(grid), reference.positions(grid)
    # the void spans ±460 m east-west and ±617 m north-south of the centre: no data over its core
    assert h0[100, 100] == GEOID  # as before: a 0 m height
    assert np.isnan(h1[50:150, 65:135]).all() and np.isfinite(ref).all()
    assert np.nanmin(h1) >= lowest - 1e-9 and h0.min() == GEOID  # no 0 m height leaks into the interpolation
    far = ~maximum_filter_3(np.isnan(h1), 7)  # 30 m beyond the void's influence: the DEM itself
    np.testing.assert_allclose(h1[far], ref[far], rtol=0, atol=1e-9)
    assert far.sum() > 25_000
    # image positions: none over the void, the reference's elsewhere (within 0.02 px = 0.2 m: positions() seeds
    # its Newton iterations on a 16-px lattice where no-data heights stand in as 0 m, which shifts the converged
    # positions of some pixels near the void by up to 0.012 px)
    np.testing.assert_array_equal(np.isnan(pos1.lines), np.isnan(h1))
    np.testing.assert_allclose(pos1.lines[far], pos_ref.lines[far], atol=0.02)
    np.testing.assert_allclose(pos1.pixels[far], pos_ref.pixels[far], atol=0.02)
    assert np.isfinite(pos0.lines).all()  # without the option the void is geocoded at 0 m


def maximum_filter_3(mask: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask, size=size, mode="nearest")


def test_cli_s1_calibrate_dem_nodata(safe, tmp_path):
    voided = _voided_dem(tmp_path / "voided.tif")
    grid = _void_grid()
    target = tmp_path / "grid.tif"
    with rasterio.open(target, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                       crs=grid.crs, transform=grid.transform) as dst:
        dst.write(np.zeros((1, grid.height, grid.width), dtype=np.uint8))
    res = cli("s1", "calibrate", safe, "--dem", voided, "--dem-nodata", "0", "--geoid-offset", GEOID,
              "--grid", target, "--out", tmp_path / "set")
    assert res.returncode == 0, res.stderr
    assert "no nodata tag" not in res.stderr
    with rasterio.open(next((tmp_path / "set").glob("*_sigma0.tif"))) as src:
        sigma0, tags = src.read(1), src.tags()
    assert np.isnan(sigma0[50:150, 65:135]).all() and np.isfinite(sigma0[:20, :20]).any()
    assert (tags["DEM_NODATA"], tags["DEM_NODATA_FROM"]) == ("0", "--dem-nodata")
    res = cli("s1", "calibrate", safe, "--dem", voided, "--geoid-offset", GEOID, "--grid", target,
              "--out", tmp_path / "warned")
    assert res.returncode == 0, res.stderr
    stderr = " ".join(res.stderr.split())  # one "warning:" line each, wrapped by the console
    assert "warning: " in stderr and "1.2 % of the pixels (1,600 of 129,600) are exactly 0" in stderr
    assert "warnings.warn" not in stderr and ".py:" not in stderr  # no Python source line
    res = cli("s1", "calibrate", safe, "--dem-nodata", "0", "--out", tmp_path / "nodem")
    assert res.returncode == 2 and "--dem-nodata applies to the heights of --dem" in res.stderr
