"""Export of moisture with parcel geometries: GeoParquet 1.1 (validated) and GeoPackage, written atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from pyproj import CRS

from plotsm.errors import DataWarning, UsageError
from plotsm.export import GPKG_LAYER, export_moisture, hilbert_order
from plotsm.store import Store

VALIDATOR = Path(sys.executable).parent / "geoparquet-validator"
N_SIDE = 10  # 10 × 10 parcels
DATES = {"A1": "2024-04-06T17:49:12Z", "A2": "2024-04-18T17:49:12Z"}
INTERVALS = ("mv_lo68_pct", "mv_hi68_pct", "mv_lo95_pct", "mv_hi95_pct")


def parcels(crs: str) -> gpd.GeoDataFrame:
    """A 10 × 10 grid of 100 m × 150 m parcels (ids 1..100) in UTM 31N, plus one parcel without geometry (id 0);
    ``crs`` reprojects them. Attribute ``status`` clashes with an export column."""
    ix, iy = np.meshgrid(np.arange(N_SIDE), np.arange(N_SIDE))
    x, y = 500_000.0 + 200.0 * ix.ravel(), 4_800_000.0 + 200.0 * iy.ravel()
    geoms = [shapely.Polygon(), *shapely.box(x, y, x + 100.0, y + 150.0)]
    n = len(geoms)
    gdf = gpd.GeoDataFrame(
        {"parcel_id": np.arange(n), "crop": np.where(np.arange(n) % 2 == 0, "wheat", "maize"), "status": "declared"},
        geometry=geoms, crs="EPSG:32631",
    )
    return gdf.to_crs(crs)


def moisture_of(acq_id: str):
    """mv_pct = parcel number / 10 + 10 (A1) or + 20 (A2); every seventh parcel is flagged too_few_pixels;
    mv_std_pct = 2 (A1, single-date) or 1 + parcel number / 100 (A2, as the joint inversion would make it); A2's
    'ok' rows carry credible intervals (mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, mv_hi95_pct) = mv_pct − 1, + 1.5,
    − 2.25, + 3 (exact for parcel 15: 20.5, 23.0, 19.25, 24.5); A1's table has none, as an older caller's."""

    def fn(inputs: pa.Table) -> pd.DataFrame:
        ids = np.array(inputs.column("parcel_id").to_pylist(), dtype=object)
        number = np.array([int(i) for i in ids])
        masked = number % 7 == 0
        mv = number / 10 + (10.0 if acq_id == "A1" else 20.0)
        return pd.DataFrame({
            "parcel_id": ids, "mv_pct": pd.array(np.where(masked, np.nan, mv), dtype="Float64"), "network": "all",
            "status": np.where(masked, "too_few_pixels", "ok"), "model_version": "test-1",
            "mv_std_pct": np.where(masked, np.nan, 2.0 if acq_id == "A1" else 1 + number / 100),
            "method": "single" if acq_id == "A1" else "temporal",
            **({} if acq_id == "A1" else {name: np.where(masked, np.nan, mv + offset) for name, offset in
                                          zip(INTERVALS, (-1.0, 1.5, -2.25, 3.0), strict=True)}),
        })

    return fn


def build(folder: Path, crs: str = "EPSG:32631") -> gpd.GeoDataFrame:
    gdf = parcels(crs)
    with Store(folder) as store:
        store.write_parcels(gdf)
        ids = gdf["parcel_id"].astype(str).tolist()
        obs = pd.DataFrame({"parcel_id": ids, "n_valid": 40, "n_pixels": 50, "valid_fraction": 0.8,
                            "vv_linear_mean": 0.1, "vv_linear_std": 0.01, "theta_deg": 36.0, "ndvi": 0.3,
                            "slope_deg": 1.0})
        for acq_id, when in DATES.items():
            store.write_acquisition({"acquisition_id": acq_id, "datetime_utc": when}, obs, moisture_of(acq_id))
    return gdf


@pytest.fixture(scope="module")
def utm(tmp_path_factory) -> tuple[Path, gpd.GeoDataFrame]:
    folder = tmp_path_factory.mktemp("utm")
    return folder, build(folder)


@pytest.fixture(scope="module")
def utm_parquet(utm, tmp_path_factory) -> Path:
    folder, _ = utm
    return export_moisture(folder, tmp_path_factory.mktemp("export") / "moisture.parquet", row_group_size=20)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VALIDATOR), "check", str(path)], capture_output=True, text=True, timeout=120)


# -------------------------------------------------------------------------------------------- GeoParquet


def test_geoparquet_read_back_by_geopandas(utm, utm_parquet: Path):
    _, gdf = utm
    back = gpd.read_parquet(utm_parquet)
    assert len(back) == 2 * len(gdf) and back.crs == CRS("EPSG:32631")
    assert {"parcel_id", "acquisition_id", "datetime_utc", "mv_pct", "status", "network", "n_valid", "vv_db",
            "theta_deg", "ndvi", "slope_deg", "area_m2", "crop", "attr_status", "geometry"} <= set(back.columns)
    original = gdf.set_index(gdf["parcel_id"].astype(str)).geometry
    assert shapely.equals_exact(back.geometry.values, original.loc[back["parcel_id"]].values, tolerance=0).all()
    assert str(back["datetime_utc"].dt.tz) == "UTC"
    one = back[(back["parcel_id"] == "15") & (back["acquisition_id"] == "A2")].iloc[0]
    assert (one["mv_pct"], one["status"], one["crop"], one["attr_status"]) == (21.5, "ok", "maize", "declared")
    assert (one["mv_std_pct"], one["method"]) == (1.15, "temporal")
    assert tuple(one[c] for c in INTERVALS) == (20.5, 23.0, 19.25, 24.5)
    cols = list(back.columns)
    assert cols[cols.index("mv_std_pct"):cols.index("mv_std_pct") + 5] == ["mv_std_pct", *INTERVALS]
    assert [pq.read_schema(utm_parquet).field(c).type for c in INTERVALS] == [pa.float64()] * 4
    first = back[(back["parcel_id"] == "15") & (back["acquisition_id"] == "A1")].iloc[0]
    assert all(pd.isna(first[c]) for c in INTERVALS)  # written without intervals: NULL
    assert one["datetime_utc"] == pd.Timestamp("2024-04-18T17:49:12Z")
    masked = back[back["parcel_id"] == "14"]
    assert masked["status"].eq("too_few_pixels").all() and masked["mv_pct"].isna().all()
    assert masked["mv_std_pct"].isna().all() and masked["method"].tolist() == ["single", "temporal"]
    assert masked[list(INTERVALS)].isna().all().all()


def test_geoparquet_layout(utm_parquet: Path):
    meta = pq.ParquetFile(utm_parquet).metadata
    geo = json.loads(meta.metadata[b"geo"])
    column = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and column["encoding"] == "WKB"
    assert column["covering"] == {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    assert CRS.from_json_dict(column["crs"]) == CRS("EPSG:32631")
    assert meta.num_rows == 202 and meta.num_row_groups == 11  # row groups of 20
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    codecs = {group.column(j).compression for group in groups for j in range(meta.num_columns)}
    assert codecs == {"ZSTD"}


def test_rows_are_in_hilbert_order(utm, utm_parquet: Path):
    _, gdf = utm
    table = pq.read_table(utm_parquet, columns=["parcel_id", "acquisition_id"]).to_pandas()
    ids = gdf["parcel_id"].astype(str).to_numpy()
    rank = dict(zip(ids, hilbert_order(gdf.geometry), strict=True))
    order = table["parcel_id"].map(rank).to_numpy()
    assert (np.diff(order) >= 0).all()
    assert table["parcel_id"].iloc[0] == "0"  # the parcel without geometry comes first
    assert table["acquisition_id"].iloc[:2].tolist() == ["A1", "A2"]  # then by time within a parcel


def test_geoparquet_read_back_by_duckdb(utm_parquet: Path):
    con = duckdb.connect()
    got = con.sql(
        "SELECT count(*) AS n, min(bbox.xmin) AS xmin, max(bbox.ymax) AS ymax, count(bbox.xmin) AS n_boxes "
        "FROM read_parquet($path)", params={"path": str(utm_parquet)}
    ).fetchall()
    # 101 parcels × 2; the empty parcel has a null bbox; extent 500000..501900+100, 4800000..4801800+150
    assert got == [(202, 500_000.0, 4_801_950.0, 200)]
    row = con.sql(
        "SELECT bbox, mv_pct FROM read_parquet($path) WHERE parcel_id = '1' AND acquisition_id = 'A1'",
        params={"path": str(utm_parquet)},
    ).fetchall()
    assert row == [({"xmin": 500_000.0, "ymin": 4_800_000.0, "xmax": 500_100.0, "ymax": 4_800_150.0}, 10.1)]
    con.close()


def _assert_conformant(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    for cls in ("core", "covering", "distribution"):
        line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith(f"=> {cls}:"))
        assert line.endswith("conformant") and ", 0 fail," in line, line
    assert "FAIL" not in result.stdout


def test_geoparquet_validator_passes_every_class(utm_parquet: Path):
    result = validate(utm_parquet)
    _assert_conformant(result)
    # with 11 row groups the spatial order is measured, not skipped
    assert "PASS  /conf/distribution/spatial-order" in result.stdout
    assert "PASS  /conf/distribution/geospatial-statistics" in result.stdout
    assert "PASS  /conf/covering/bbox-paths" in result.stdout


def test_geographic_parcels_keep_their_crs(tmp_path: Path):
    gdf = build(tmp_path / "store", crs="EPSG:4326")
    out = export_moisture(tmp_path / "store", tmp_path / "wgs84.parquet", row_group_size=25)
    back = gpd.read_parquet(out)
    assert back.crs.to_epsg() == 4326
    assert shapely.equals_exact(back.geometry.values,
                                gdf.set_index(gdf["parcel_id"].astype(str)).geometry.loc[back["parcel_id"]].values,
                                tolerance=0).all()
    result = validate(out)
    _assert_conformant(result)
    assert "PASS  /conf/core/bbox-crs" in result.stdout and "PASS  /conf/distribution/spatial-order" in result.stdout


# ------------------------------------------------------------------------------------------------ GPKG


def test_gpkg_round_trip(utm, tmp_path: Path):
    folder, gdf = utm
    out = export_moisture(folder, tmp_path / "moisture.gpkg", format="gpkg")
    assert pyogrio.list_layers(out)[0][0] == GPKG_LAYER
    back = pyogrio.read_dataframe(out)
    assert len(back) == 202 and back.crs == CRS("EPSG:32631")
    original = gdf.set_index(gdf["parcel_id"].astype(str)).geometry
    solid = ~back.geometry.is_empty
    assert shapely.equals_exact(back.geometry[solid].values, original.loc[back["parcel_id"][solid]].values,
                                tolerance=0).all()
    one = back[(back["parcel_id"] == "15") & (back["acquisition_id"] == "A1")].iloc[0]
    assert (one["mv_pct"], one["status"], one["mv_std_pct"], one["method"]) == (11.5, "ok", 2.0, "single")
    assert np.isnan([one[c] for c in INTERVALS]).all()
    two = back[(back["parcel_id"] == "15") & (back["acquisition_id"] == "A2")].iloc[0]
    assert tuple(two[c] for c in INTERVALS) == (20.5, 23.0, 19.25, 24.5)
    assert back.loc[back["status"] == "too_few_pixels", "mv_pct"].isna().all()
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_wide_layout_has_the_uncertainty_of_each_date(utm, tmp_path: Path):
    folder, gdf = utm
    back = pyogrio.read_dataframe(export_moisture(folder, tmp_path / "wide.gpkg", format="gpkg", layout="wide"))
    assert [c for c in back.columns if c.startswith("mv_")] == ["mv_A1", "mv_A2", "mv_std_A1", "mv_std_A2"] + [
        f"mv_{bound}_{a}" for bound in ("lo68", "hi68", "lo95", "hi95") for a in ("A1", "A2")]
    one = back[back["parcel_id"] == "15"].iloc[0]
    assert (one["n_ok"], one["mv_A1"], one["mv_A2"], one["mv_std_A1"], one["mv_std_A2"]) == (2, 11.5, 21.5, 2.0, 1.15)
    assert (one["mv_lo68_A2"], one["mv_hi68_A2"], one["mv_lo95_A2"], one["mv_hi95_A2"]) == (20.5, 23.0, 19.25, 24.5)
    assert np.isnan([one["mv_lo68_A1"], one["mv_hi68_A1"], one["mv_lo95_A1"], one["mv_hi95_A1"]]).all()
    masked = back[back["parcel_id"] == "14"].iloc[0]
    assert masked["n_ok"] == 0 and np.isnan([masked["mv_A1"], masked["mv_std_A2"], masked["mv_lo68_A2"],
                                             masked["mv_hi95_A2"]]).all()
    assert "method" not in back.columns  # per row: in the long layout


def test_a_wide_layout_too_wide_for_a_geopackage_is_refused(utm, tmp_path: Path, monkeypatch):
    import plotsm.export

    folder, _ = utm
    n_fields = len(pyogrio.read_info(export_moisture(folder, tmp_path / "w.gpkg", format="gpkg",
                                                     layout="wide"))["fields"])
    monkeypatch.setattr(plotsm.export, "GPKG_MAX_FIELDS", n_fields - 1)  # as if one field more than it can hold
    with pytest.raises(UsageError, match=rf"has {n_fields} attribute columns .* holds at most {n_fields - 1} "
                                         r"\(SQLite's 2000-column limit\)\. Export it as GeoParquet"):
        export_moisture(folder, tmp_path / "x.gpkg", format="gpkg", layout="wide")
    assert not (tmp_path / "x.gpkg").exists()
    export_moisture(folder, tmp_path / "x.parquet", layout="wide")  # GeoParquet has no such limit


def test_the_geopackage_field_limit_is_the_driver_s(tmp_path: Path):
    from plotsm.export import GPKG_MAX_FIELDS

    def frame(n: int) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({f"c{i}": [1.0] for i in range(n)}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")

    frame(GPKG_MAX_FIELDS).to_file(tmp_path / "ok.gpkg", layer="m")
    assert len(pyogrio.read_info(tmp_path / "ok.gpkg")["fields"]) == GPKG_MAX_FIELDS
    with pytest.raises(Exception, match="Error adding field"):
        frame(GPKG_MAX_FIELDS + 1).to_file(tmp_path / "too.gpkg", layer="m")


# ----------------------------------------------------------------------------------------------- dates


def test_export_one_date(utm, tmp_path: Path):
    folder, _ = utm
    with Store(folder, read_only=True) as store:  # an open store works as well as a folder
        out = export_moisture(store, tmp_path / "day.parquet", date="2024-04-18")
    back = gpd.read_parquet(out)
    assert len(back) == 101 and set(back["acquisition_id"]) == {"A2"}


def test_date_without_acquisitions_lists_the_available_dates(utm, tmp_path: Path):
    folder, _ = utm
    available = r"no acquisition on 2024-05-01\. Available dates \(UTC\): 2024-04-06, 2024-04-18\."
    with pytest.raises(UsageError, match=available):
        export_moisture(folder, tmp_path / "none.parquet", date="2024-05-01")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "name", "message"),
    [
        ({"date": "18/04/2024"}, "x.parquet", r"--date '18/04/2024': expected an ISO date such as 2024-04-06"),
        ({"format": "shp"}, "x.shp", r"export format 'shp': expected one of geoparquet, gpkg"),
        ({}, "x.gpkg", r"x\.gpkg: a \.gpkg name for format 'geoparquet'\. Pass format='gpkg'"),
        ({"row_group_size": 0}, "x.parquet", "row_group_size 0: must be at least 1"),
    ],
)
def test_usage_errors(utm, tmp_path: Path, kwargs, name, message):
    folder, _ = utm
    with pytest.raises(UsageError, match=message):
        export_moisture(folder, tmp_path / name, **kwargs)


def test_empty_store(tmp_path: Path):
    Store(tmp_path / "empty").close()
    with pytest.raises(UsageError, match=r"plotsm\.duckdb: no moisture to export\. Run plotsm"):
        export_moisture(tmp_path / "empty", tmp_path / "x.parquet")


# ---------------------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_the_old_file_and_no_temporary(utm, tmp_path: Path, monkeypatch):
    folder, _ = utm
    out = tmp_path / "moisture.parquet"
    out.write_bytes(b"previous export")

    def half_write(self, path, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        export_moisture(folder, out)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["moisture.parquet"]


def test_export_replaces_an_existing_file(utm, tmp_path: Path):
    folder, _ = utm
    out = tmp_path / "moisture.parquet"
    out.write_bytes(b"previous export")
    export_moisture(folder, out, date="2024-04-06")
    assert len(gpd.read_parquet(out)) == 101
    assert [p.name for p in tmp_path.iterdir()] == ["moisture.parquet"]


# --------------------------------------------------------------------------------------- parcel changes


def test_history_of_parcels_that_left_the_set_is_exported_with_their_last_geometry(tmp_path: Path):
    """Replacing the parcel set by parcels 0–50 retires 51–100: their 100 moisture rows stay and are exported
    with their last geometry and is_current false (they used to be left out of the export)."""
    gdf = build(tmp_path / "store")
    with Store(tmp_path / "store") as store:
        store.write_parcels(gdf[gdf["parcel_id"] <= 50])
        out = export_moisture(store, tmp_path / "all.parquet")
    back = gpd.read_parquet(out)
    assert len(back) == 202
    retired = back[~back["is_current"]]
    assert sorted(retired["parcel_id"].astype(int).unique()) == list(range(51, 101))
    assert len(retired) == 100 and retired["parcel_retired_utc"].notna().all()
    geoms = gdf.set_index(gdf["parcel_id"].astype(str)).geometry
    expected = gpd.GeoSeries(geoms.loc[retired["parcel_id"]].to_numpy(), index=retired.index, crs=gdf.crs)
    assert retired.geometry.geom_equals_exact(expected, tolerance=0).all()
    assert back.loc[back["is_current"], "parcel_retired_utc"].isna().all()


def test_moisture_of_parcels_with_no_geometry_anywhere_is_left_out_with_a_warning(tmp_path: Path):
    """Rows whose parcel is neither in the set nor retired (a store written before parcels were retired) cannot
    be placed on a map: left out, with a warning that counts them."""
    gdf = build(tmp_path / "store")
    with Store(tmp_path / "store") as store:
        store.write_parcels(gdf[gdf["parcel_id"] <= 50])
        store.sql("DELETE FROM parcels_retired")
        with pytest.warns(DataWarning, match=r"100 moisture row\(s\) of 50 parcel\(s\) not in the stored parcel set"):
            out = export_moisture(store, tmp_path / "subset.parquet")
    assert len(gpd.read_parquet(out)) == 102


# ------------------------------------------------------------------------------------ the Parquet dataset


def test_parquet_dataset_carries_the_intervals(utm, tmp_path: Path):
    """The store's Parquet file of an acquisition (sql/moisture_parquet.sql) has the four interval columns, as
    doubles, after mv_std_pct, with the stored values (NULL where masked or never computed)."""
    from plotsm.store import write_parquet

    folder, _ = utm
    with Store(folder, read_only=True) as store:
        paths = {a: write_parquet(store, tmp_path, a, pd.Timestamp(when).to_pydatetime()) for a, when in DATES.items()}
    assert paths["A2"] == tmp_path / "parquet" / "moisture" / "year=2024" / "month=4" / "A2.parquet"
    table = pq.read_table(paths["A2"])
    names = table.schema.names
    assert names[names.index("mv_std_pct"):names.index("mv_std_pct") + 5] == ["mv_std_pct", *INTERVALS]
    assert [table.schema.field(c).type for c in INTERVALS] == [pa.float64()] * 4
    got = {r["parcel_id"]: r for r in table.to_pylist()}
    assert tuple(got["15"][c] for c in INTERVALS) == (20.5, 23.0, 19.25, 24.5)
    assert tuple(got["14"][c] for c in INTERVALS) == (None,) * 4  # too_few_pixels
    mv = np.array([r["mv_pct"] for r in got.values() if r["status"] == "ok"])
    lo68 = np.array([r["mv_lo68_pct"] for r in got.values() if r["status"] == "ok"])
    np.testing.assert_array_equal(lo68, mv - 1.0)
    old = pq.read_table(paths["A1"])
    assert [old.schema.field(c).type for c in INTERVALS] == [pa.float64()] * 4
    assert all(old.column(c).null_count == old.num_rows for c in INTERVALS)
