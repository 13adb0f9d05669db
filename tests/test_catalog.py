"""plotsm.catalog: S1 σ⁰/θ rasters and NDVI composites found in folders or a STAC ItemCollection, paired into
acquisitions. Rasters are 4×4 float32 GeoTIFFs (EPSG:32631) written by the fixtures; only names and tags matter."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from plotsm.catalog import CatalogWarning, S1Scene, pair_acquisitions, scan_ndvi, scan_s1, vv_unit_of
from plotsm.errors import InputError, UsageError
from plotsm.pipeline import Acquisition


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def write_tif(path: Path, **tags: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32", "crs": "EPSG:32631",
               "transform": Affine(10, 0, 500_000, 0, -10, 4_800_040), "nodata": float("nan")}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((1, 4, 4), 0.05, dtype=np.float32))
        if tags:
            dst.update_tags(**tags)
    return path


def calibrate_tags(quantity: str, start: str = "2021-12-23T05:11:22.123456Z", platform: str = "S1B",
                   direction: str = "descending", orbit: int = 22) -> dict[str, str]:
    """The tags `plotsm s1 calibrate` writes (GrdProduct.tags + QUANTITY/UNIT), trimmed to what matters here."""
    return {"ACQUISITION_START": start, "ACQUISITION_STOP": start, "DATETIME_UTC": start, "PLATFORM": platform,
            "ORBIT_DIRECTION": direction, "RELATIVE_ORBIT": str(orbit), "ABSOLUTE_ORBIT": "30174",
            "POLARISATION": "VV", "GEOCODING": "terrain", "INCIDENCE": "ellipsoid", "QUANTITY": quantity,
            "UNIT": "linear" if quantity == "sigma0" else "degree"}


# ------------------------------------------------------------------------------------------ S1 folders


def test_calibrate_outputs_are_read_from_tags(tmp_path: Path) -> None:
    """Two acquisitions as `plotsm s1 calibrate` names and tags them, plus a VH calibration that is skipped."""
    for stem, start, plat, d, orb in [("S1B_20211223T051122_D022_VV", "2021-12-23T05:11:22.123456Z", "S1B", "descending", 22),
                                      ("S1A_20211211T174015_A088_VV", "2021-12-11T17:40:15.000000Z", "S1A", "ascending", 88)]:
        write_tif(tmp_path / f"{stem}_sigma0.tif", **calibrate_tags("sigma0", start, plat, d, orb))
        write_tif(tmp_path / f"{stem}_theta.tif", **calibrate_tags("incidence_angle", start, plat, d, orb))
    vh = {**calibrate_tags("sigma0"), "POLARISATION": "VH"}
    write_tif(tmp_path / "S1B_20211223T051122_D022_VH_sigma0.tif", **vh)
    write_tif(tmp_path / "S1B_20211223T051122_D022_VH_theta.tif", **{**vh, "QUANTITY": "incidence_angle"})

    scenes = scan_s1(tmp_path)

    assert scenes == [
        S1Scene(utc(2021, 12, 11, 17, 40, 15), tmp_path / "S1A_20211211T174015_A088_VV_sigma0.tif",
                tmp_path / "S1A_20211211T174015_A088_VV_theta.tif", "S1A", "ascending", 88, "linear"),
        S1Scene(utc(2021, 12, 23, 5, 11, 22, 123456), tmp_path / "S1B_20211223T051122_D022_VV_sigma0.tif",
                tmp_path / "S1B_20211223T051122_D022_VV_theta.tif", "S1B", "descending", 22, "linear"),
    ]
    assert scenes[1].acquisition_id == "20211223T051122_S1B"


def test_names_only(tmp_path: Path) -> None:
    """No tags: role, time, platform and orbit from the names; a date-only name pairs with a timed one."""
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_theta.tif")
    write_tif(tmp_path / "s1c_20240418_d139_vv.TIFF")  # σ⁰ by its vv token, .TIFF, lower case
    write_tif(tmp_path / "s1c_20240418T054501_incidence_angle.tif")  # no orbit: agrees with anything
    write_tif(tmp_path / "slope.tif")  # shares the folder quietly
    write_tif(tmp_path / "ndvi_2024-04.tif")

    scenes = scan_s1(tmp_path)

    assert [(s.datetime_utc, s.vv.name, s.theta.name, s.platform, s.orbit_direction, s.relative_orbit) for s in scenes] == [
        (utc(2024, 4, 6, 17, 49, 12), "S1A_20240406T174912_A117_VV_sigma0.tif", "S1A_20240406T174912_A117_VV_theta.tif",
         "S1A", "ascending", 117),
        (utc(2024, 4, 18, 5, 45, 1), "s1c_20240418_d139_vv.TIFF", "s1c_20240418T054501_incidence_angle.tif",
         "S1C", "descending", 139),
    ]


def test_tags_win_over_the_name(tmp_path: Path) -> None:
    """A raster renamed by hand keeps what its tags say: time, platform, orbit and role."""
    tags = calibrate_tags("sigma0", "2024-04-06T17:49:12Z", "S1A", "ascending", 117)
    write_tif(tmp_path / "S1B_20240101T000000_D022_theta.tif", **tags)  # name disagrees on everything
    write_tif(tmp_path / "S1B_20240101T000000_D022_sigma0.tif", **{**tags, "QUANTITY": "incidence_angle", "UNIT": "degree"})

    (scene,) = scan_s1(tmp_path)

    assert scene.datetime_utc == utc(2024, 4, 6, 17, 49, 12)
    assert (scene.platform, scene.orbit_direction, scene.relative_orbit) == ("S1A", "ascending", 117)
    assert scene.vv.name == "S1B_20240101T000000_D022_theta.tif"  # QUANTITY=sigma0 wins over the 'theta' token
    assert scene.theta.name == "S1B_20240101T000000_D022_sigma0.tif"


def test_tiff_datetime_tag_and_acquisition_start(tmp_path: Path) -> None:
    """ACQUISITION_START and TIFFTAG_DATETIME date rasters whose names have no date; the name beats TIFFTAG_DATETIME."""
    write_tif(tmp_path / "a_sigma0.tif", ACQUISITION_START="2024-05-02T06:00:01Z")
    write_tif(tmp_path / "a_theta.tif", TIFFTAG_DATETIME="2024:05:02 06:00:01")
    write_tif(tmp_path / "b_20240510T060000_sigma0.tif", TIFFTAG_DATETIME="2030:01:01 00:00:00")  # processing time
    write_tif(tmp_path / "b_20240510T060000_theta.tif")

    scenes = scan_s1(tmp_path)

    assert [s.datetime_utc for s in scenes] == [utc(2024, 5, 2, 6, 0, 1), utc(2024, 5, 10, 6, 0, 0)]


def test_db_detection(tmp_path: Path) -> None:
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0_db.tif")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_theta.tif")
    write_tif(tmp_path / "x_20240418T054501_vv.tif", UNIT="dB")
    write_tif(tmp_path / "x_20240418T054501_theta.tif", UNIT="degree")
    write_tif(tmp_path / "y_20240430T054501_VV_dB.tif", UNIT="linear")  # tag wins over the name
    write_tif(tmp_path / "y_20240430T054501_theta.tif")

    scenes = scan_s1(tmp_path)

    assert [s.vv_unit for s in scenes] == ["db", "db", "linear"]
    with pytest.raises(InputError, match=r"dB \(S1A_20240406T174912_A117_VV_sigma0_db.tif, x_20240418T054501_vv.tif\) "
                                         r"and in linear units \(y_20240430T054501_VV_dB.tif\) are mixed"):
        vv_unit_of(scenes)
    assert vv_unit_of(scenes[:2]) == "db"
    assert vv_unit_of(scenes[2:]) == "linear"


def test_unpaired_rasters_are_all_named(tmp_path: Path) -> None:
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif")
    write_tif(tmp_path / "S1A_20240418T174912_A117_VV_theta.tif")  # another day
    write_tif(tmp_path / "S1A_20240430T174912_A117_VV_sigma0.tif")
    write_tif(tmp_path / "S1A_20240430T174912_D022_VV_theta.tif")  # same time, other orbit

    with pytest.raises(InputError) as info:
        scan_s1(tmp_path)

    message = str(info.value)
    assert "4 problem(s) with the S1 rasters" in message
    assert ("S1A_20240406T174912_A117_VV_sigma0.tif: σ⁰ without its incidence-angle raster (expected e.g. "
            "S1A_20240406T174912_A117_VV_theta.tif)") in message
    assert "S1A_20240418T174912_A117_VV_theta.tif: incidence angle without its σ⁰ raster" in message
    assert "S1A_20240430T174912_A117_VV_sigma0.tif: σ⁰ without" in message
    assert "S1A_20240430T174912_D022_VV_theta.tif: incidence angle without" in message
    assert "e.g. S1A_20240406T174912_A117_VV_sigma0.tif and S1A_20240406T174912_A117_VV_theta.tif" in message


def test_two_sigma0_for_one_acquisition(tmp_path: Path) -> None:
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0_copy.tif")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_theta.tif")

    with pytest.raises(InputError, match=r"two σ⁰ rasters for one acquisition \(2024-04-06T17:49:12Z\): "
                                         r"S1A_20240406T174912_A117_VV_sigma0.tif, S1A_20240406T174912_A117_VV_sigma0_copy.tif"):
        scan_s1(tmp_path)


def test_undated_raster_error_gives_an_example_name(tmp_path: Path) -> None:
    write_tif(tmp_path / "backscatter_vv.tif")
    write_tif(tmp_path / "incidence.tif")

    with pytest.raises(InputError, match=r"backscatter_vv.tif: no acquisition date(.|\n)*incidence.tif: no acquisition "
                                         r"date(.|\n)*e\.g\. S1A_20240406T174912_A117_VV_sigma0\.tif"):
        scan_s1(tmp_path)


def test_bad_tags_are_errors_not_fallbacks(tmp_path: Path) -> None:
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif", DATETIME_UTC="yesterday")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_theta.tif", UNIT="grad")  # radians are decoded (tag UNIT=radian); grads are not
    write_tif(tmp_path / "S1A_20240418T174912_A117_VV_sigma0.tif", UNIT="DN")
    write_tif(tmp_path / "S1A_20240418T174912_A117_VV_theta.tif", RELATIVE_ORBIT="one")

    with pytest.raises(InputError) as info:
        scan_s1(tmp_path)

    message = str(info.value)
    assert "tag DATETIME_UTC 'yesterday' is not an ISO 8601 time" in message
    assert "incidence angle tagged UNIT=grad" in message
    assert "σ⁰ tagged UNIT=DN" in message
    assert "tag RELATIVE_ORBIT 'one' is not an integer" in message


def test_unrecognised_rasters_warn(tmp_path: Path) -> None:
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif")
    write_tif(tmp_path / "S1A_20240406T174912_A117_VV_theta.tif")
    write_tif(tmp_path / "mask.tif")
    write_tif(tmp_path / "gamma0.tif", QUANTITY="gamma0")

    with pytest.warns(CatalogWarning, match=r"skipped 2 raster\(s\) that are neither σ⁰ nor incidence angle: "
                                            r"gamma0.tif, mask.tif"):
        assert len(scan_s1(tmp_path)) == 1


def test_missing_or_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere: S1 input not found"):
        scan_s1(tmp_path / "nowhere")
    raster = write_tif(tmp_path / "S1A_20240406T174912_A117_VV_sigma0.tif")
    with pytest.raises(InputError, match=r"not a single file\. Pass the folder that holds it"):
        scan_s1(raster)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no σ⁰ VV and incidence-angle GeoTIFFs found"):
        scan_s1(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------- STAC


def stac_item(item_id: str, when: str | None, assets: dict[str, dict[str, object]], **props: object) -> dict[str, object]:
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "bbox": None, "links": [],
            "properties": {"datetime": when, **props}, "assets": assets}


def write_collection(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items, "links": []}))
    return path


def test_stac_item_collection_with_relative_hrefs(tmp_path: Path) -> None:
    write_tif(tmp_path / "ard" / "a_vv.tif")
    write_tif(tmp_path / "ard" / "a_lia.tif")
    write_tif(tmp_path / "ard" / "a_ia.tif")
    write_tif(tmp_path / "ard" / "b_sigma0_db.tif")
    write_tif(tmp_path / "ard" / "b_theta.tif")
    items = [
        stac_item("S1A_IW_GRDH_1SDV_20240406T174912_20240406T174937_053325_0676B7_1A2B", "2024-04-06T17:49:12.5Z", {
            "vv": {"href": "ard/a_vv.tif", "roles": ["data"], "sar:polarizations": ["VV"]},
            "local_incidence_angle": {"href": "./ard/a_lia.tif", "roles": ["local-incidence-angle"]},
            "incidence_angle": {"href": (tmp_path / "ard" / "a_ia.tif").as_uri(), "roles": ["incidence-angle"]},
            "metadata": {"href": "ard/a.xml", "roles": ["metadata"]},
        }),  # no platform property: from the id; no orbit
        stac_item("b", "2024-04-18T05:45:01Z", {
            "backscatter": {"href": "ard/b_sigma0_db.tif", "roles": ["backscatter"], "sar:polarizations": ["VV"],
                            "raster:bands": [{"unit": "dB"}]},
            "theta": {"href": "ard/b_theta.tif"},
        }, **{"platform": "sentinel-1c", "sat:orbit_state": "descending", "sat:relative_orbit": 139}),
    ]
    collection = write_collection(tmp_path / "s1.json", items[::-1])

    scenes = scan_s1(collection)

    assert scenes == [
        S1Scene(utc(2024, 4, 6, 17, 49, 12, 500000), tmp_path / "ard" / "a_vv.tif", tmp_path / "ard" / "a_ia.tif",
                "S1A", None, None, "linear"),
        S1Scene(utc(2024, 4, 18, 5, 45, 1), tmp_path / "ard" / "b_sigma0_db.tif", tmp_path / "ard" / "b_theta.tif",
                "S1C", "descending", 139, "db"),
    ]


def test_stac_raw_grd_item_is_not_analysis_ready(tmp_path: Path) -> None:
    """The real CDSE GRD COG item (trimmed): a DN measurement and no incidence angle → calibrate first."""
    item = stac_item("S1D_IW_GRDH_1SDV_20260730T185910_20260730T185937_003907_00710E_0863_COG",
                     "2026-07-30T18:59:10.437185Z", {
                         "vv": {"href": "s3://eodata/Sentinel-1/SAR/IW_GRDH_1S-COG/2026/07/30/…-vv-….tiff",
                                "sar:polarizations": ["VV"], "roles": ["data"]},
                         "schema-noise-vv": {"href": "s3://eodata/…/noise-….xml", "roles": ["metadata"]},
                     }, **{"product:type": "IW_GRDH_1S", "sar:polarizations": ["VV", "VH"]})

    with pytest.raises(InputError, match=r"no incidence-angle asset \(assets: vv, schema-noise-vv\)\. Name the assets "
                                         r"'sigma0_vv' and 'incidence_angle'\. It looks like a raw GRD product: "
                                         r"calibrate it first"):
        scan_s1(write_collection(tmp_path / "grd.json", [item]))


def test_stac_remote_and_missing_hrefs(tmp_path: Path) -> None:
    item = stac_item("x", "2024-04-06T17:49:12Z", {"sigma0_vv": {"href": "https://example.org/vv.tif"},
                                                   "incidence_angle": {"href": "missing.tif"}})
    with pytest.raises(InputError, match=r"remote href https://example.org/vv.tif; download the assets"):
        scan_s1(write_collection(tmp_path / "s1.json", [item]))
    item["assets"] = {"sigma0_vv": {"href": "vv.tif"}, "incidence_angle": {"href": "missing.tif"}}
    write_tif(tmp_path / "vv.tif")
    with pytest.raises(InputError, match=r"missing.tif not found \(href 'missing.tif', relative hrefs are read from"):
        scan_s1(write_collection(tmp_path / "s1.json", [item]))
    write_tif(tmp_path / "theta.tif")
    item["assets"] = {"sigma0_vv": {"href": "vv.tif"}, "incidence_angle": {"href": "theta.tif"}}
    with pytest.raises(InputError, match=r"2 items for one acquisition \(20240406T174912\): vv.tif, vv.tif; keep one"):
        scan_s1(write_collection(tmp_path / "s1.json", [item, {**item, "id": "y"}]))


@pytest.mark.parametrize("text, error", [
    ("{not json", r"not valid JSON \(Expecting property name enclosed in double quotes at line 1\)"),
    ('{"type": "Catalog", "id": "c"}', r"not a STAC ItemCollection \(type 'Catalog'"),
    ("[1, 2]", r"not a STAC ItemCollection \(type 'list'"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature"}]}', r"feature 0 is not a STAC item"),
    ('{"type": "FeatureCollection", "features": []}', r"the ItemCollection has no items"),
])
def test_stac_bad_json(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "s1.json"
    path.write_text(text)
    with pytest.raises(InputError, match=error):
        scan_s1(path)


# ------------------------------------------------------------------------------------------------- NDVI


def test_scan_ndvi_folder(tmp_path: Path) -> None:
    for name in ("ndvi_2024-04.tif", "ndvi_202405.tif", "NDVI_T31UFQ_20240612.tif", "S1A_20240406T174912_VV_sigma0.tif",
                 "slope.tif"):
        write_tif(tmp_path / name)

    assert scan_ndvi(tmp_path) == {"2024-04": tmp_path / "ndvi_2024-04.tif", "2024-05": tmp_path / "ndvi_202405.tif",
                                   "2024-06-12": tmp_path / "NDVI_T31UFQ_20240612.tif"}


def test_scan_ndvi_errors(tmp_path: Path) -> None:
    write_tif(tmp_path / "NDVI_T31UFQ_20240612.tif")
    write_tif(tmp_path / "NDVI_T31UFP_20240612.tif")
    write_tif(tmp_path / "ndvi_latest.tif")
    with pytest.raises(InputError, match=r"2 problem\(s\) with the NDVI rasters") as info:
        scan_ndvi(tmp_path)
    assert "ndvi_latest.tif: no date (YYYYMMDD) or month (YYYY-MM) in the name" in str(info.value)
    assert ("2 NDVI rasters for 2024-06-12: NDVI_T31UFP_20240612.tif, NDVI_T31UFQ_20240612.tif; keep one per date"
            in str(info.value))
    with pytest.raises(InputError, match=r"no NDVI raster \(a GeoTIFF with 'ndvi' and a date in its name\)"):
        scan_ndvi(write_tif(tmp_path / "other" / "slope.tif").parent)


def test_scan_ndvi_stac(tmp_path: Path) -> None:
    write_tif(tmp_path / "m.tif")
    write_tif(tmp_path / "d.tif")
    items = [stac_item("month", None, {"ndvi": {"href": "m.tif"}},
                       start_datetime="2024-04-01T00:00:00Z", end_datetime="2024-04-30T23:59:59Z"),
             stac_item("day", "2024-05-03T10:50:00Z", {"b": {"href": "d.tif", "roles": ["data"]}})]
    assert scan_ndvi(write_collection(tmp_path / "ndvi.json", items)) == {"2024-04": tmp_path / "m.tif",
                                                                          "2024-05-03": tmp_path / "d.tif"}


# ---------------------------------------------------------------------------------------------- pairing


def scene(*when: int, platform: str | None = "S1A") -> S1Scene:
    stamp = utc(*when)
    return S1Scene(stamp, Path(f"{stamp:%Y%m%dT%H%M%S}_sigma0.tif"), Path(f"{stamp:%Y%m%dT%H%M%S}_theta.tif"),
                   platform, "ascending", 117)


NDVI = {"2024-04": Path("ndvi_2024-04.tif"), "2024-06": Path("ndvi_2024-06.tif"),
        "2024-08-20": Path("NDVI_T31UFQ_20240820.tif")}


def test_pair_by_calendar_month(tmp_path: Path) -> None:
    slope = write_tif(tmp_path / "slope.tif")
    scenes = [scene(2024, 4, 30, 23, 59, 59), scene(2024, 6, 1, 0, 0, 0), scene(2024, 8, 2, 5, 0, 0)]

    acqs = pair_acquisitions(scenes, NDVI, slope)

    # gaps to the NDVI's centre (April's composite stands for 2024-04-16T00:00, June's for 2024-06-16T00:00, the
    # single date for 2024-08-20T12:00): 14 d 23:59:59 → 15.0, 15 d, 18 d 7 h → 18.29 (days, 2 decimals)
    assert acqs == [
        Acquisition(utc(2024, 4, 30, 23, 59, 59), scenes[0].vv, scenes[0].theta, Path("ndvi_2024-04.tif"), slope,
                    "S1A", "ascending", 117, ndvi_gap_days=15.0),
        Acquisition(utc(2024, 6, 1), scenes[1].vv, scenes[1].theta, Path("ndvi_2024-06.tif"), slope,
                    "S1A", "ascending", 117, ndvi_gap_days=15.0),
        # no August composite: the single-date NDVI of August
        Acquisition(utc(2024, 8, 2, 5), scenes[2].vv, scenes[2].theta, Path("NDVI_T31UFQ_20240820.tif"), slope,
                    "S1A", "ascending", 117, ndvi_gap_days=18.29),
    ]


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_month_rule_lists_every_missing_month() -> None:
    scenes = [scene(2024, 3, 31, 17, 0, 0), scene(2024, 4, 6, 17, 0, 0), scene(2024, 5, 2, 6, 0, 0, platform=None),
              scene(2024, 5, 14, 6, 0, 0), scene(2024, 7, 1, 6, 0, 0)]
    with pytest.raises(InputError, match=r"4 of 5 acquisitions have no NDVI for their calendar month — "
                                         r"2024-03: 20240331T170000_S1A; 2024-05: 20240502T060000, "
                                         r"20240514T060000_S1A; 2024-07: 20240701T060000_S1A\. The NDVI covers "
                                         r"2024-04, 2024-06, 2024-08\. Add the missing composites \(ndvi_2024-03.tif, "
                                         r"ndvi_2024-05.tif, ndvi_2024-07.tif: plotsm s2 composite .*\) or pass "
                                         r"--pair nearest"):
        pair_acquisitions(scenes, NDVI, None)


def test_pair_nearest() -> None:
    """Centres (as MonthlyComposites.centres): April 2024-04-16T00:00, June 2024-06-16T00:00, the single date
    2024-08-20T12:00. Half-way: 2024-05-16T12:00 (61 d / 2 after April's) and 2024-07-18T18:00 (65.5 d / 2 after June's)."""
    scenes = [scene(2024, 3, 1, 0, 0, 0), scene(2024, 5, 16, 12, 0, 0), scene(2024, 5, 16, 12, 0, 1),
              scene(2024, 7, 18, 18, 0, 0), scene(2024, 7, 18, 18, 0, 1)]

    picked = [a.ndvi.name for a in pair_acquisitions(scenes, NDVI, None, "nearest", max_gap_days=60)]

    # exactly half-way is a tie: the earlier wins, as in plotsm.sources.composite.pair_ndvi
    assert picked == ["ndvi_2024-04.tif", "ndvi_2024-04.tif", "ndvi_2024-06.tif", "ndvi_2024-06.tif",
                      "NDVI_T31UFQ_20240820.tif"]


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_pair_nearest_has_a_maximum_gap() -> None:
    """A December acquisition and NDVI of June: refused, with each gap (used to be paired silently). March 1 is
    46 days before April's centre: beyond the default 45, within --max-gap-days 46."""
    scenes = [scene(2024, 3, 1, 0, 0, 0), scene(2024, 4, 20, 0, 0, 0), scene(2024, 12, 20, 0, 0, 0)]
    with pytest.raises(InputError, match=r"2 of 3 acquisitions have no NDVI within 45 days — 20240301T000000_S1A "
                                         r"\(nearest ndvi_2024-04\.tif, 46 days\); 20241220T000000_S1A \(nearest "
                                         r"NDVI_T31UFQ_20240820\.tif, 122 days\)\. .*--max-gap-days N"):
        pair_acquisitions(scenes, NDVI, None, "nearest")
    acqs = pair_acquisitions(scenes[:2], NDVI, None, "nearest", max_gap_days=46)
    assert [(a.ndvi.name, a.ndvi_gap_days) for a in acqs] == [("ndvi_2024-04.tif", 46.0), ("ndvi_2024-04.tif", 4.0)]


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_pairing_checks(tmp_path: Path) -> None:
    db = S1Scene(utc(2024, 4, 6), Path("x_db.tif"), Path("x_theta.tif"), vv_unit="db")
    with pytest.raises(InputError, match=r"1 σ⁰ raster\(s\) are in db units but the run reads σ⁰ as linear: "
                                         r"x_db.tif\. Pass --vv-unit db"):
        pair_acquisitions([db], NDVI, None)
    assert pair_acquisitions([db], NDVI, None, vv_unit="db")[0].ndvi == Path("ndvi_2024-04.tif")
    with pytest.raises(UsageError, match=r"--pair interpolate: .* use --pair month or --pair nearest"):
        pair_acquisitions([db], NDVI, None, "interpolate", vv_unit="db")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"slope.tif: slope raster not found"):
        pair_acquisitions([db], NDVI, tmp_path / "slope.tif", vv_unit="db")
    with pytest.raises(InputError, match=r"no NDVI raster to pair with"):
        pair_acquisitions([db], {}, None, vv_unit="db")
    with pytest.raises(InputError, match=r"NDVI key 'April'"):
        pair_acquisitions([db], {"April": Path("a.tif")}, None, vv_unit="db")


