"""plotsm.sources.s2.product and `plotsm s2 ndvi PRODUCT --out DIR`: whole products in every supported layout
(ESA .SAFE folder and zip with real JP2 encoding, COG folder with its real STAC item, the real AWS 19UDP tile, Theia
L2A and L3A folders), NDVI checked at pixels worked out by hand from the band DNs, and bad products refused with
exit 4, a message naming the file, and nothing written.

The fake products reuse the real 29RKH crop of tests/data (L2A, baseline 02.14: ρ = DN / 10000). Their DNs at the
pixels checked, read directly (row, col): (0, 0) B4 3094 B8 3486; (100, 5) 3368 / 3840; (64, 64) 2286 / 2546;
(127, 127) 3142 / 3532; (10, 10) 3326 / 3913; (20, 20) 2492 / 2904; (127, 0) 3012 / 3480; the SCL cell (63, 63)
under (127, 127) is 10 (cirrus), the others are 5. NDVI = (ρ8 − ρ4) / (ρ8 + ρ4) with ρ = (DN + offset) / 10000.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from plotsm.cli import main
from plotsm.errors import InputError
from plotsm.sources import archive as archive_module
from plotsm.sources.archive import verify_zip_members
from plotsm.sources.s2.product import S2Product, resolve_s2_product, write_product_ndvi

DATA = Path(__file__).parent / "data"
B04, B08, SCL = DATA / "s2_29rkh_b04.tif", DATA / "s2_29rkh_b08.tif", DATA / "s2_29rkh_scl.tif"
STAC_ITEM = DATA / "s2_29rkh_stac_item.json"
AWS_19UDP = DATA / "s2_19udp_aws_tile"

#: (row, col) → expected NDVI with offset 0 (baselines < 04.00, Theia): (DN8 − DN4) / (DN8 + DN4)
BY_HAND_OFFSET_0 = {(0, 0): 392 / 6580, (100, 5): 472 / 7208, (64, 64): 260 / 4832}
#: the same with BOA_ADD_OFFSET −1000 (baseline ≥ 04.00): (DN8 − DN4) / (DN8 + DN4 − 2000)
BY_HAND_OFFSET_1000 = {(0, 0): 392 / 4580, (100, 5): 472 / 5208, (64, 64): 260 / 2832}


# ------------------------------------------------------------------------------------------------ builders


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), {"crs": src.crs, "transform": src.transform}


def _write(path: Path, data: np.ndarray, grid: dict, driver: str = "GTiff") -> Path:
    """A one-band raster; driver JP2OpenJPEG writes lossless JPEG 2000 (reversible 5/3 wavelet), as ESA's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"QUALITY": 100, "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {}
    with rasterio.open(path, "w", driver=driver, width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, **grid, **options) as dst:
        dst.write(data, 1)
    return path


def _jp2_copy(src: Path, dst: Path) -> Path:
    data, grid = _read(src)
    _write(dst, data, grid, "JP2OpenJPEG")
    assert np.array_equal(_read(dst)[0], data)  # lossless
    return dst


def _safe(root: Path, baseline: str = "0212", *, bands: tuple[str, ...] = ("B04", "B08", "SCL"),
          mtd_text: str | None = None) -> Path:
    """An ESA L2A .SAFE folder (PSD ≥ 14.2 names) holding the 29RKH DNs as real JP2 files."""
    safe = root / f"S2A_MSIL2A_20200219T112111_N{baseline}_R037_T29RKH_20200219T123947.SAFE"
    img = safe / "GRANULE" / "L2A_T29RKH_A024344_20200219T113105" / "IMG_DATA"
    safe.mkdir(parents=True)
    text = mtd_text if mtd_text is not None else (DATA / f"s2_mtd_msil2a_n{baseline}.xml").read_text("utf-8")
    (safe / "MTD_MSIL2A.xml").write_text(text, encoding="utf-8")
    sources = {"B04": (B04, "R10m", "10m"), "B08": (B08, "R10m", "10m"), "SCL": (SCL, "R20m", "20m")}
    for band in bands:
        src, folder, res = sources[band]
        _jp2_copy(src, img / folder / f"T29RKH_20200219T112111_{band}_{res}.jp2")
    return safe


