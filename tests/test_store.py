"""The DuckDB store: schema and version, parcels, transactional acquisitions, runs and the named queries.

Everything is built from small synthetic tables whose expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS, Geod

from plotsm.errors import InputError, ModelError, StorageError, UsageError
from plotsm.resources import sql_dir
from plotsm.store import SCHEMA_VERSION, STORE_FILENAME, Store, list_queries

UTM31 = "EPSG:32631"
STATUSES = ("ok", "ndvi_above_max", "slope_above_max", "too_few_pixels", "no_data", "outside_domain")
INTERVALS = ("mv_lo68_pct", "mv_hi68_pct", "mv_lo95_pct", "mv_hi95_pct")
NO_INTERVALS = dict.fromkeys(INTERVALS)

# ------------------------------------------------------------------------------------------------ helpers


def grid_parcels(n: int = 5, crs: str = UTM31) -> gpd.GeoDataFrame:
    """``n`` rectangles 100 m × 200 m in a row along UTM 31N's central meridian, ids p1..pn."""
    x0 = 500_000.0 + 150.0 * np.arange(n)
    geoms = shapely.box(x0, 4_800_000.0, x0 + 100.0, 4_800_200.0)
    return gpd.GeoDataFrame(
        {"parcel_id": [f"p{i + 1}" for i in range(n)], "crop": ["wheat", "maize", "wheat", "fallow", "barley"][:n],
         "yield_t": [7.5, np.nan, 6.25, 0.0, 1e-3][:n]},
        geometry=geoms, crs=crs,
    )


def observations(parcel_ids: list[str], vv_linear: float = 0.1, n_valid: int = 50) -> pd.DataFrame:
    n = len(parcel_ids)
    return pd.DataFrame({
        "parcel_id": parcel_ids,
        "n_valid": np.full(n, n_valid),
        "n_pixels": np.full(n, 60),
        "valid_fraction": np.full(n, n_valid / 60),
        "vv_linear_mean": np.full(n, vv_linear),
        "vv_linear_std": np.full(n, 0.02),
        "theta_deg": np.linspace(33.0, 39.0, n),
        "ndvi": np.full(n, 0.4),
        "slope_deg": np.full(n, np.nan),
    })


def fixed_moisture(values: dict[str, tuple[float | None, str]], network: str = "all"):
    """A moisture_fn answering ``values[parcel_id] = (mv_pct, status)`` for the parcels it is given."""

    def fn(inputs: pa.Table) -> pd.DataFrame:
        ids = inputs.column("parcel_id").to_pylist()
        return pd.DataFrame({
            "parcel_id": ids,
            "mv_pct": pd.array([values[i][0] for i in ids], dtype="Float64"),
            "network": network,
            "status": [values[i][1] for i in ids],
            "model_version": "test-1",
        })

    return fn


def acquisition(acq_id: str, when: str, **extra: object) -> dict[str, object]:
    return {
        "acquisition_id": acq_id, "datetime_utc": when, "platform": "S1A", "orbit_direction": "descending",
        "relative_orbit": 110, "inputs": [{"role": "vv", "path": f"/data/{acq_id}_vv.tif", "sha256": "ab" * 32}],
        "settings": {"apriori": "none", "masks": {"ndvi_max": 0.75}}, "apriori": "none", "network": "all", **extra,
    }


def rows(store: Store, text: str, params: dict | None = None) -> list[dict]:
    return store.sql(text, params).to_pylist()


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "out") as s:
        yield s


# Three acquisitions of five parcels; (mv_pct, status) per parcel.
SERIES = {
    "A1": ("2024-04-06T17:49:12Z", {"p1": (30.0, "ok"), "p2": (20.0, "ok"), "p3": (25.0, "ok"), "p4": (11.5, "ok"),
                                    "p5": (17.0, "ok")}),
    "A2": ("2024-04-18T17:49:12Z", {"p1": (28.0, "ok"), "p2": (10.0, "ok"), "p3": (None, "ndvi_above_max"),
                                    "p4": (14.0, "ok"), "p5": (None, "too_few_pixels")}),
    # given in CEST: 07:00+02:00 is 05:00 UTC on the same day
    "A3": ("2024-04-30T07:00:00+02:00", {"p1": (12.0, "ok"), "p2": (None, "no_data"), "p3": (24.0, "ok"),
                                         "p4": (15.0, "ok"), "p5": (16.0, "ok")}),
}


@pytest.fixture
def series(store: Store) -> Store:
    store.write_parcels(grid_parcels())
    for acq_id, (when, values) in SERIES.items():
        store.write_acquisition(acquisition(acq_id, when), observations(list(values)), fixed_moisture(values))
    return store


# ------------------------------------------------------------------------------------------------ schema


def test_schema_created_with_version(tmp_path: Path):
    with Store(tmp_path / "new" / "out") as s:
        assert s.path == tmp_path / "new" / "out" / STORE_FILENAME and s.path.is_file()
        assert s.schema_version == SCHEMA_VERSION == 5
        tables = {r["table_name"] for r in rows(s, "SELECT table_name FROM information_schema.tables")}
        assert {"meta", "parcels", "parcels_retired", "acquisitions", "observations", "moisture", "runs"} <= tables
    with Store(tmp_path / "new" / "out") as s:  # reopening applies the schema again without change
        assert rows(s, "SELECT count(*) AS n FROM meta WHERE key = 'schema_version'") == [{"n": 1}]


def test_schema_file_records_the_code_version():
    text = (sql_dir() / "schema.sql").read_text()
    assert re.search(r"\('schema_version', '(\d+)'\)", text).group(1) == str(SCHEMA_VERSION)


def test_version_1_store_is_migrated(tmp_path: Path):
    """A store written by schema version 1 (tests/data/store_schema_v1.sql, the file as it shipped) is upgraded by
    sql/migrations/002_acquisition_fingerprint.sql then 003_parcel_history_ndvi_gap.sql on the first write open,
    keeping its rows; a read-only open of an old store asks for that upgrade instead."""
    import duckdb

    path = tmp_path / STORE_FILENAME
    con = duckdb.connect(str(path))
    con.execute((Path(__file__).parent / "data" / "store_schema_v1.sql").read_text())
    con.execute("INSERT INTO acquisitions VALUES ('A1', TIMESTAMP '2024-04-06 17:49:12', 'S1A', 'ascending', 88, "
                "'[]', '{}', 'none', 'all')")
    con.close()
    with pytest.raises(StorageError, match=r"older than this plotsm's \(5\)\. Open it once for writing"):
        Store(tmp_path, read_only=True)
    with Store(tmp_path) as s:
        assert s.schema_version == 5
        got = rows(s, "SELECT acquisition_id, relative_orbit, fingerprint, apriori_reason, ndvi_gap_days "
                      "FROM acquisitions")
        assert got == [{"acquisition_id": "A1", "relative_orbit": 88, "fingerprint": None, "apriori_reason": None,
                        "ndvi_gap_days": None}]
        assert rows(s, "SELECT count(*) AS n FROM parcels_retired") == [{"n": 0}]


