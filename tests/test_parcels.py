"""plotsm.parcels: reading every format, the id rules, each input error, repairs, reprojection, inner buffer,
overlapping parcels."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import plotsm.parcels
from plotsm.errors import GeometryWarning, InputError, ParcelsWarning, UsageError
from plotsm.parcels import Parcels, ParcelsReport, inner_buffer, overlapping_parcels, read_parcels, to_crs

DATA = Path(__file__).parent / "data"
UTM = "EPSG:32631"
X0, Y0 = 500_000.0, 4_800_000.0


def squares(n: int = 3, size: float = 100.0) -> list[shapely.Polygon]:
    return [shapely.box(X0 + i * size, Y0, X0 + (i + 1) * size, Y0 + size) for i in range(n)]


def frame(crs: str | None = UTM, **columns: list) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values()))) if columns else 3
    return gpd.GeoDataFrame(columns or None, geometry=squares(n), crs=crs)


WRITERS = {
    "shp": lambda gdf, p: gdf.to_file(p, engine="pyogrio"),
    "gpkg": lambda gdf, p: gdf.to_file(p, driver="GPKG", engine="pyogrio"),
    "geojson": lambda gdf, p: gdf.to_file(p, driver="GeoJSON", engine="pyogrio"),
    "parquet": lambda gdf, p: gdf.to_parquet(p),
}


def write(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")  # files without CRS on purpose
        WRITERS[path.suffix[1:]](gdf, path)
    return path


@pytest.mark.parametrize("ext", list(WRITERS))
def test_reads_every_format(tmp_path: Path, ext: str) -> None:
    path = write(frame(code=[11, 12, 13], name=["a", "b", "c"]), tmp_path / f"parcels.{ext}")
    parcels = read_parcels(path)
    assert isinstance(parcels, Parcels)
    assert parcels.id_field == "code"
    assert parcels.gdf["parcel_id"].tolist() == [11, 12, 13]
    assert parcels.gdf["parcel_id"].dtype == np.int64
    assert parcels.gdf["name"].tolist() == ["a", "b", "c"]  # user attributes kept
    assert parcels.crs.to_epsg() == 32631
    assert parcels.report.n_read == 3 and not parcels.report.id_generated
    assert list(parcels.gdf.columns)[0] == "parcel_id" and parcels.gdf.geometry.name == "geometry"
    assert len(parcels) == 3


def test_id_named_field_preferred_over_other_unique_fields(tmp_path: Path) -> None:
    gdf = frame(surface=[5, 6, 7], ID_PARCEL=["x1", "x2", "x3"], humidity=[1, 2, 3])
    parcels = read_parcels(write(gdf, tmp_path / "p.gpkg"))
    assert parcels.id_field == "ID_PARCEL"
    assert parcels.gdf["parcel_id"].tolist() == ["x1", "x2", "x3"]


def test_id_skips_fields_that_are_not_unique(tmp_path: Path) -> None:
    gdf = frame(crop_id=[1, 1, 2], code=["a", "b", "c"])
    with pytest.warns(ParcelsWarning, match=r"p\.geojson: field 'crop_id' looks like the parcel id but has 1 duplicated"):
        assert read_parcels(write(gdf, tmp_path / "p.geojson")).id_field == "code"


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_id_like_field_with_duplicates_is_not_abandoned_silently(tmp_path: Path) -> None:
    gdf = frame(id=["A12", "B7", "A12", "C3"], crop=["wheat", "wheat", "maize", "maize"])
    path = write(gdf, tmp_path / "parcels.gpkg")
    expected = (
        "parcels.gpkg: field 'id' looks like the parcel id but has 1 duplicated value(s) over 2 rows (e.g. 'A12'); "
        "parcel ids come from the file's feature ids ('fid') instead. Make id unique or pass --id-field FIELD to choose."
    )
    with pytest.warns(ParcelsWarning) as caught:
        parcels = read_parcels(path)
    assert [str(w.message) for w in caught] == [expected]
    assert parcels.id_field == "fid" and parcels.gdf["parcel_id"].tolist() == [1, 2, 3, 4]
    assert parcels.report.id_skipped == [("id", "1 duplicated value(s) over 2 rows (e.g. 'A12')")]
    assert parcels.report.messages == ["parcels.gpkg: parcel ids from field 'fid' (pass --id-field to choose another).",
                                       expected]
    asked = r"parcels\.gpkg: id field 'id' has 1 duplicated value\(s\) over 2 rows \(e\.g\. 'A12'\)\. Make the ids unique"
    with pytest.raises(InputError, match=asked):
        read_parcels(path, id_field="id")  # asked for: still an error


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_id_like_integer_field_with_nulls_is_reported(tmp_path: Path) -> None:
    path = write(frame(ID_PARCEL=[1.0, None, 3.0]), tmp_path / "p.geojson")  # integers with a null: read as floats
    with pytest.warns(ParcelsWarning, match=(
        r"^p\.geojson: field 'ID_PARCEL' looks like the parcel id but has 1 null value\(s\) \(e\.g\. row 1\); parcel ids "
        r"come from numbers 1\.\.3 generated in file order instead\. Make ID_PARCEL unique and non-null or pass --id-field"
    )):
        parcels = read_parcels(path)
    assert parcels.report.id_generated and parcels.report.id_skipped == [("ID_PARCEL", "1 null value(s) (e.g. row 1)")]
    assert parcels.gdf["parcel_id"].tolist() == [1, 2, 3]


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_several_id_like_fields_skipped_are_named_in_one_warning(tmp_path: Path) -> None:
    gdf = frame(id=[1, 1, 2], crop_id=[5, 5, 5], code=["a", "b", "c"])
    with pytest.warns(ParcelsWarning, match=(
        r"fields 'id' \(1 duplicated value\(s\) over 2 rows \(e\.g\. 1\)\), 'crop_id' \(1 duplicated value\(s\) over "
        r"3 rows \(e\.g\. 5\)\) look like the parcel id but none is a unique key; parcel ids come from field 'code' "
        r"instead\. Make one of them unique or pass --id-field FIELD to choose\.$"
    )):
        parcels = read_parcels(write(gdf, tmp_path / "p.gpkg"))
    assert [name for name, _ in parcels.report.id_skipped] == ["id", "crop_id"]


def test_id_like_field_of_integral_floats_is_used(tmp_path: Path) -> None:
    parcels = read_parcels(write(frame(ID_PARCEL=[3.0, 1.0, 2.0], code=["a", "b", "c"]), tmp_path / "p.geojson"))
    assert parcels.id_field == "ID_PARCEL" and parcels.report.id_skipped == []
    assert parcels.gdf["parcel_id"].tolist() == [3, 1, 2] and parcels.gdf["parcel_id"].dtype == np.int64


def test_ids_generated_when_no_field_qualifies(tmp_path: Path) -> None:
    gdf = frame(area=[1.5, 2.5, 3.5], crop=["wheat", "wheat", "maize"])
    parcels = read_parcels(write(gdf, tmp_path / "p.parquet"))
    assert parcels.id_field is None and parcels.report.id_generated
    assert parcels.gdf["parcel_id"].tolist() == [1, 2, 3]
    assert any("generated" in m for m in parcels.report.messages)


def test_geopackage_feature_ids_used_when_no_attribute_qualifies(tmp_path: Path) -> None:
    gdf = frame(crop=["wheat", "wheat", "maize"])
    parcels = read_parcels(write(gdf, tmp_path / "p.gpkg"))
    assert parcels.id_field == "fid" and not parcels.report.id_generated
    assert parcels.gdf["parcel_id"].tolist() == [1, 2, 3] and "fid" not in parcels.gdf.columns
    assert read_parcels(tmp_path / "p.gpkg", id_field="fid").gdf["parcel_id"].tolist() == [1, 2, 3]


def test_explicit_id_field(tmp_path: Path) -> None:
    gdf = frame(code=[3, 2, 1], name=["a", "b", "c"])
    parcels = read_parcels(write(gdf, tmp_path / "p.gpkg"), id_field="name")
    assert parcels.id_field == "name" and parcels.gdf["parcel_id"].tolist() == ["a", "b", "c"]


def test_missing_id_field_lists_the_fields(tmp_path: Path) -> None:
    path = write(frame(code=[1, 2, 3], name=["a", "b", "c"]), tmp_path / "p.gpkg")
    with pytest.raises(InputError, match=r"p\.gpkg: no field 'nope'\. Available fields: code, name, fid\."):
        read_parcels(path, id_field="nope")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write(frame(code=[7, 7, 8], name=["a", "b", "c"]), tmp_path / "dup.gpkg")
    with pytest.raises(InputError, match=r"dup\.gpkg: id field 'code' has 1 duplicated value\(s\) over 2 rows \(e\.g\. 7\)"):
        read_parcels(path, id_field="code")


def test_null_ids(tmp_path: Path) -> None:
    path = write(frame(code=["a", None, "c"]), tmp_path / "null.geojson")
    with pytest.raises(InputError, match=r"null\.geojson: id field 'code' has 1 null value\(s\) \(e\.g\. row 1\)"):
        read_parcels(path, id_field="code")


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_no_crs_suggests_parcels_crs(tmp_path: Path) -> None:
    path = write(frame(crs=None, code=[1, 2, 3]), tmp_path / "nocrs.shp")
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(InputError, match=r"nocrs\.shp: no CRS.*--parcels-crs EPSG:xxxx"):
        read_parcels(path)


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_no_crs_with_lonlat_coordinates_suggests_4326(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": [1]}, geometry=[shapely.box(2.0, 43.0, 2.01, 43.01)], crs=None)
    with pytest.raises(InputError, match=r"longitude/latitude: pass --parcels-crs EPSG:4326"):
        read_parcels(write(gdf, tmp_path / "lonlat.shp"))


def test_parcels_crs_matching_a_geojson_crs84(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": [1]}, geometry=[shapely.box(2.0, 43.0, 2.01, 43.01)], crs="EPSG:4326")
    parcels = read_parcels(write(gdf, tmp_path / "lonlat.geojson"), parcels_crs="EPSG:4326")  # file says CRS84
    assert parcels.crs.equals("EPSG:4326", ignore_axis_order=True)


def test_parcels_crs_sets_a_missing_crs(tmp_path: Path) -> None:
    path = write(frame(crs=None, code=[1, 2, 3]), tmp_path / "nocrs.shp")
    parcels = read_parcels(path, parcels_crs="EPSG:32631")
    assert parcels.crs.to_epsg() == 32631 and parcels.gdf.crs.to_epsg() == 32631


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_parcels_crs_conflicting_with_the_file(tmp_path: Path) -> None:
    path = write(frame(code=[1, 2, 3]), tmp_path / "p.gpkg")
    assert read_parcels(path, parcels_crs="EPSG:32631").crs.to_epsg() == 32631
    with pytest.raises(UsageError, match=r"p\.gpkg: the file declares EPSG:32631, --parcels-crs says EPSG:2154"):
        read_parcels(path, parcels_crs="EPSG:2154")
    with pytest.raises(UsageError, match=r"--parcels-crs 'EPSG:0': not a CRS"):
        read_parcels(path, parcels_crs="EPSG:0")


def test_empty_layer(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": pd.Series([], dtype="int64")}, geometry=[], crs=UTM)
    path = write(gdf, tmp_path / "empty.gpkg")
    with pytest.raises(InputError, match=r"empty\.gpkg: the layer is empty \(0 features\)"):
        read_parcels(path)


def test_no_polygons(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": [1, 2]}, geometry=[shapely.Point(X0, Y0), shapely.Point(X0 + 1, Y0)], crs=UTM)
    with pytest.raises(InputError, match=r"points\.gpkg: no polygons \(found Point ×2\)"):
        read_parcels(write(gdf, tmp_path / "points.gpkg"))


def test_only_empty_geometries(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": [1, 2]}, geometry=[None, shapely.Polygon()], crs=UTM)
    with pytest.raises(InputError, match=r"nothing\.geojson: no polygons \(found empty ×2\)"):
        read_parcels(write(gdf, tmp_path / "nothing.geojson"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"absent\.gpkg: parcels file not found"):
        read_parcels(tmp_path / "absent.gpkg")


@pytest.mark.parametrize("name", ["garbage.gpkg", "garbage.parquet"])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a parcels file\x00\x01" * 10)
    with pytest.raises(InputError, match=rf"{name.replace('.', '[.]')}: cannot read"):
        read_parcels(path)


def test_invalid_geometry_repaired_and_counted(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    spike = shapely.Polygon([(X0, Y0), (X0 + 5, Y0), (X0 + 10, Y0)])  # zero area: collapses to a line
    assert not bowtie.is_valid and not spike.is_valid
    gdf = gpd.GeoDataFrame({"code": [1, 2, 3]}, geometry=[bowtie, squares(1)[0], spike], crs=UTM)
    parcels = read_parcels(write(gdf, tmp_path / "invalid.gpkg"))
    report = parcels.report
    assert report.n_repaired == 2 and report.n_empty == 1 and report.n_dropped_non_polygon == 0
    geoms = parcels.gdf.geometry
    assert geoms.is_valid.all() and set(geoms.geom_type) <= {"Polygon", "MultiPolygon"}
    assert geoms.iloc[0].geom_type == "MultiPolygon" and geoms.iloc[0].area == pytest.approx(50.0)
    assert geoms.iloc[2].is_empty and parcels.gdf["parcel_id"].tolist() == [1, 2, 3]  # kept: gets n_valid = 0


def test_non_polygons_dropped_with_a_warning(tmp_path: Path) -> None:
    line = shapely.LineString([(X0, Y0), (X0 + 10, Y0 + 10)])
    multi = shapely.MultiPolygon([shapely.box(X0, Y0, X0 + 10, Y0 + 10), shapely.box(X0 + 20, Y0, X0 + 30, Y0 + 10)])
    gdf = gpd.GeoDataFrame({"code": [1, 2, 3, 4]}, geometry=[squares(1)[0], line, multi, None], crs=UTM)
    with pytest.warns(GeometryWarning, match=r"dropped 1 non-polygon feature\(s\) \(LineString\)"):
        parcels = read_parcels(write(gdf, tmp_path / "mixed.geojson"))
    assert parcels.report.n_dropped_non_polygon == 1 and parcels.report.n_empty == 1
    assert parcels.gdf["parcel_id"].tolist() == [1, 3, 4]
    assert parcels.gdf.geometry.iloc[1].geom_type == "MultiPolygon"  # multipolygons kept as they are


def test_polygons_of_a_geometry_collection_kept(tmp_path: Path) -> None:
    collection = shapely.GeometryCollection([squares(1)[0], shapely.Point(X0, Y0)])
    gdf = gpd.GeoDataFrame({"code": [1, 2]}, geometry=[collection, squares(2)[1]], crs=UTM)
    parcels = read_parcels(write(gdf, tmp_path / "gc.geojson"))
    assert parcels.gdf.geometry.iloc[0].equals(squares(1)[0])


def test_layer_choice(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    frame(code=[1, 2, 3]).to_file(path, layer="first", driver="GPKG", engine="pyogrio")
    frame(code=[4, 5]).to_file(path, layer="second", driver="GPKG", engine="pyogrio")
    default = read_parcels(path)
    assert default.gdf["parcel_id"].tolist() == [1, 2, 3] and "2 layers" in default.report.messages[0]
    assert read_parcels(path, layer="second").gdf["parcel_id"].tolist() == [4, 5]
    with pytest.raises(InputError, match=r"two\.gpkg: no layer 'third'\. Layers in the file: first, second"):
        read_parcels(path, layer="third")


def test_existing_parcel_id_field_that_is_not_the_id_is_renamed(tmp_path: Path) -> None:
    gdf = frame(parcel_id=[1, 1, 2], code=["a", "b", "c"])
    with pytest.warns(ParcelsWarning, match=r"field 'parcel_id' looks like the parcel id .* come from field 'code'"):
        parcels = read_parcels(write(gdf, tmp_path / "p.geojson"))
    assert parcels.id_field == "code" and parcels.gdf["parcel_id_orig"].tolist() == [1, 1, 2]


def test_real_rpg_parcels() -> None:
    parcels = read_parcels(DATA / "parcels_rpg2022.gpkg")
    assert parcels.id_field == "id_parcel" and len(parcels) == 100
    assert parcels.crs.to_epsg() == 2154
    assert parcels.gdf["parcel_id"].is_unique and pd.api.types.is_string_dtype(parcels.gdf["parcel_id"])
    assert (parcels.gdf.geom_type == "MultiPolygon").all() and parcels.report.n_repaired == 0
    assert {"code_cultu", "surf_parc"} <= set(parcels.gdf.columns)


def test_real_benin_segments() -> None:
    parcels = read_parcels(DATA / "zonal_benin_segments.gpkg")
    assert parcels.id_field == "label" and len(parcels) == 295 and parcels.report.id_skipped == []
    assert parcels.gdf["parcel_id"].dtype == np.int64 and parcels.crs.to_epsg() == 32631


def test_to_crs_reprojects_parcels_not_in_place() -> None:
    gdf = frame(code=[1, 2, 3])
    parcels = Parcels(gdf, "code", gdf.crs, ParcelsReport(n_read=3))
    lonlat = to_crs(parcels, "EPSG:4326")
    assert lonlat.crs.to_epsg() == 4326 and parcels.gdf.crs.to_epsg() == 32631
    back = to_crs(lonlat, UTM)
    assert np.allclose(back.area, 10_000.0, rtol=1e-6)
    assert to_crs(parcels, "EPSG:32631") is parcels.gdf  # already there: unchanged
    with pytest.raises(InputError, match=r"parcels have no CRS"):
        to_crs(frame(crs=None, code=[1, 2, 3]), UTM)


def test_inner_buffer_in_metres_keeps_vanished_parcels() -> None:
    gdf = gpd.GeoDataFrame(
        {"parcel_id": [1, 2]},
        geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100), shapely.box(X0 + 200, Y0, X0 + 215, Y0 + 15)],
        crs=UTM,
    )
    out = inner_buffer(gdf, 10)
    assert out.geometry.iloc[0].area == pytest.approx(80.0 * 80.0)
    assert out.geometry.iloc[1].is_empty and len(out) == 2
    assert inner_buffer(gdf, -10).geometry.iloc[0].area == pytest.approx(6400.0)  # the sign is ignored
    assert gdf.geometry.iloc[0].area == pytest.approx(10_000.0)  # input untouched


def test_inner_buffer_of_geographic_parcels_is_done_in_utm() -> None:
    gdf = gpd.GeoDataFrame({"parcel_id": [1]}, geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100)], crs=UTM)
    out = inner_buffer(gdf.to_crs("EPSG:4326"), 10)
    assert out.crs.to_epsg() == 4326
    assert out.to_crs(UTM).geometry.iloc[0].area == pytest.approx(6400.0, rel=1e-3)


# ------------------------------------------------------------------------------------------------ overlaps


def box(x: float, y: float, size: float) -> shapely.Polygon:
    """A square of ``size`` m whose lower-left corner is (X0 + x, Y0 + y)."""
    return shapely.box(X0 + x, Y0 + y, X0 + x + size, Y0 + y + size)


def layer(*geoms: shapely.Geometry | None, ids: list | None = None, crs: str = UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"parcel_id": ids or list(range(1, len(geoms) + 1))}, geometry=list(geoms), crs=crs)


def test_overlap_of_two_squares_is_25_m2() -> None:
    report = overlapping_parcels(layer(box(0, 0, 10), box(5, 5, 10)))  # they share [5, 10] × [5, 10]
    assert (report.n_pairs, report.n_parcels, report.area_m2) == (1, 2, 25.0)
    assert report.examples == [(1, 2, 25.0)] and report


def test_touching_squares_do_not_overlap() -> None:
    # side by side, corner to corner, and a square whose edge is part of a longer edge: all share boundary only
    gdf = layer(box(0, 0, 10), box(10, 0, 10), box(20, 10, 10), box(0, 10, 5), None, shapely.Polygon())
    i, j = shapely.STRtree(gdf.geometry.to_numpy()).query(gdf.geometry.to_numpy(), predicate="intersects")
    assert sorted(zip(i[i < j].tolist(), j[i < j].tolist())) == [(0, 1), (0, 3), (1, 2)]  # they do intersect
    report = overlapping_parcels(gdf)
    assert (report.n_pairs, report.n_parcels, report.area_m2, report.examples) == (0, 0, 0.0, [])
    assert not report and report.message("p.gpkg") == "p.gpkg: no parcels overlap (by more than 1.0 m²)."


def test_identical_duplicate_found_with_its_full_area() -> None:
    report = overlapping_parcels(layer(*squares(3), squares(3)[1], ids=["A", "B", "C", "B2"]))
    assert (report.n_pairs, report.n_parcels, report.area_m2) == (1, 2, 10_000.0)
    assert report.examples == [("B", "B2", 10_000.0)]


def test_overlap_under_the_threshold_is_not_reported() -> None:
    gdf = layer(box(0, 0, 10), box(9.95, 0, 10))  # a 0.05 m × 10 m sliver: 0.5 m²
    assert overlapping_parcels(gdf, min_overlap_m2=1.0).n_pairs == 0
    report = overlapping_parcels(gdf, min_overlap_m2=0.4)
    assert report.n_pairs == 1 and report.area_m2 == pytest.approx(0.5, abs=1e-6)


def test_overlap_of_geographic_parcels_is_measured_in_m2() -> None:
    # 100 m squares shifted by 50 m: 5,000 m² in UTM; in degrees it would be ~5e-7 and fall under 1 m²
    lonlat = layer(box(0, 0, 100), box(50, 0, 100)).to_crs("EPSG:4326")
    report = overlapping_parcels(lonlat)
    assert report.n_pairs == 1 and report.area_m2 == pytest.approx(5_000.0, rel=1e-6)


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_overlap_examples_largest_first_at_most_five_and_the_message() -> None:
    # squares of side 1..8 m, each duplicated: the 1 m² pair is not *more* than 1 m², the others are 4..64 m²
    geoms = [box(20 * k, 0, k) for k in range(1, 9)]
    ids = [f"p{k}" for k in range(1, 9)] + [f"q{k}" for k in range(1, 9)]
    report = overlapping_parcels(layer(*geoms, *geoms, ids=ids))
    assert (report.n_pairs, report.n_parcels, report.area_m2) == (7, 14, 4 + 9 + 16 + 25 + 36 + 49 + 64)
    assert report.examples == [("p8", "q8", 64.0), ("p7", "q7", 49.0), ("p6", "q6", 36.0), ("p5", "q5", 25.0),
                               ("p4", "q4", 16.0)]
    assert report.message("p.gpkg") == (
        "p.gpkg: 14 parcels overlap another (7 pairs, 203 m² in all; e.g. 'p8' and 'q8' share 64 m²): under --rule "
        "center each pixel goes to one parcel, the later one in the file, so the other loses it. Fix the geometries "
        "or pass --rule coverage."
    )


def test_overlaps_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # one square over four: it overlaps each of them by 25 m²; the four only touch each other
    gdf = layer(box(0, 0, 10), box(10, 0, 10), box(0, 10, 10), box(10, 10, 10), box(5, 5, 10), ids=[7, 3, 9, 1, 5])
    for block in (1, 2, 3, 50_000):
        monkeypatch.setattr(plotsm.parcels, "OVERLAP_BLOCK", block)
        report = overlapping_parcels(gdf)
        assert (report.n_pairs, report.n_parcels, report.area_m2) == (4, 5, 100.0)
        assert report.examples == [(7, 5, 25.0), (3, 5, 25.0), (9, 5, 25.0), (1, 5, 25.0)]  # ties in file order


@pytest.mark.usefixtures("cli_words")  # the message a shell user reads
def test_overlaps_of_parcels_read_and_index_ids() -> None:
    gdf = gpd.GeoDataFrame(geometry=[box(0, 0, 10), box(5, 5, 10)], index=[10, 20], crs=UTM)
    assert overlapping_parcels(gdf).examples == [(10, 20, 25.0)]  # no parcel_id column: the index
    parcels = Parcels(layer(box(0, 0, 10), box(5, 5, 10)), "code", UTM, ParcelsReport(n_read=2))
    assert overlapping_parcels(parcels).examples == [(1, 2, 25.0)]
    with pytest.raises(InputError, match=r"parcels have no CRS: cannot measure overlaps in m²\. Pass --parcels-crs"):
        overlapping_parcels(gpd.GeoDataFrame(geometry=[box(0, 0, 10)]))


def test_real_benin_segments_do_not_overlap() -> None:
    parcels = read_parcels(DATA / "zonal_benin_segments.gpkg")
    geoms = parcels.gdf.geometry.to_numpy()
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert int((i < j).sum()) == 982  # neighbours that touch: none of them is an overlap
    assert overlapping_parcels(parcels, min_overlap_m2=0.0).n_pairs == 0
    first = parcels.gdf.iloc[[0]]  # segment 142: 194 pixels of 10 m × 10 m
    assert first["nbPixels"].item() == 194
    report = overlapping_parcels(pd.concat([parcels.gdf, first.assign(parcel_id=-142)], ignore_index=True))
    assert (report.n_pairs, report.n_parcels, report.examples) == (1, 2, [(142, -142, 19_400.0)])


def test_a_natural_id_without_an_id_like_name_is_not_abandoned_silently(tmp_path: Path) -> None:
    """The Benin segmentation's ids are in 'label' (no id-like name): with a duplicate, plotsm falls back to the
    GeoPackage fid and says that 'label' was passed over, and why."""
    gdf = gpd.read_file(Path(__file__).parent / "data" / "zonal_benin_segments.gpkg")  # nbPixels repeats too
    gdf.loc[gdf.index[1], "label"] = gdf["label"].iloc[0]
    path = tmp_path / "segments.gpkg"
    gdf.to_file(path)
    with pytest.warns(ParcelsWarning, match=r"segments\.gpkg: field 'label' looks like the parcel id but has 1 "
                                            r"duplicated value\(s\) over 2 rows .*parcel ids come from the file's "
                                            r"feature ids \('fid'\) instead"):
        parcels = read_parcels(path)
    assert parcels.id_field == "fid" and parcels.report.id_skipped[0][0] == "label"