def _zip(folder: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    archive = folder.parent / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", compression) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent).as_posix())
    shutil.rmtree(folder)
    return archive


def _cog(root: Path, **properties: object) -> Path:
    """The Earth Search layout: S2A_29RKH_20200219_0_L2A/{B04,B08,SCL}.tif + the real STAC item, edited."""
    folder = root / "S2A_29RKH_20200219_0_L2A"
    folder.mkdir(parents=True)
    for src, name in ((B04, "B04.tif"), (B08, "B08.tif"), (SCL, "SCL.tif")):
        shutil.copy(src, folder / name)
    item = json.loads(STAC_ITEM.read_text("utf-8"))
    item["properties"].update(properties)
    (folder / "S2A_29RKH_20200219_0_L2A.json").write_text(json.dumps(item), encoding="utf-8")
    return folder


def _theia_fre(src: Path) -> tuple[np.ndarray, dict]:
    """Theia int16 reflectance from an offset-0 L2A DN: FRE = round(ρ · 10000) = round(DN / 10000 · 10000) = DN,
    and −10000 where DN = 0 (no data)."""
    dn, grid = _read(src)
    return np.where(dn == 0, -10000, dn).astype(np.int16), grid


def _theia_l2a(root: Path, *, mg2: bool = True) -> Path:
    name = "SENTINEL2A_20200219-112111-000_L2A_T29RKH_C_V2-2"
    folder = root / name
    red, grid = _theia_fre(B04)
    nir, _ = _theia_fre(B08)
    _write(folder / f"{name}_FRE_B4.tif", red, grid)
    _write(folder / f"{name}_FRE_B8.tif", nir, grid)
    # CLM on the 10 m grid: non-zero (2, "all clouds except thin ones") where the SCL says cloud or cirrus
    classes, _ = _read(SCL)
    cloudy = np.isin(np.repeat(np.repeat(classes, 2, axis=0), 2, axis=1), [8, 9, 10])
    _write(folder / "MASKS" / f"{name}_CLM_R1.tif", np.where(cloudy, 2, 0).astype(np.uint8), grid)
    if mg2:
        # MG2: bit 0 (water) at (100, 5), masked; bit 4 (topographic shadow, 16) at (64, 64), kept
        flags = np.zeros(red.shape, dtype=np.uint8)
        flags[100, 5], flags[64, 64] = 1, 16
        _write(folder / "MASKS" / f"{name}_MG2_R1.tif", flags, grid)
    return folder


def _theia_l3a(root: Path) -> Path:
    name = "SENTINEL2X_20200215-000000-000_L3A_T29RKH_C_V1-2"
    folder = root / name
    red, grid = _theia_fre(B04)
    nir, _ = _theia_fre(B08)
    _write(folder / f"{name}_FRC_B4.tif", red, grid)
    _write(folder / f"{name}_FRC_B8.tif", nir, grid)
    # FLG (WASP FlagType): 4 land everywhere except 1 cloud, 3 water, 0 no data, 5 cloud shadow, 2 snow
    flg = np.full(red.shape, 4, dtype=np.uint8)
    flg[0, 0], flg[100, 5], flg[10, 10], flg[20, 20], flg[127, 0] = 1, 3, 0, 5, 2
    _write(folder / "MASKS" / f"{name}_FLG_R1.tif", flg, grid)
    return folder


def _ndvi_at(path: Path, *pixels: tuple[int, int]) -> list[float]:
    values, _ = _read(path)
    return [float(values[p]) for p in pixels]


# ------------------------------------------------------------------------------------------- ESA .SAFE


@pytest.mark.parametrize(("baseline", "expected"), [("0212", BY_HAND_OFFSET_0), ("0400", BY_HAND_OFFSET_1000)])
def test_safe_folder_ndvi_by_hand(tmp_path: Path, baseline: str, expected: dict) -> None:
    safe = _safe(tmp_path, baseline)
    product = resolve_s2_product(safe)
    assert (product.kind, product.layout, product.tile, str(product.date)) == ("esa_l2a", "safe", "29RKH",
                                                                               "2020-02-19")
    assert product.ndvi_name == "NDVI_29RKH_20200219.tif"
    assert product.metadata == str(safe / "MTD_MSIL2A.xml")
    assert product.red.endswith("R10m/T29RKH_20200219T112111_B04_10m.jp2")
    assert product.masks["scl"].endswith("R20m/T29RKH_20200219T112111_SCL_20m.jp2")
    out = write_product_ndvi(product, tmp_path / "ndvi")
    assert out == tmp_path / "ndvi" / "NDVI_29RKH_20200219.tif"
    assert os.listdir(tmp_path / "ndvi") == ["NDVI_29RKH_20200219.tif"]
    got = _ndvi_at(out, *expected, (127, 127))
    np.testing.assert_allclose(got[:3], list(expected.values()), atol=1e-6)
    assert np.isnan(got[3])  # under cirrus (SCL 10)


def test_zipped_safe_is_read_in_place(tmp_path: Path) -> None:
    folder_ndvi = write_product_ndvi(_safe(tmp_path / "a", "0400"), tmp_path / "from_folder")
    archive = _zip(_safe(tmp_path / "b", "0400"))
    product = resolve_s2_product(archive)
    assert product.red.startswith(f"/vsizip/{{{archive.resolve()}}}/S2A_MSIL2A_")
    assert product.metadata is not None and product.metadata.startswith(f"{archive}!")
    out = write_product_ndvi(archive, tmp_path / "from_zip")
    assert out.name == folder_ndvi.name == "NDVI_29RKH_20200219.tif"
    np.testing.assert_array_equal(_read(out)[0], _read(folder_ndvi)[0])
    np.testing.assert_allclose(_ndvi_at(out, (0, 0)), [392 / 4580], atol=1e-6)
    assert os.listdir(archive.parent) == [archive.name]  # read in place: nothing extracted


def test_safe_scl_at_60m_is_used_when_20m_is_missing(tmp_path: Path) -> None:
    safe = _safe(tmp_path, bands=("B04", "B08"))
    img = next(safe.glob("GRANULE/*/IMG_DATA"))
    _jp2_copy(SCL, img / "R60m" / "T29RKH_20200219T112111_SCL_60m.jp2")
    assert resolve_s2_product(safe).masks["scl"].endswith("_SCL_60m.jp2")


# ----------------------------------------------------------------------------------------------- COG


def test_cog_folder_with_real_stac_item(tmp_path: Path) -> None:
    folder = _cog(tmp_path)
    product = resolve_s2_product(folder)
    assert (product.kind, product.layout, product.tile, str(product.date)) == ("esa_l2a", "cog", "29RKH",
                                                                               "2020-02-19")
    assert product.offsets is not None and product.offsets["processing_baseline"] == "02.14"
    out = write_product_ndvi(product, tmp_path / "out", block_size=48)
    np.testing.assert_allclose(_ndvi_at(out, *BY_HAND_OFFSET_0), list(BY_HAND_OFFSET_0.values()), atol=1e-6)
    assert np.isnan(_ndvi_at(out, (127, 127))[0])


@pytest.mark.parametrize(("properties", "expected"), [
    ({"s2:processing_baseline": "05.10"}, 392 / 4580),
    ({"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}, 392 / 6580),
])
def test_cog_offset_follows_baseline_and_applied_flag(tmp_path: Path, properties: dict, expected: float) -> None:
    out = write_product_ndvi(_cog(tmp_path, **properties), tmp_path / "out")
    np.testing.assert_allclose(_ndvi_at(out, (0, 0)), [expected], atol=1e-6)


# ------------------------------------------------------------------------------------------ AWS (real)


def test_real_aws_tile_without_scl_is_refused() -> None:
    with pytest.raises(InputError, match=r"s2_19udp_aws_tile: AWS .* without its SCL .*\(R20m/SCL\.jp2 or "
                                         r"R60m/SCL\.jp2\)"):
        resolve_s2_product(AWS_19UDP)


def test_real_aws_tile_ndvi_by_hand(tmp_path: Path) -> None:
    tile = shutil.copytree(AWS_19UDP, tmp_path / "0")
    _, grid = _read(tile / "R10m" / "B04.jp2")
    # SCL at 1800 m (the 900 m bands decimated by 2): 4 (vegetation), 9 (cloud, high probability) in cell (30, 30)
    classes = np.full((61, 61), 4, dtype=np.uint8)
    classes[30, 30] = 9
    scl_grid = {"crs": grid["crs"], "transform": grid["transform"] @ rasterio.Affine.scale(2)}
    _write(tile / "R20m" / "SCL.jp2", classes, scl_grid, "JP2OpenJPEG")
    product = resolve_s2_product(tile)
    # tileInfo.json: productName …_N0001_… → baseline 00.01, offset 0; timestamp 2017-07-29; zone 19, U, DP
    assert (product.layout, product.tile, product.ndvi_name) == ("aws", "19UDP", "NDVI_19UDP_20170729.tif")
    assert product.offsets is not None and product.offsets["processing_baseline"] == "00.01"
    out = write_product_ndvi(product, tmp_path / "out")
    # real DNs (row, col): (100, 100) B4 786 B8 3644; (121, 121) 1434 / 2055; (10, 100) 6173 / 6920;
    # (0, 121) 1113 / 923; (60, 60) under the cloud; (60, 20) 0 / 0, outside the swath
    got = _ndvi_at(out, (100, 100), (121, 121), (10, 100), (0, 121), (60, 60), (60, 20))
    np.testing.assert_allclose(got[:4], [2858 / 4430, 621 / 3489, 747 / 13093, -190 / 2036], atol=1e-6)
    assert np.isnan(got[4]) and np.isnan(got[5])


# ------------------------------------------------------------------------------------------------ Theia


def test_theia_l2a_product_by_hand(tmp_path: Path) -> None:
    product = resolve_s2_product(_theia_l2a(tmp_path))
    assert (product.kind, product.layout, product.ndvi_name) == ("theia_l2a", "theia", "NDVI_29RKH_20200219.tif")
    assert set(product.masks) == {"clm", "mg2"}
    out = write_product_ndvi(product, tmp_path / "out")
    got = _ndvi_at(out, (0, 0), (64, 64), (100, 5), (127, 127))
    np.testing.assert_allclose(got[:2], [392 / 6580, 260 / 4832], atol=1e-6)  # (64, 64): MG2 bit 4 kept
    assert np.isnan(got[2]) and np.isnan(got[3])  # MG2 water; CLM under the cirrus


def test_theia_l3a_flags_by_hand(tmp_path: Path) -> None:
    product = resolve_s2_product(_theia_l3a(tmp_path))
    assert (product.kind, product.ndvi_name) == ("theia_l3a", "NDVI_29RKH_20200215.tif")  # central date
    out = write_product_ndvi(product, tmp_path / "out")
    values, _ = _read(out)
    # FLG 4 (land) kept, whatever the SCL of the L2A said: (127, 127) = (3532 − 3142) / (3532 + 3142)
    np.testing.assert_allclose([values[64, 64], values[127, 127]], [260 / 4832, 390 / 6674], atol=1e-6)
    for pixel in [(0, 0), (100, 5), (10, 10), (20, 20), (127, 0)]:  # FLG 1, 3, 0, 5, 2
        assert np.isnan(values[pixel]), pixel
    assert np.isnan(values).sum() == 5


def test_theia_missing_mask_is_named(tmp_path: Path) -> None:
    folder = _theia_l2a(tmp_path, mg2=False)
    with pytest.raises(InputError, match=r"Theia L2A product without its MG2 geophysical mask "
                                         r"\(MASKS/\*_MG2_R1\.tif\)"):
        resolve_s2_product(folder)


def test_zipped_theia_product(tmp_path: Path) -> None:
    archive = _zip(_theia_l3a(tmp_path))
    product = resolve_s2_product(archive)
    assert product.kind == "theia_l3a" and product.masks["flg"].startswith("/vsizip/{")
    np.testing.assert_allclose(_ndvi_at(write_product_ndvi(product, tmp_path / "out"), (64, 64)), [260 / 4832],
                               atol=1e-6)


# --------------------------------------------------------------------------------------- bad products


def test_two_products_in_one_folder_are_refused(tmp_path: Path) -> None:
    _theia_l2a(tmp_path / "both")
    shutil.copytree(tmp_path / "both" / "SENTINEL2A_20200219-112111-000_L2A_T29RKH_C_V2-2",
                    tmp_path / "both" / "SENTINEL2A_20200219-112111-000_L2A_T29RKH_C_V2-2 copy")
    with pytest.raises(InputError, match=r"several files match \*_FRE_B4\.tif"):
        resolve_s2_product(tmp_path / "both")


def test_stac_item_without_baseline_is_refused(tmp_path: Path) -> None:
    folder = _cog(tmp_path)
    item = folder / "S2A_29RKH_20200219_0_L2A.json"
    doc = json.loads(item.read_text("utf-8"))
    del doc["properties"]["s2:processing_baseline"]
    item.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match=r"S2A_29RKH_20200219_0_L2A\.json: no s2:processing_baseline"):
        resolve_s2_product(folder)


def _truncated_zip(tmp_path: Path) -> Path:
    archive = _zip(_safe(tmp_path / "src"))
    cut = tmp_path / archive.name
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # the first half of a real zip
    return cut


def _safe_without_b08(tmp_path: Path) -> Path:
    return _safe(tmp_path, bands=("B04", "SCL"))


def _safe_unknown_baseline(tmp_path: Path) -> Path:
    text = (DATA / "s2_mtd_msil2a_n0400.xml").read_text("utf-8")
    assert "<PROCESSING_BASELINE>04.00<" in text
    return _safe(tmp_path, "0400", mtd_text=text.replace("<PROCESSING_BASELINE>04.00<",
                                                         "<PROCESSING_BASELINE>99.xx<"))


def _cog_malformed_baseline(tmp_path: Path) -> Path:
    return _cog(tmp_path, **{"s2:processing_baseline": "N9999"})


def _zip_with_damaged_band(tmp_path: Path) -> Path:
    """A complete zip whose B08 member is the first half of its JP2 codestream: it opens, then fails to decode."""
    safe = _safe(tmp_path / "src")
    (b08,) = safe.rglob("*_B08_10m.jp2")
    b08.write_bytes(b08.read_bytes()[: b08.stat().st_size // 2])
    archive = _zip(safe)
    return archive


def _not_a_product(tmp_path: Path) -> Path:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello", encoding="utf-8")
    return tmp_path / "notes"


BAD_PRODUCTS = {
    "truncated zip": (_truncated_zip, r"S2A_MSIL2A_\S+\.SAFE\.zip: not a complete zip archive .* Re-download"),
    "missing B08": (_safe_without_b08, r"\.SAFE: ESA L2A \.SAFE product without its B08 band "
                                       r"\(GRANULE/\*/IMG_DATA/R10m/\*_B08_10m\.jp2\)"),
    "unknown baseline in MTD": (_safe_unknown_baseline, r"\.SAFE/MTD_MSIL2A\.xml: unknown processing baseline "
                                                        r"'99\.xx'"),
    "malformed baseline in STAC item": (_cog_malformed_baseline, r"S2A_29RKH_20200219_0_L2A\.json: unknown "
                                                                 r"processing baseline 'N9999'"),
    "damaged band in zip": (_zip_with_damaged_band, r"\.SAFE\.zip\}/\S+_B08_10m\.jp2: B08 band cannot be decoded "
                                                    r"\(.*\)\. The file is damaged or truncated; re-download"),
    "not a product": (_not_a_product, r"notes: not a recognised Sentinel-2 product"),
    "missing path": (lambda tmp: tmp / "S2B_MSIL2A_nothing.SAFE", r"nothing\.SAFE: product not found"),
}


def _run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize("case", list(BAD_PRODUCTS))
def test_bad_product_exits_4_and_writes_nothing(case: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    build, message = BAD_PRODUCTS[case]
    product = build(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = _run(["s2", "ndvi", product, "--out", out_dir], capsys)
    assert code == 4, err
    assert re.search("error: .*" + message, err), err
    assert os.listdir(out_dir) == []  # no NDVI, no temporary file


def test_bad_product_does_not_create_the_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["s2", "ndvi", _truncated_zip(tmp_path), "--out", tmp_path / "new"], capsys)
    assert code == 4 and "not a complete zip archive" in err
    assert not (tmp_path / "new").exists()


def test_cli_writes_the_dated_ndvi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["s2", "ndvi", _zip(_safe(tmp_path, "0400")), "--out", tmp_path / "ndvi", "--uint8"],
                          capsys)
    assert code == 0, err
    assert "esa_l2a (safe) tile 29RKH, 2020-02-19" in err and "NDVI_29RKH_20200219.tif" in out.replace("\n", "")
    assert os.listdir(tmp_path / "ndvi") == ["NDVI_29RKH_20200219.tif"]
    codes, _ = _read(tmp_path / "ndvi" / "NDVI_29RKH_20200219.tif")
    assert codes.dtype == np.uint8 and codes[0, 0] == round((392 / 4580 + 1) * 100) and codes[127, 127] == 255


def test_cli_overviews_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import plotsm.sources

    monkeypatch.setattr(plotsm.sources, "TILE_SIZE", 32)  # so that the 128-px product gets overviews 2 and 4
    product = _safe(tmp_path, "0400")
    for args, expected in (([], []), (["--overviews"], [2, 4])):
        out_dir = tmp_path / f"ndvi{len(args)}"
        code, _, err = _run(["s2", "ndvi", product, "--out", out_dir, *args], capsys)
        assert code == 0, err
        with rasterio.open(out_dir / "NDVI_29RKH_20200219.tif") as src:
            assert src.overviews(1) == expected and src.profile["compress"] == "zstd"


# ------------------------------------------------------------------------------------- corrupted members


CORRUPTED = {"B08 band": (_safe, "_B08_10m.jp2"), "SCL mask": (_safe, "_SCL_20m.jp2"),
             "MTD metadata": (_safe, "/MTD_MSIL2A.xml"), "L3A FLG mask": (_theia_l3a, "_FLG_R1.tif")}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
@pytest.mark.parametrize("case", list(CORRUPTED))
def test_corrupted_member_exits_4_names_it_and_writes_nothing(corrupt, case: str, compression: int, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """One flipped byte in a member the NDVI reads: exit 4 naming archive!member, no output folder, no file. The
    same zip before the flip gives an NDVI, so the byte is what is refused (GDAL alone would read it unchecked)."""
    build, suffix = CORRUPTED[case]
    archive = _zip(build(tmp_path / "src"), compression)
    code, _, err = _run(["s2", "ndvi", archive, "--out", tmp_path / "intact"], capsys)
    assert code == 0 and len(os.listdir(tmp_path / "intact")) == 1, err
    member = corrupt(archive, suffix)
    code, out, err = _run(["s2", "ndvi", archive, "--out", tmp_path / "new" / "ndvi"], capsys)
    assert code == 4, err
    assert re.search(rf"error: \S+\.zip!{re.escape(member)}: (CRC-32 mismatch|undecodable compressed data|truncated)"
                     r".*re-download it \(compare its size or checksum", err), err
    assert "wrote" not in out and not (tmp_path / "new").exists()


def test_corrupted_member_is_refused_before_an_existing_folder_is_touched(corrupt, tmp_path: Path) -> None:
    archive = _zip(_safe(tmp_path / "src"), zipfile.ZIP_STORED)
    member = corrupt(archive, "_B04_10m.jp2")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError, match=rf"!{re.escape(member)}: CRC-32 mismatch"):
        write_product_ndvi(resolve_s2_product(archive), out_dir)  # resolving alone reads no band: still cheap
    assert os.listdir(out_dir) == []


def test_zip_members_lists_what_the_ndvi_reads(tmp_path: Path) -> None:
    archive = _zip(_safe(tmp_path))
    product = resolve_s2_product(archive)
    ((path, members),) = product.zip_members().items()
    assert path == archive.resolve()
    assert [m.rsplit("/", 1)[1] for m in members] == ["T29RKH_20200219T112111_B04_10m.jp2",
                                                      "T29RKH_20200219T112111_B08_10m.jp2",
                                                      "T29RKH_20200219T112111_SCL_20m.jp2", "MTD_MSIL2A.xml"]
    assert resolve_s2_product(_safe(tmp_path / "folder")).zip_members() == {}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_verify_zip_members_streams_in_chunks(corrupt, compression: int, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A good archive passes, members named twice or not at all included; with 1 kB chunks a 100 kB member is
    read in pieces, and a byte flipped near its end is still caught (the CRC is checked at the member's end)."""
    monkeypatch.setattr(archive_module, "CHUNK_BYTES", 1024)
    archive = tmp_path / "a.zip"
    payload = np.random.default_rng(0).integers(0, 16, 100_000, dtype=np.uint8).tobytes()  # compressible
    with zipfile.ZipFile(archive, "w", compression) as zf:
        zf.writestr("dir/big.bin", payload)
        zf.writestr("small.txt", "hello")
    verify_zip_members(archive, ["dir/big.bin", "small.txt", "dir/big.bin"])
    verify_zip_members(archive, [])
    with pytest.raises(InputError, match=r"a\.zip!missing\.bin: not in the archive\. The product is damaged; "
                                         r"re-download it"):
        verify_zip_members(archive, ["small.txt", "missing.bin"])
    corrupt(archive, "big.bin", where=0.99)
    verify_zip_members(archive, ["small.txt"])  # only the members named are read
    with pytest.raises(InputError, match=r"a\.zip!dir/big\.bin: (CRC-32 mismatch|undecodable compressed data)"):
        verify_zip_members(archive, ["small.txt", "dir/big.bin"])


def test_verify_zip_members_names_a_truncated_archive(tmp_path: Path) -> None:
    archive = _truncated_zip(tmp_path)
    with pytest.raises(InputError, match=r"\.SAFE\.zip: not a complete zip archive .* re-download it"):
        verify_zip_members(archive, ["anything"])


def test_product_dataclass_names_its_output() -> None:
    import datetime as dt

    product = S2Product(Path("x"), "theia_l3a", "theia", "31TCJ", dt.date(2018, 10, 15), "r", "n", {})
    assert product.ndvi_name == "NDVI_31TCJ_20181015.tif"