def test_version_2_store_is_migrated(tmp_path: Path):
    """A version-2 store (v1 + migration 002, as plotsm 0.1 wrote it) gets parcels_retired and ndvi_gap_days, and
    keeps its parcels and acquisitions."""
    import duckdb

    con = duckdb.connect(str(tmp_path / STORE_FILENAME))
    con.execute((Path(__file__).parent / "data" / "store_schema_v1.sql").read_text())
    con.execute((sql_dir() / "migrations" / "002_acquisition_fingerprint.sql").read_text())
    con.execute("INSERT INTO acquisitions VALUES ('A1', TIMESTAMP '2024-04-06 17:49:12', 'S1A', 'ascending', 88, "
                "'[]', '{}', 'none', 'all', 'f00', 'set by --apriori none')")
    con.execute("INSERT INTO parcels VALUES ('p1', '{}', 1.0, ''::BLOB)")
    con.close()
    with Store(tmp_path) as s:
        assert s.schema_version == 5
        assert rows(s, "SELECT acquisition_id, fingerprint, ndvi_gap_days FROM acquisitions") == [
            {"acquisition_id": "A1", "fingerprint": "f00", "ndvi_gap_days": None}]
        assert rows(s, "SELECT parcel_id FROM parcels") == [{"parcel_id": "p1"}]


def test_version_3_store_is_migrated_keeping_its_history(tmp_path: Path):
    """A version-3 store (v1 + migrations 002 and 003, as plotsm wrote it before uncertainties) gets mv_std_pct and
    method by sql/migrations/004_moisture_uncertainty_method.sql: every moisture row is kept, as 'single' with no
    uncertainty (none is invented for history), and the table takes the checks of sql/schema.sql."""
    import duckdb

    con = duckdb.connect(str(tmp_path / STORE_FILENAME))
    con.execute((Path(__file__).parent / "data" / "store_schema_v1.sql").read_text())
    for step in ("002_acquisition_fingerprint.sql", "003_parcel_history_ndvi_gap.sql"):
        con.execute((sql_dir() / "migrations" / step).read_text())
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("3",)]
    con.execute("INSERT INTO acquisitions (acquisition_id, datetime_utc, inputs, settings) VALUES "
                "('A1', TIMESTAMP '2024-04-06 17:49:12', '[]', '{}')")
    con.execute("INSERT INTO moisture VALUES ('p1', 'A1', 21.5, 'all', 'ok', 'v1'), "
                "('p2', 'A1', NULL, 'all', 'no_data', 'v1')")
    con.close()
    with Store(tmp_path) as s:
        assert s.schema_version == 5
        assert rows(s, "SELECT * FROM moisture ORDER BY parcel_id") == [
            {"parcel_id": "p1", "acquisition_id": "A1", "mv_pct": 21.5, "network": "all", "status": "ok",
             "model_version": "v1", "mv_std_pct": None, "method": "single", **NO_INTERVALS},
            {"parcel_id": "p2", "acquisition_id": "A1", "mv_pct": None, "network": "all", "status": "no_data",
             "model_version": "v1", "mv_std_pct": None, "method": "single", **NO_INTERVALS}]
        with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
            s.con.execute("UPDATE moisture SET mv_std_pct = 1.0 WHERE parcel_id = 'p2'")
        with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
            s.con.execute("UPDATE moisture SET method = 'joint' WHERE parcel_id = 'p1'")
        with pytest.raises(duckdb.ConstraintException, match="Duplicate key"):
            s.con.execute("INSERT INTO moisture (parcel_id, acquisition_id, status) VALUES ('p1', 'A1', 'no_data')")
    with Store(tmp_path) as s:  # the migrated table is the one schema.sql describes: reopening changes nothing
        fresh = Store(tmp_path / "fresh")
        columns = "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns " \
                  "WHERE table_name = 'moisture' ORDER BY ordinal_position"
        assert rows(s, columns) == rows(fresh, columns)
        fresh.close()


def version_4_store(path: Path) -> None:
    """A version-4 store at ``path`` as plotsm wrote it before credible intervals (v1 + migrations 002 to 004),
    with one acquisition: p1 'ok' single-date, p2 'ok' revised by the joint inversion, p3 masked."""
    con = duckdb.connect(str(path / STORE_FILENAME))
    con.execute((Path(__file__).parent / "data" / "store_schema_v1.sql").read_text())
    for step in ("002_acquisition_fingerprint.sql", "003_parcel_history_ndvi_gap.sql",
                 "004_moisture_uncertainty_method.sql"):
        con.execute((sql_dir() / "migrations" / step).read_text())
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("4",)]
    assert "mv_lo68_pct" not in con.sql("SELECT * FROM moisture").columns
    con.execute("INSERT INTO acquisitions (acquisition_id, datetime_utc, inputs, settings) VALUES "
                "('A1', TIMESTAMP '2024-04-06 17:49:12', '[]', '{}')")
    con.execute("INSERT INTO moisture VALUES ('p1', 'A1', 21.5, 'all', 'ok', 'v1', 2.0, 'single'), "
                "('p2', 'A1', 18.25, 'all', 'ok', 'v1', 1.5, 'temporal'), "
                "('p3', 'A1', NULL, 'all', 'no_data', 'v1', NULL, 'single')")
    con.close()


V4_ROWS = [
    {"parcel_id": "p1", "acquisition_id": "A1", "mv_pct": 21.5, "network": "all", "status": "ok",
     "model_version": "v1", "mv_std_pct": 2.0, "method": "single"},
    {"parcel_id": "p2", "acquisition_id": "A1", "mv_pct": 18.25, "network": "all", "status": "ok",
     "model_version": "v1", "mv_std_pct": 1.5, "method": "temporal"},
    {"parcel_id": "p3", "acquisition_id": "A1", "mv_pct": None, "network": "all", "status": "no_data",
     "model_version": "v1", "mv_std_pct": None, "method": "single"},
]


def test_version_4_store_is_migrated_keeping_its_history(tmp_path: Path):
    """A version-4 store gets the four credible-interval columns by sql/migrations/005_moisture_intervals.sql:
    every moisture row is kept with its estimate, uncertainty and method, its intervals NULL (none is invented
    for history), and the table takes the checks of sql/schema.sql."""
    version_4_store(tmp_path)
    with pytest.raises(StorageError, match=r"store schema version 4 is older than this plotsm's \(5\)"):
        Store(tmp_path, read_only=True)
    with Store(tmp_path) as s:
        assert s.schema_version == 5
        assert rows(s, "SELECT * FROM moisture ORDER BY parcel_id") == [{**r, **NO_INTERVALS} for r in V4_ROWS]
        assert rows(s, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'moisture_v5'") == [
            {"n": 0}]
        for bad in ("mv_lo68_pct = 1, mv_hi68_pct = 2, mv_lo95_pct = 0, mv_hi95_pct = 3 WHERE parcel_id = 'p3'",
                    "mv_lo68_pct = 1 WHERE parcel_id = 'p1'",
                    "mv_lo68_pct = 1, mv_hi68_pct = 2, mv_lo95_pct = 1.5, mv_hi95_pct = 3 WHERE parcel_id = 'p1'"):
            with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
                s.con.execute(f"UPDATE moisture SET {bad}")
        s.con.execute("UPDATE moisture SET mv_lo68_pct = 20, mv_hi68_pct = 23, mv_lo95_pct = 19, mv_hi95_pct = 24.5 "
                      "WHERE parcel_id = 'p1'")
        assert rows(s, f"SELECT {', '.join(INTERVALS)} FROM moisture WHERE parcel_id = 'p1'") == [
            {"mv_lo68_pct": 20.0, "mv_hi68_pct": 23.0, "mv_lo95_pct": 19.0, "mv_hi95_pct": 24.5}]
    with Store(tmp_path) as s:  # the migrated table is the one schema.sql describes: reopening changes nothing
        assert s.schema_version == 5
        with Store(tmp_path / "fresh") as fresh:
            columns = "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns " \
                      "WHERE table_name = 'moisture' ORDER BY ordinal_position"
            assert rows(s, columns) == rows(fresh, columns)
            assert [r["column_name"] for r in rows(s, columns)][-4:] == list(INTERVALS)
            checks = "SELECT constraint_text FROM duckdb_constraints() WHERE table_name = 'moisture' " \
                     "AND constraint_type = 'CHECK' ORDER BY constraint_text"
            assert rows(s, checks) == rows(fresh, checks)