def test_scan_and_pair_end_to_end(tmp_path: Path) -> None:
    """`s1 calibrate` outputs + `s2 composite` outputs + a slope → acquisitions in time order."""
    s1, ndvi = tmp_path / "s1", tmp_path / "ndvi"
    for stem, start in [("S1B_20211223T051122_D022_VV", "2021-12-23T05:11:22.000000Z"),
                        ("S1B_20211211T051123_D022_VV", "2021-12-11T05:11:23.000000Z")]:
        write_tif(s1 / f"{stem}_sigma0.tif", **calibrate_tags("sigma0", start))
        write_tif(s1 / f"{stem}_theta.tif", **calibrate_tags("incidence_angle", start))
    write_tif(ndvi / "ndvi_2021-12.tif")
    slope = write_tif(tmp_path / "slope.tif")

    acqs = pair_acquisitions(scan_s1(s1), scan_ndvi(ndvi), slope)

    assert [(a.acquisition_id, a.vv.name, a.theta.name, a.ndvi.name, a.slope) for a in acqs] == [
        ("20211211T051123_S1B", "S1B_20211211T051123_D022_VV_sigma0.tif", "S1B_20211211T051123_D022_VV_theta.tif",
         "ndvi_2021-12.tif", slope),
        ("20211223T051122_S1B", "S1B_20211223T051122_D022_VV_sigma0.tif", "S1B_20211223T051122_D022_VV_theta.tif",
         "ndvi_2021-12.tif", slope),
    ]
    assert all(a.datetime_utc.tzinfo is timezone.utc for a in acqs)