def test_failed_migration_leaves_the_version_4_store(tmp_path: Path, monkeypatch):
    """The 4 → 5 step runs in one transaction with its version bump: a failure after the table was rebuilt and
    the version set (here an error appended to a copy of the migration) leaves the version-4 store as it was."""
    import shutil

    import plotsm.store.connection as connection

    sql = tmp_path / "sql"
    shutil.copytree(sql_dir(), sql)
    step = sql / "migrations" / "005_moisture_intervals.sql"
    step.write_text(step.read_text() + "\nSELECT error('disk full half-way');\n")
    monkeypatch.setattr(connection, "sql_dir", lambda: sql)
    (tmp_path / "out").mkdir()
    version_4_store(tmp_path / "out")
    with pytest.raises(duckdb.Error, match="disk full half-way"):
        Store(tmp_path / "out")
    con = duckdb.connect(str(tmp_path / "out" / STORE_FILENAME))
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("4",)]
        got = con.sql("SELECT * FROM moisture ORDER BY parcel_id")
        assert got.columns == list(V4_ROWS[0]) and [dict(zip(got.columns, r)) for r in got.fetchall()] == V4_ROWS
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'moisture_v5'"
                           ).fetchall() == [(0,)]
    finally:
        con.close()
    monkeypatch.undo()
    with Store(tmp_path / "out") as s:  # the shipped migration then upgrades it
        assert s.schema_version == 5 and rows(s, "SELECT * FROM moisture ORDER BY parcel_id") == [
            {**r, **NO_INTERVALS} for r in V4_ROWS]


def test_newer_schema_is_refused(tmp_path: Path):
    with Store(tmp_path) as s:
        s.sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    newer = r"plotsm\.duckdb: store schema version 99 is newer than this plotsm knows \(5\)\. Upgrade plotsm"
    with pytest.raises(StorageError, match=newer):
        Store(tmp_path)


def test_foreign_duckdb_file_is_refused(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / STORE_FILENAME))
    con.execute("CREATE TABLE other (x INTEGER)")
    con.close()
    with pytest.raises(StorageError, match="a DuckDB file but not a plotsm store"):
        Store(tmp_path)


def test_garbage_file_is_a_storage_error(tmp_path: Path):
    (tmp_path / STORE_FILENAME).write_text("not a database")
    with pytest.raises(StorageError, match=r"plotsm\.duckdb: cannot open the store"):
        Store(tmp_path)


def test_read_only_needs_an_existing_store(tmp_path: Path):
    with pytest.raises(StorageError, match="no plotsm store here"):
        Store(tmp_path / "missing", read_only=True)


def test_read_only_store_refuses_writes(tmp_path: Path):
    Store(tmp_path).close()
    with Store(tmp_path, read_only=True) as s, pytest.raises(UsageError, match="opened read-only"):
        s.write_parcels(grid_parcels())


def test_closed_store(tmp_path: Path):
    s = Store(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(UsageError, match="the store is closed"):
        s.sql("SELECT 1")


# ----------------------------------------------------------------------------------------------- parcels


def test_write_parcels_round_trip(store: Store):
    gdf = grid_parcels()
    assert store.write_parcels(gdf) == 5
    back = store.read_parcels()
    assert back.crs == CRS(UTM31) and store.parcels_crs == CRS(UTM31)
    assert list(back["parcel_id"]) == ["p1", "p2", "p3", "p4", "p5"]
    assert list(back["crop"]) == list(gdf["crop"])
    assert back["yield_t"].tolist()[0] == 7.5 and math.isnan(back["yield_t"][1]) and back["yield_t"][4] == 1e-3
    stored = store.sql("SELECT geometry_wkb FROM parcels ORDER BY parcel_id").column(0).to_pylist()
    assert stored == list(shapely.to_wkb(gdf.geometry.values, flavor="iso"))  # byte for byte
    assert shapely.equals_exact(back.geometry.values, gdf.geometry.values, tolerance=0).all()


def test_integer_ids_are_stored_as_text(store: Store):
    gdf = grid_parcels(3).assign(parcel_id=[10, 2, 33])
    store.write_parcels(gdf)
    assert store.sql("SELECT parcel_id FROM parcels ORDER BY parcel_id").column(0).to_pylist() == ["10", "2", "33"]


def test_attributes_json(store: Store):
    store.write_parcels(grid_parcels(2)[["parcel_id", "crop", "geometry"]])
    got = rows(store, "SELECT parcel_id, attributes->>'$.crop' AS crop FROM parcels ORDER BY 1")
    assert got == [{"parcel_id": "p1", "crop": "wheat"}, {"parcel_id": "p2", "crop": "maize"}]
    store.write_parcels(grid_parcels(2)[["parcel_id", "geometry"]])  # no attributes: an empty object
    assert store.sql("SELECT DISTINCT attributes FROM parcels").column(0).to_pylist() == ["{}"]


def test_area_is_equal_area(store: Store):
    # 100 m × 200 m in UTM 31N on its central meridian, where the scale factor is 0.9996: true area 20000 / k².
    store.write_parcels(grid_parcels(1))
    (area,) = store.sql("SELECT area_m2 FROM parcels").column(0).to_pylist()
    assert area == pytest.approx(20_000 / 0.9996**2, rel=1e-6)
    # geographic parcels: the geodesic area on the WGS 84 ellipsoid (pyproj.Geod) is the reference
    box = shapely.box(2.0, 45.0, 2.01, 45.005)
    store.write_parcels(gpd.GeoDataFrame({"parcel_id": ["g"]}, geometry=[box], crs="EPSG:4326"))
    geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(box)[0])
    (area,) = store.sql("SELECT area_m2 FROM parcels").column(0).to_pylist()
    assert area == pytest.approx(geodesic, rel=1e-6)


def test_write_parcels_replaces_the_set(store: Store):
    store.write_parcels(grid_parcels(5))
    store.write_parcels(grid_parcels(2))
    assert store.sql("SELECT parcel_id FROM parcels ORDER BY 1").column(0).to_pylist() == ["p1", "p2"]


def test_crs_argument(store: Store):
    gdf = grid_parcels(2).set_crs(None, allow_override=True)
    store.write_parcels(gdf, crs="EPSG:32631")
    assert store.parcels_crs.to_epsg() == 32631
    with pytest.raises(InputError, match=r"parcels: no CRS\. Pass crs="):
        store.write_parcels(gdf)
    with pytest.raises(InputError, match=r"crs=EPSG:2154 differs from the GeoDataFrame's EPSG:32631"):
        store.write_parcels(grid_parcels(2), crs="EPSG:2154")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.assign(parcel_id=["p1", "p1", "p3", "p4", "p5"]), r"duplicate id\(s\) in 'parcel_id': p1"),
        (lambda g: g.assign(parcel_id=["p1", None, "p3", "p4", "p5"]), r"1 null value\(s\) in id column"),
        (lambda g: g.drop(columns="parcel_id"), r"no id column 'parcel_id' \(columns: crop, yield_t, geometry\)"),
        (lambda g: g.iloc[:0], "the table is empty"),
        (lambda g: pd.DataFrame(g), "expected a GeoDataFrame"),
    ],
)
def test_write_parcels_errors_keep_the_previous_set(store: Store, change, message):
    store.write_parcels(grid_parcels(2))
    with pytest.raises(InputError, match=message):
        store.write_parcels(change(grid_parcels()))
    assert store.sql("SELECT count(*) FROM parcels").column(0).to_pylist() == [2]


def test_custom_id_column(store: Store):
    gdf = grid_parcels(2).rename(columns={"parcel_id": "ID_PARCEL"})
    store.write_parcels(gdf, id_column="ID_PARCEL")
    assert list(store.read_parcels().columns) == ["parcel_id", "crop", "yield_t", "area_m2", "geometry"]


# Property tests: DuckDB round trips are lossless. One store for all examples (opening one per example is slow).
_coordinate = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, allow_infinity=False)


@st.composite
def polygons(draw) -> shapely.Polygon:
    x, y = draw(_coordinate), draw(_coordinate)
    w, h = draw(st.floats(1e-6, 1e4)), draw(st.floats(1e-6, 1e4))
    holes = [[(x + w / 4, y + h / 4), (x + w / 2, y + h / 4), (x + w / 4, y + h / 2)]] if draw(st.booleans()) else []
    return shapely.Polygon([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], holes)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("property")) as s:
        yield s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    geoms=st.lists(polygons(), min_size=1, max_size=6),
    texts=st.lists(st.text(max_size=12), min_size=6, max_size=6),
    numbers=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=6, max_size=6),
)
def test_parcels_round_trip_is_lossless(shared_store: Store, geoms, texts, numbers):
    n = len(geoms)
    gdf = gpd.GeoDataFrame(
        {"parcel_id": [f"id-{i}-{t}" for i, t in enumerate(texts[:n])], "label": texts[:n], "value": numbers[:n]},
        geometry=geoms, crs=UTM31,
    )
    shared_store.write_parcels(gdf)
    back = shared_store.read_parcels().set_index("parcel_id").loc[gdf["parcel_id"]]
    assert list(shapely.to_wkb(back.geometry.values)) == list(shapely.to_wkb(gdf.geometry.values))
    assert back["label"].tolist() == texts[:n]
    assert back["value"].tolist() == numbers[:n]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.floats(allow_infinity=False, width=64) | st.none(), min_size=1, max_size=8),
    counts=st.lists(st.integers(0, 2**40), min_size=8, max_size=8),
)
def test_observations_round_trip_is_lossless(shared_store: Store, values, counts):
    n = len(values)
    ids = [f"q{i}" for i in range(n)]
    obs = observations(ids).assign(vv_linear_mean=[np.nan if v is None else v for v in values], n_valid=counts[:n])
    shared_store.write_acquisition(acquisition("P", "2024-01-01T00:00:00Z"), obs)
    got = shared_store.query("model_inputs", {"acquisition_id": "P"}).to_pandas().set_index("parcel_id").loc[ids]
    stored = shared_store.sql(
        "SELECT parcel_id, vv_linear_mean FROM observations WHERE acquisition_id = 'P'"
    ).to_pandas().set_index("parcel_id").loc[ids]
    for v, mean, vv_db in zip(values, stored["vv_linear_mean"], got["vv_db"], strict=True):
        if v is None or math.isnan(v):  # NaN is stored as NULL
            assert math.isnan(mean) and math.isnan(vv_db)
        else:
            assert mean == v
            assert (math.isnan(vv_db) if v <= 0 else vv_db == pytest.approx(10 * math.log10(v), rel=1e-12))
    assert got["n_valid"].tolist() == counts[:n]


# ------------------------------------------------------------------------------------------- acquisitions


def test_write_acquisition(store: Store):
    store.write_parcels(grid_parcels(3))
    values = {"p1": (21.5, "ok"), "p2": (None, "ndvi_above_max"), "p3": (None, "no_data")}
    obs = observations(["p1", "p2", "p3"], vv_linear=0.01)
    written = store.write_acquisition(acquisition("A", "2024-04-06T19:49:12+02:00"), obs, fixed_moisture(values))
    assert (written.n_observations, written.n_moisture) == (3, 3)
    (acq,) = rows(store, "SELECT * FROM acquisitions")
    assert acq["datetime_utc"] == datetime(2024, 4, 6, 17, 49, 12)  # UTC
    assert json.loads(acq["inputs"]) == [{"role": "vv", "path": "/data/A_vv.tif", "sha256": "ab" * 32}]
    assert json.loads(acq["settings"]) == {"apriori": "none", "masks": {"ndvi_max": 0.75}}
    assert (acq["platform"], acq["orbit_direction"], acq["relative_orbit"]) == ("S1A", "descending", 110)
    o = rows(store, "SELECT * FROM observations ORDER BY parcel_id")
    assert [r["vv_db"] for r in o] == [pytest.approx(-20.0)] * 3  # 10·log10(0.01)
    assert o[0]["slope_deg"] is None  # NaN → NULL
    m = rows(store, "SELECT parcel_id, mv_pct, status, network, model_version FROM moisture ORDER BY parcel_id")
    assert m == [
        {"parcel_id": "p1", "mv_pct": 21.5, "status": "ok", "network": "all", "model_version": "test-1"},
        {"parcel_id": "p2", "mv_pct": None, "status": "ndvi_above_max", "network": "all", "model_version": "test-1"},
        {"parcel_id": "p3", "mv_pct": None, "status": "no_data", "network": "all", "model_version": "test-1"},
    ]


def test_observations_as_arrow_and_without_optional_columns(store: Store):
    obs = pa.table({"parcel_id": [1, 2], "n_valid": [3, 0], "vv_linear_mean": [0.1, float("nan")],
                    "theta_deg": [35.0, 36.0], "ndvi": [0.2, 0.3]})
    store.write_acquisition({"acquisition_id": "B", "datetime_utc": datetime(2024, 5, 1, tzinfo=timezone.utc)}, obs)
    got = rows(store, "SELECT parcel_id, n_pixels, vv_linear_mean, vv_db, slope_deg FROM observations ORDER BY 1")
    assert got == [
        {"parcel_id": "1", "n_pixels": None, "vv_linear_mean": 0.1, "vv_db": pytest.approx(-10.0), "slope_deg": None},
        {"parcel_id": "2", "n_pixels": None, "vv_linear_mean": None, "vv_db": None, "slope_deg": None},
    ]
    assert rows(store, "SELECT inputs, settings FROM acquisitions") == [{"inputs": "[]", "settings": "{}"}]


def test_moisture_fn_gets_the_model_inputs(store: Store):
    seen: list[pa.Table] = []

    def fn(inputs: pa.Table) -> pd.DataFrame:
        seen.append(inputs)
        return fixed_moisture({"p1": (10.0, "ok"), "p2": (11.0, "ok")})(inputs)

    obs = observations(["p2", "p1"], vv_linear=0.05).assign(slope_deg=[3.0, np.nan])
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), obs, fn)
    (inputs,) = seen
    assert inputs.column_names == ["parcel_id", "theta_deg", "ndvi", "vv_db", "slope_deg", "n_valid"]
    got = inputs.to_pylist()
    assert [r["parcel_id"] for r in got] == ["p1", "p2"]  # ordered by parcel_id
    assert got[0]["vv_db"] == pytest.approx(10 * math.log10(0.05))
    assert (got[0]["slope_deg"], got[1]["slope_deg"]) == (None, 3.0)
    assert (got[0]["theta_deg"], got[1]["theta_deg"]) == (39.0, 33.0)


def test_rerun_replaces_rows_of_the_parcels_written_and_keeps_the_others(store: Store):
    """Re-writing an acquisition replaces its row and the rows of the parcels it is given; the rows of a parcel
    not in the new table (a parcel retired from the set) are history and stay (issue: stored history is never
    dropped implicitly; `plotsm delete` removes whole acquisitions)."""
    ids = ["p1", "p2", "p3"]
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            fixed_moisture({i: (10.0, "ok") for i in ids}))
    store.write_acquisition(acquisition("B", "2024-04-18T17:49:12Z"), observations(ids),
                            fixed_moisture({i: (30.0, "ok") for i in ids}))
    # the same acquisition again, with new values and one parcel fewer
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z", platform="S1B"), observations(ids[:2], n_valid=7),
                            fixed_moisture({i: (12.0, "ok") for i in ids}))
    assert rows(store, "SELECT acquisition_id, platform FROM acquisitions ORDER BY 1") == [
        {"acquisition_id": "A", "platform": "S1B"}, {"acquisition_id": "B", "platform": "S1A"}]
    first_n_valid = observations(ids).loc[2, "n_valid"]
    assert rows(store, "SELECT parcel_id, n_valid FROM observations WHERE acquisition_id = 'A' ORDER BY 1") == [
        {"parcel_id": "p1", "n_valid": 7}, {"parcel_id": "p2", "n_valid": 7},
        {"parcel_id": "p3", "n_valid": first_n_valid}]
    per_parcel = "SELECT acquisition_id, parcel_id, mv_pct FROM moisture ORDER BY 1, 2"
    assert rows(store, per_parcel) == [
        {"acquisition_id": "A", "parcel_id": "p1", "mv_pct": 12.0},
        {"acquisition_id": "A", "parcel_id": "p2", "mv_pct": 12.0},
        {"acquisition_id": "A", "parcel_id": "p3", "mv_pct": 10.0},
        *[{"acquisition_id": "B", "parcel_id": p, "mv_pct": 30.0} for p in ids]]


def test_delete_acquisitions_in_one_transaction(store: Store):
    ids = ["p1", "p2"]
    for acq, day in (("A", "2024-04-06"), ("B", "2024-04-18"), ("C", "2024-04-30")):
        store.write_acquisition(acquisition(acq, f"{day}T17:49:12Z"), observations(ids),
                                fixed_moisture({i: (10.0, "ok") for i in ids}))
    with pytest.raises(InputError, match=r"acquisition\(s\) Z not in .*\(3 stored, e\.g\. C, B, A\)\. Nothing was "
                                         r"deleted"):
        store.delete_acquisitions(["A", "Z"])
    assert rows(store, "SELECT count(*) AS n FROM moisture") == [{"n": 6}]
    assert store.delete_acquisitions(["A", "C"]) == {"A": 2, "C": 2}
    for table in ("acquisitions", "observations", "moisture"):
        assert rows(store, f"SELECT DISTINCT acquisition_id FROM {table}") == [{"acquisition_id": "B"}]


def _snapshot(store: Store) -> dict[str, list[dict]]:
    return {t: rows(store, f"SELECT * FROM {t} ORDER BY ALL") for t in ("acquisitions", "observations", "moisture")}


def _boom(inputs: pa.Table) -> pd.DataFrame:
    raise RuntimeError("boom: the network failed half-way")


@pytest.mark.parametrize(
    ("obs", "fn", "error", "message"),
    [
        (observations(["p1", "p2"], n_valid=1), _boom, RuntimeError, "boom: the network failed half-way"),
        (observations(["p1", "p2"]), fixed_moisture({"p1": (5.0, "wet"), "p2": (5.0, "ok")}), ModelError,
         r"moisture of A: .*CHECK.*status one of ok"),
        (observations(["p1", "p2"]), fixed_moisture({"p1": (5.0, "no_data"), "p2": (5.0, "ok")}), ModelError,
         "mv_pct and mv_std_pct null unless status is ok"),
        (observations(["p1", "p2"]), lambda t: fixed_moisture({"p1": (5.0, "ok")})(t.slice(0, 1)), ModelError,
         "moisture_fn returned 1 rows for 2 model inputs"),
        (observations(["p1", "p2"]), lambda t: pd.DataFrame({"parcel_id": ["p1"]}), ModelError,
         r"moisture_fn returned no column\(s\) mv_pct, network, status, model_version"),
        (observations(["p1", "p1"]), None, InputError, "observations of A: .*Each parcel_id must appear once"),
        (observations(["p1"]).drop(columns=["ndvi", "theta_deg"]), None, InputError,
         r"missing column\(s\) theta_deg, ndvi"),
        ([1, 2, 3], None, InputError, "observations: expected a pandas DataFrame or pyarrow Table, got list"),
    ],
    ids=["fn-raises", "bad-status", "value-when-masked", "rows-missing", "columns-missing", "duplicate-ids",
         "obs-columns-missing", "not-a-table"],
)
def test_failure_leaves_the_previous_state(store: Store, obs, fn, error, message):
    ids = ["p1", "p2", "p3"]
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            fixed_moisture({i: (10.0, "ok") for i in ids}))
    before = _snapshot(store)
    with pytest.raises(error, match=message):
        store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z", platform="S1B"), obs, fn)
    assert _snapshot(store) == before
    # and the store is still usable
    store.write_acquisition(acquisition("C", "2024-04-07T00:00:00Z"), observations(ids))
    assert store.sql("SELECT count(*) FROM observations").column(0).to_pylist() == [6]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"colour": "red"}, UsageError, r"acquisition: unknown key\(s\) colour; known: acquisition_id, datetime_utc"),
        ({"datetime_utc": None}, InputError, "acquisition: 'datetime_utc' is required"),
        ({"datetime_utc": "yesterday"}, InputError, "acquisition A: 'yesterday' is not a date-time"),
        ({"relative_orbit": "one"}, InputError, "relative_orbit 'one' is not an integer"),
        ({"settings": {"x": float("nan")}}, InputError, "acquisition settings: cannot be stored as JSON"),
    ],
)
def test_bad_acquisition_records(store: Store, change, error, message):
    with pytest.raises(error, match=message):
        store.write_acquisition({**acquisition("A", "2024-04-06T17:49:12Z"), **change}, observations(["p1"]))
    assert store.sql("SELECT count(*) FROM acquisitions").column(0).to_pylist() == [0]


# ------------------------------------------------------------------------------------------------ runs


def test_write_run(store: Store):
    run_id = store.write_run(
        command="plotsm run --out x", started_utc="2024-06-01T10:00:00Z",
        finished_utc=datetime(2024, 6, 1, 12, 0, 30, tzinfo=timezone.utc),
        settings={"apriori": "dry", "out": Path("x")}, timings={"zonal": 1.5, "total": 2.0},
    )
    (run,) = rows(store, "SELECT * FROM runs")
    assert run["run_id"] == run_id and len(run_id) == 32
    assert (run["started_utc"], run["finished_utc"]) == (datetime(2024, 6, 1, 10), datetime(2024, 6, 1, 12, 0, 30))
    assert json.loads(run["settings"]) == {"apriori": "dry", "out": "x"}
    assert json.loads(run["timings"]) == {"zonal": 1.5, "total": 2.0}
    assert run["command"] == "plotsm run --out x" and run["plotsm_version"]
    store.write_run(command="again", started_utc="2024-06-02", run_id=run_id)  # same id: replaced
    assert rows(store, "SELECT command, finished_utc FROM runs") == [{"command": "again", "finished_utc": None}]


# --------------------------------------------------------------------------------------------- queries


def test_list_queries_documents_every_parameter():
    infos = {q.name: q for q in list_queries()}
    assert {"history", "latest", "summary", "drying", "model_inputs"} <= set(infos)
    assert infos["drying"].parameters == ("date_from", "date_to", "limit")
    assert infos["history"].parameters == ("parcel_id",)
    assert infos["latest"].parameters == infos["summary"].parameters == ()
    for q in infos.values():
        text = q.path.read_text()
        assert text.startswith("-- ") and q.description and len(q.description) < 130, q.name
        header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
        for p in q.parameters:
            assert f"${p}" in header, f"{q.name}.sql does not document ${p}"
        if not q.parameters:
            assert "Parameters: none." in header, q.name


def test_history(series: Store):
    got = series.query("history", {"parcel_id": "p2"}).to_pylist()
    assert [(r["acquisition_id"], r["mv_pct"], r["status"], r["network"]) for r in got] == [
        ("A1", 20.0, "ok", "all"), ("A2", 10.0, "ok", "all"), ("A3", None, "no_data", "all")]
    # the moisture tables of SERIES have no mv_std_pct and method: stored as NULL and 'single'
    assert [(r["mv_std_pct"], r["method"]) for r in got] == [(None, "single")] * 3
    assert [r["datetime_utc"] for r in got] == [
        datetime(2024, 4, 6, 17, 49, 12), datetime(2024, 4, 18, 17, 49, 12), datetime(2024, 4, 30, 5, 0)]
    assert json.loads(got[2]["inputs"])[0]["path"] == "/data/A3_vv.tif"
    assert got[0]["vv_db"] == pytest.approx(-10.0) and got[0]["n_valid"] == 50
    with pytest.raises(InputError, match=r"^parcel 'nope' is not in the store"):  # was an empty result
        series.query("history", {"parcel_id": "nope"})


def test_unknown_parcel_or_acquisition_is_an_input_error(series: Store):
    with pytest.raises(InputError, match=r"^parcel 'nope' is not in the store \(5 parcels, e\.g\. p1, p2\)\. List them "
                       r'with: plotsm sql --query "SELECT parcel_id FROM parcels"$'):
        series.query("history", {"parcel_id": "nope"})
    listing = (r"\(3 acquisitions, e\.g\. A1, A2\)\. "
               r'List them with: plotsm sql --query "SELECT acquisition_id FROM acquisitions"$')
    for name in ("model_inputs", "moisture_parquet"):
        with pytest.raises(InputError, match=r"^acquisition 'A9' is not in the store " + listing):
            series.query(name, {"acquisition_id": "A9"})
    with pytest.raises(InputError, match=r"^parcel 1 is not in the store"):  # ids are compared as text
        series.query("history", {"parcel_id": 1})


def test_known_parcel_or_acquisition_without_rows(store: Store):
    store.write_parcels(grid_parcels())
    assert store.query("history", {"parcel_id": "p1"}).num_rows == 0
    with pytest.raises(InputError, match=r"^acquisition 'A1' is not in the store \(0 acquisitions\)\. List them"):
        store.query("model_inputs", {"acquisition_id": "A1"})
    store.write_acquisition(acquisition("A1", "2024-04-06T17:49:12Z"), observations(["p1", "p2"]))
    assert store.query("model_inputs", {"acquisition_id": "A1"}).num_rows == 2
    assert store.query("history", {"parcel_id": "p3"}).num_rows == 0


def test_parcel_that_left_the_set_keeps_its_history(series: Store):
    series.write_parcels(grid_parcels(3))  # p4 and p5 leave the parcel set; their rows stay
    assert series.query("history", {"parcel_id": "p5"}).num_rows == 3
    with pytest.raises(InputError, match=r"^parcel 'p6' is not in the store \(3 parcels, e\.g\. p1, p2\)"):
        series.query("history", {"parcel_id": "p6"})


def test_latest(series: Store):
    got = {r["parcel_id"]: r for r in series.query("latest").to_pylist()}
    assert list(got) == ["p1", "p2", "p3", "p4", "p5"]
    assert {k: (r["acquisition_id"], r["mv_pct"], r["status"]) for k, r in got.items()} == {
        "p1": ("A3", 12.0, "ok"), "p2": ("A3", None, "no_data"), "p3": ("A3", 24.0, "ok"),
        "p4": ("A3", 15.0, "ok"), "p5": ("A3", 16.0, "ok")}
    assert (got["p2"]["last_ok_mv_pct"], got["p2"]["last_ok_datetime_utc"]) == (10.0, datetime(2024, 4, 18, 17, 49, 12))
    assert got["p1"]["last_ok_mv_pct"] == 12.0
    assert (got["p1"]["mv_std_pct"], got["p1"]["method"], got["p2"]["last_ok_mv_std_pct"]) == (None, "single", None)
    series.revise_moisture(pd.DataFrame({"parcel_id": ["p2"], "acquisition_id": ["A2"], "mv_pct": [11.0],
                                         "mv_std_pct": [1.5]}))
    got = {r["parcel_id"]: r for r in series.query("latest").to_pylist()}
    assert (got["p2"]["last_ok_mv_pct"], got["p2"]["last_ok_mv_std_pct"]) == (11.0, 1.5)


def test_summary(series: Store):
    got = {r["acquisition_id"]: r for r in series.query("summary").to_pylist()}
    assert list(got) == ["A1", "A2", "A3"]
    # A3: ok values 12, 24, 15, 16 → sorted 12, 15, 16, 24; p25 = 12 + 0.75·3, median (15+16)/2, p75 = 16 + 0.25·8
    a3 = got["A3"]
    assert (a3["n_parcels"], a3["n_ok"], a3["n_no_data"]) == (5, 4, 1)
    assert (a3["mv_p25_pct"], a3["mv_median_pct"], a3["mv_p75_pct"]) == pytest.approx((14.25, 15.5, 18.0))
    assert (a3["mv_mean_pct"], a3["mv_min_pct"], a3["mv_max_pct"]) == pytest.approx((16.75, 12.0, 24.0))
    a2 = got["A2"]
    assert (a2["n_ok"], a2["n_ndvi_above_max"], a2["n_too_few_pixels"], a2["n_slope_above_max"]) == (3, 1, 1, 0)
    for acq_id, (_, values) in SERIES.items():
        ok = [mv for mv, status in values.values() if status == "ok"]
        r = got[acq_id]
        assert [r["mv_p25_pct"], r["mv_median_pct"], r["mv_p75_pct"]] == pytest.approx(np.percentile(ok, [25, 50, 75]))
        assert sum(r[f"n_{s}"] for s in STATUSES) == r["n_parcels"] == 5


def test_drying(series: Store):
    # 04-06 → 04-30: p1 30→12 (−18), p2 20→10 (A2, its last ok on or before 04-30: −10), p3 25→24 (−1),
    # p5 17→16 (−1), p4 11.5→15 got wetter (not listed). Ties are ordered by parcel_id.
    got = series.query("drying", {"date_from": "2024-04-06", "date_to": "2024-04-30", "limit": 10}).to_pylist()
    assert [(r["parcel_id"], r["change_pct"]) for r in got] == [
        ("p1", -18.0), ("p2", -10.0), ("p3", -1.0), ("p5", -1.0)]
    assert got[1]["datetime_to_utc"] == datetime(2024, 4, 18, 17, 49, 12)
    top = series.query("drying", {"date_from": "2024-04-06", "date_to": "2024-04-30", "limit": "2"})
    assert top.column("parcel_id").to_pylist() == ["p1", "p2"]
    # 04-17 → 04-18: the 04-18 acquisition counts for its own day; p3 and p5 have no ok value on 04-18 after A1
    got = series.query("drying", {"date_from": "2024-04-17", "date_to": "2024-04-18", "limit": 10}).to_pylist()
    assert [(r["parcel_id"], r["mv_from_pct"], r["mv_to_pct"]) for r in got] == [("p2", 20.0, 10.0), ("p1", 30.0, 28.0)]
    assert series.query("drying", {"date_from": "2024-04-30", "date_to": "2024-04-06", "limit": 10}).num_rows == 0


def test_model_inputs_query(series: Store):
    got = series.query("model_inputs", {"acquisition_id": "A2"})
    assert got.num_rows == 5 and got.column("vv_db").to_pylist() == pytest.approx([-10.0] * 5)


def test_unknown_query(series: Store):
    available = (r"unknown query 'nope'\. Available: drying, export, history, latest, model_inputs, moisture_parquet, "
                 r"summary, temporal_inputs, temporal_members\.$")
    with pytest.raises(UsageError, match=available):
        series.query("nope", {})
    with pytest.raises(UsageError, match=r"unknown query '\.\./schema'"):
        series.query("../schema")
    with pytest.raises(UsageError, match=r"unknown query 'schema'"):
        series.query("schema")


def test_missing_parameter(series: Store):
    with pytest.raises(UsageError, match=r"query 'history' \(.*history\.sql\) needs parameter\(s\) \$parcel_id"):
        series.query("history", {})
    with pytest.raises(UsageError, match=r"needs parameter\(s\) \$date_to, \$limit; it takes: \$date_from, \$date_to"):
        series.query("drying", {"date_from": "2024-04-01"})


def test_unknown_parameter_and_bad_value(series: Store):
    with pytest.raises(UsageError, match=r"query 'latest' .*unknown parameter\(s\) parcel; it takes no parameters"):
        series.query("latest", {"parcel": "p1"})
    with pytest.raises(UsageError, match=r"query 'drying' .*Check the parameter values"):
        series.query("drying", {"date_from": "April", "date_to": "2024-04-30", "limit": 3})


def test_ad_hoc_sql(series: Store):
    got = series.sql("SELECT count(*) AS n FROM moisture WHERE status = $s", {"s": "ok"})
    assert got.to_pylist() == [{"n": 12}]  # 5 + 3 + 4
    with pytest.raises(UsageError, match="SQL error: .*no_such_table"):
        series.sql("SELECT * FROM no_such_table")


# ---------------------------------------------------------------------------- credible intervals (schema v5)

# Per parcel: (mv_pct, status, (lo68, hi68, lo95, hi95)); p1's mv_pct lies outside its interval (a single-date
# estimate is the network's, not the posterior's) and p4's bounds are all equal: both are allowed.
WITH_INTERVALS = {
    "p1": (21.5, "ok", (17.0, 19.25, 15.5, 20.75)),
    "p2": (None, "ndvi_above_max", (np.nan,) * 4),
    "p3": (30.0, "ok", (28.125, 31.5, 26.0, 33.0)),
    "p4": (12.0, "ok", (12.0, 12.0, 12.0, 12.0)),
    "p5": (None, "no_data", (None,) * 4),
}


def interval_moisture(values: dict[str, tuple[float | None, str, tuple]], columns=INTERVALS):
    """A moisture_fn answering ``values[parcel_id] = (mv_pct, status, (lo68, hi68, lo95, hi95))`` with the
    interval ``columns`` named (a subset leaves the others out of the table)."""

    def fn(inputs: pa.Table) -> pd.DataFrame:
        table = fixed_moisture({k: v[:2] for k, v in values.items()})(inputs)
        ids = table["parcel_id"].tolist()
        for j, name in enumerate(INTERVALS):
            if name in columns:
                table[name] = pd.array([values[i][2][j] for i in ids], dtype="Float64")
        return table

    return fn


def intervals_of(store: Store, where: str = "TRUE") -> dict[tuple[str, str], tuple]:
    got = rows(store, f"SELECT parcel_id, acquisition_id, {', '.join(INTERVALS)} FROM moisture WHERE {where}")
    return {(r["parcel_id"], r["acquisition_id"]): tuple(r[c] for c in INTERVALS) for r in got}


def test_intervals_are_stored_and_read_back(store: Store):
    store.write_parcels(grid_parcels())
    ids = list(WITH_INTERVALS)
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            interval_moisture(WITH_INTERVALS))
    store.write_acquisition(acquisition("B", "2024-04-18T17:49:12Z"), observations(ids),  # an older caller
                            fixed_moisture({i: (10.0, "ok") for i in ids}))
    assert intervals_of(store) == {
        ("p1", "A"): (17.0, 19.25, 15.5, 20.75), ("p2", "A"): (None,) * 4, ("p3", "A"): (28.125, 31.5, 26.0, 33.0),
        ("p4", "A"): (12.0, 12.0, 12.0, 12.0), ("p5", "A"): (None,) * 4, **{(i, "B"): (None,) * 4 for i in ids}}
    assert rows(store, "SELECT mv_pct FROM moisture WHERE parcel_id = 'p1' AND acquisition_id = 'A'") == [
        {"mv_pct": 21.5}]
    history = store.query("history", {"parcel_id": "p3"}).to_pylist()
    assert [tuple(r[c] for c in INTERVALS) for r in history] == [(28.125, 31.5, 26.0, 33.0), (None,) * 4]
    cols = store.query("history", {"parcel_id": "p3"}).column_names
    assert cols[cols.index("mv_std_pct") + 1:cols.index("mv_std_pct") + 5] == list(INTERVALS)
    latest = {r["parcel_id"]: r for r in store.query("latest").to_pylist()}
    assert tuple(latest["p3"][c] for c in INTERVALS) == (None,) * 4  # B is the latest row
    assert tuple(latest["p3"][f"last_ok_{c}"] for c in INTERVALS) == (None,) * 4
    store.delete_acquisitions(["B"])
    latest = {r["parcel_id"]: r for r in store.query("latest").to_pylist()}
    assert tuple(latest["p3"][c] for c in INTERVALS) == (28.125, 31.5, 26.0, 33.0)
    assert tuple(latest["p1"][f"last_ok_{c}"] for c in INTERVALS) == (17.0, 19.25, 15.5, 20.75)
    assert tuple(latest["p2"][c] for c in INTERVALS) == (None,) * 4


def _bad(parcel: str, value: tuple) -> dict:
    return {**WITH_INTERVALS, parcel: (*WITH_INTERVALS[parcel][:2], value)}


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (interval_moisture(_bad("p2", (1.0, 2.0, 0.5, 2.5))),
         r"moisture of A: 1 row\(s\) whose status is not ok have a credible interval \(mv_lo68_pct, mv_hi68_pct, "
         r"mv_lo95_pct, mv_hi95_pct must be null unless status is ok\)\.$"),
        (interval_moisture(_bad("p2", (np.nan, np.nan, np.nan, 3.0))), "1 row.* whose status is not ok have a"),
        (interval_moisture(_bad("p3", (28.0, 31.0, np.nan, 33.0))),
         r"moisture of A: 1 row\(s\) give some but not all of mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, mv_hi95_pct "
         r"\(give all four or none\)\.$"),
        (interval_moisture(WITH_INTERVALS, columns=INTERVALS[:2]), r"3 row\(s\) give some but not all of"),
        (interval_moisture(_bad("p3", (28.0, 31.0, 28.5, 33.0))),
         r"moisture of A: 1 row\(s\) have credible intervals out of order \(expected mv_lo95_pct <= mv_lo68_pct "
         r"<= mv_hi68_pct <= mv_hi95_pct\)\.$"),
        (interval_moisture(_bad("p3", (31.0, 28.0, 26.0, 33.0))), r"1 row\(s\) have credible intervals out of order"),
        (interval_moisture(_bad("p3", (28.0, 33.5, 26.0, 33.0))), r"1 row\(s\) have credible intervals out of order"),
        (lambda t: interval_moisture(WITH_INTERVALS)(t).assign(mv_hi95_pct="wide"),
         r"moisture of A: .*mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, mv_hi95_pct all four null unless status is ok, "
         r"else all four or none, with mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct\.$"),
    ],
    ids=["masked-with-interval", "masked-with-one-bound", "partial", "two-columns-only", "lo95-above-lo68",
         "lo68-above-hi68", "hi68-above-hi95", "not-numbers"],
)
def test_bad_intervals_write_nothing(store: Store, fn, message):
    ids = list(WITH_INTERVALS)
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            interval_moisture(WITH_INTERVALS))
    before = _snapshot(store)
    with pytest.raises(ModelError, match=message):
        store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z", platform="S1B"), observations(ids), fn)
    assert _snapshot(store) == before


def test_constraint_message_lists_the_interval_rules(store: Store):
    with pytest.raises(ModelError, match=r"CHECK.*status one of ok.*mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, "
                                         r"mv_hi95_pct all four null unless status is ok, else all four or none"):
        store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(["p1"]),
                                fixed_moisture({"p1": (5.0, "wet")}))


@pytest.mark.parametrize(
    ("values", "status"),
    [((1.0, 2.0, 0.5, 2.5), "no_data"), ((1.0, None, 0.5, 2.5), "ok"), ((1.0, 2.0, 1.5, 2.5), "ok"),
     ((2.5, 2.0, 0.5, 2.5), "ok"), ((1.0, 2.0, 0.5, 1.5), "ok")],
    ids=["masked", "partial", "lo95-above-lo68", "lo68-above-hi68", "hi68-above-hi95"],
)
def test_schema_checks_the_intervals(store: Store, values, status):
    """sql/schema.sql refuses what the store's own checks refuse, for any writer of the table."""
    mv = "NULL" if status != "ok" else "1.5"
    bounds = ", ".join("NULL" if v is None else str(v) for v in values)
    with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
        store.con.execute(f"INSERT INTO moisture (parcel_id, acquisition_id, mv_pct, status, {', '.join(INTERVALS)}) "
                          f"VALUES ('p1', 'A', {mv}, '{status}', {bounds})")
    store.con.execute(f"INSERT INTO moisture (parcel_id, acquisition_id, mv_pct, status, {', '.join(INTERVALS)}) "
                      "VALUES ('p1', 'A', 9.0, 'ok', 1.0, 2.0, 0.5, 2.5)")  # mv_pct outside: allowed


def test_revise_writes_or_clears_the_intervals(store: Store):
    ids = list(WITH_INTERVALS)
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            interval_moisture(WITH_INTERVALS))
    revised = pd.DataFrame({"parcel_id": ["p1", "p3"], "acquisition_id": ["A", "A"], "mv_pct": [18.0, 29.0],
                            "mv_std_pct": [1.25, 2.0], "mv_lo68_pct": [16.75, np.nan],
                            "mv_hi68_pct": [19.25, np.nan], "mv_lo95_pct": [15.5, np.nan],
                            "mv_hi95_pct": [20.5, np.nan]})
    assert store.revise_moisture(revised) == 2
    assert intervals_of(store) == {("p1", "A"): (16.75, 19.25, 15.5, 20.5), ("p2", "A"): (None,) * 4,
                                   ("p3", "A"): (None,) * 4, ("p4", "A"): (12.0, 12.0, 12.0, 12.0),
                                   ("p5", "A"): (None,) * 4}
    assert rows(store, "SELECT parcel_id, mv_pct, mv_std_pct, method FROM moisture WHERE parcel_id IN ('p1', 'p3') "
                       "ORDER BY 1") == [{"parcel_id": "p1", "mv_pct": 18.0, "mv_std_pct": 1.25, "method": "temporal"},
                                         {"parcel_id": "p3", "mv_pct": 29.0, "mv_std_pct": 2.0, "method": "temporal"}]
    # without interval columns (an older caller): the revised row loses the intervals of its old estimate
    assert store.revise_moisture(pd.DataFrame({"parcel_id": ["p4"], "acquisition_id": ["A"], "mv_pct": [13.0],
                                               "mv_std_pct": [0.5]})) == 1
    assert intervals_of(store, "parcel_id IN ('p1', 'p4')") == {("p1", "A"): (16.75, 19.25, 15.5, 20.5),
                                                                 ("p4", "A"): (None,) * 4}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mv_lo95_pct": [np.nan]}, r"^window: 1 row\(s\) give some but not all of mv_lo68_pct, mv_hi68_pct, "
                                    r"mv_lo95_pct, mv_hi95_pct \(give all four or none\)\. Nothing was written\.$"),
        ({"mv_lo95_pct": [17.0]}, r"^window: 1 row\(s\) have credible intervals out of order \(expected mv_lo95_pct "
                                  r"<= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct\)\. Nothing was written\.$"),
        ({"mv_hi68_pct": [16.0]}, r"1 row\(s\) have credible intervals out of order"),
        ({"mv_hi95_pct": [19.0]}, r"1 row\(s\) have credible intervals out of order"),
        ({"mv_hi95_pct": ["wide"]}, r"^window: .*Could not convert string 'wide'"),
        ({"drop": ["mv_hi68_pct", "mv_hi95_pct"]}, r"1 row\(s\) give some but not all of"),
        ({"mv_std_pct": [-1.0]}, r"^window: 1 negative mv_std_pct value\(s\)\.$"),  # the existing checks stay
        ({"status_of": "p2"}, r"^window: 1 of 1 row\(s\) are not 'ok' moisture rows of"),
    ],
    ids=["partial", "lo95-above-lo68", "lo68-above-hi68", "hi68-above-hi95", "not-numbers", "two-columns-only",
         "negative-std", "not-ok-row"],
)
def test_revise_with_bad_intervals_writes_nothing(store: Store, change, message):
    ids = list(WITH_INTERVALS)
    store.write_acquisition(acquisition("A", "2024-04-06T17:49:12Z"), observations(ids),
                            interval_moisture(WITH_INTERVALS))
    before = _snapshot(store)
    table = pd.DataFrame({"parcel_id": [change.pop("status_of", "p1")], "acquisition_id": ["A"], "mv_pct": [18.0],
                          "mv_std_pct": [1.25], "mv_lo68_pct": [16.75], "mv_hi68_pct": [19.25],
                          "mv_lo95_pct": [15.5], "mv_hi95_pct": [20.5]})
    table = table.drop(columns=change.pop("drop", [])).assign(**change)
    with pytest.raises(ModelError, match=message):
        store.revise_moisture(table, what="window")
    assert _snapshot(store) == before
