"""plotsm.weather: the a-priori dry/wet rule on hand-made daily series (boundaries worked out by hand), the weather
CSV reader and each of its errors, and the Open-Meteo client against a loopback server that replays
tests/data/open_meteo_archive_sample.json (query, parsed values, cache, HTTP and service errors, timeout).
No test touches the real network: connections to anything but 127.0.0.1 fail.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import pytest

from plotsm.errors import ConfigurationError, InputError, UsageError
from plotsm.apriori import AprioriDecision, AprioriRule, decide_apriori, weather_period
from plotsm.weather import (
    OPEN_METEO_ARCHIVE_URL,
    WeatherServiceError,
    fetch_open_meteo,
    open_meteo_url,
    read_weather_csv,
)

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "open_meteo_archive_sample.json"
LAT, LON = 47.3901, 1.5850  # centroid of parcels_rpg2022.gpkg, EPSG:4326
START, END = date(2024, 3, 25), date(2024, 4, 8)
D = datetime(2024, 4, 6, 17, 49, 12, tzinfo=timezone.utc)  # acquisition of the rule tests


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection other than to the loopback server fails the test."""
    real = socket.create_connection

    def loopback_only(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach the network: {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)


# ------------------------------------------------------------------------------------------------- the rule


def before(day: str, precip: list[float | None], *, on_day: float | None = None) -> pd.DataFrame:
    """Weather frame whose last value is the day before ``day`` (values oldest first; None = NaN)."""
    last = date.fromisoformat(day) - timedelta(days=1)
    days = [last - timedelta(days=len(precip) - 1 - i) for i in range(len(precip))]
    values = [math.nan if v is None else v for v in precip]
    if on_day is not None:
        days.append(date.fromisoformat(day))
        values.append(on_day)
    return pd.DataFrame({"date": pd.to_datetime([d.isoformat() for d in days], utc=True), "precipitation_mm": values})


def test_exactly_t_mm_in_n_days_is_wet() -> None:
    dec = decide_apriori(before("2024-04-06", [0, 0, 0, 0, 3.3, 3.3, 3.4]), D)  # 3.3 + 3.3 + 3.4 = 10 mm
    assert dec == AprioriDecision("wet", "10.0 mm in the 3 days before 2024-04-06 (≥ 10 mm) → wet", AprioriRule())


def test_just_below_t_is_not_wet() -> None:
    dec = decide_apriori(before("2024-04-06", [0, 0, 0, 0, 3.3, 3.3, 3.3]), D)  # 9.9 mm
    assert dec.state == "none"
    assert dec.reason == ("9.9 mm in the 3 days before 2024-04-06 (< 10 mm); last day with ≥ 1 mm: 2024-04-05, "
                          "1 days before (dry needs 7) → none")


def test_rain_before_the_wet_window_does_not_count() -> None:
    dec = decide_apriori(before("2024-04-06", [0, 0, 0, 50.0, 0, 0, 0]), D)  # 50 mm 4 days before
    assert dec.state == "none" and dec.reason.startswith("0.0 mm in the 3 days before 2024-04-06 (< 10 mm)")


def test_m_dry_days_is_dry_and_m_minus_1_is_none() -> None:
    dry = decide_apriori(before("2024-04-06", [5.0, 0, 0, 0, 0, 0, 0, 0]), D)  # rain 8 days before: 7 dry days
    assert dry.state == "dry"
    assert dry.reason == "no day with ≥ 1 mm in the 7 days before 2024-04-06 (0.0 mm in all) → dry"
    almost = decide_apriori(before("2024-04-06", [5.0, 0, 0, 0, 0, 0, 0]), D)  # rain 7 days before: 6 dry days
    assert almost.state == "none"
    assert "last day with ≥ 1 mm: 2024-03-30, 7 days before (dry needs 7) → none" in almost.reason


def test_rain_day_threshold_is_inclusive() -> None:
    assert decide_apriori(before("2024-04-06", [0, 0, 0, 0.99, 0.5, 0, 0.2]), D).state == "dry"
    assert decide_apriori(before("2024-04-06", [0, 0, 0, 1.0, 0, 0, 0]), D).state == "none"


def test_rain_on_the_acquisition_day_is_not_counted() -> None:
    weather = before("2024-04-06", [0] * 7, on_day=80.0)
    assert decide_apriori(weather, D).state == "dry"
    assert decide_apriori(weather, datetime(2024, 4, 6, 0, 0)).state == "dry"  # naive = UTC, day starts at 00:00
    assert decide_apriori(weather, datetime(2024, 4, 7, 5, 0, tzinfo=timezone.utc)).state == "wet"  # next day: counted


def test_acquisition_day_is_the_utc_day() -> None:
    weather = before("2024-04-06", [0, 0, 0, 0, 0, 0, 12.0])  # 12 mm on 5 April
    cest = timezone(timedelta(hours=2))
    assert decide_apriori(weather, datetime(2024, 4, 6, 1, 30, tzinfo=cest)).state == "none"  # 5 April 23:30 UTC
    assert decide_apriori(weather, datetime(2024, 4, 6, 2, 30, tzinfo=cest)).state == "wet"  # 6 April 00:30 UTC


def test_wet_beats_dry() -> None:
    rule = AprioriRule(wet_rain_mm=10.0, wet_window_days=3, dry_days=3, rain_day_mm=5.0, name="drizzle")
    dec = decide_apriori(before("2024-04-06", [4.0, 3.0, 3.0]), D, rule)  # every day < 5 mm, total 10 mm
    assert dec.state == "wet" and dec.rule is rule


def test_missing_day_gives_none() -> None:
    weather = before("2024-04-06", [0, 0, 0, 0, 0, 0, 0]).drop(index=4)  # no row for 3 April
    dec = decide_apriori(weather, D)
    assert dec.state == "none"
    assert dec.reason == "weather data missing for 2024-04-03 (the rule reads 2024-03-30 to 2024-04-05) → none"


def test_nan_precipitation_is_missing() -> None:
    dec = decide_apriori(before("2024-04-06", [0, 0, None, 0, 0, 0, 0]), D)
    assert dec.state == "none" and dec.reason.startswith("weather data missing for 2024-04-01 ")


def test_no_weather_at_all_lists_the_gap() -> None:
    dec = decide_apriori(before("2024-01-01", [0] * 10), D)
    assert dec.state == "none"
    assert dec.reason.startswith("weather data missing for 2024-03-30, 2024-03-31, 2024-04-01, 2024-04-02, "
                                 "2024-04-03, … (7 days)")


def test_complete_wet_window_decides_despite_older_gaps() -> None:
    assert decide_apriori(before("2024-04-06", [None, None, None, None, 9.0, 0.5, 0.5]), D).state == "wet"
    # not wet, and the days dry needs are unknown: never guess
    assert decide_apriori(before("2024-04-06", [None, None, None, None, 0, 0, 0]), D).state == "none"


def test_naive_dates_are_utc_days() -> None:
    weather = before("2024-04-06", [0, 0, 0, 0, 10.0, 0, 0])
    weather["date"] = weather["date"].dt.tz_localize(None)
    assert decide_apriori(weather, D).state == "wet"


def test_weather_table_without_precipitation_is_refused() -> None:
    with pytest.raises(InputError, match="missing column.*precipitation_mm"):
        decide_apriori(pd.DataFrame({"date": pd.to_datetime(["2024-04-01"], utc=True)}), D)


@pytest.mark.parametrize("kwargs, field_name", [
    ({"wet_rain_mm": 0.0}, "wet_rain_mm"), ({"rain_day_mm": -1.0}, "rain_day_mm"),
    ({"wet_window_days": 0}, "wet_window_days"), ({"dry_days": 2.5}, "dry_days"),
    ({"wet_rain_mm": math.nan}, "wet_rain_mm"),
])
def test_rule_values_are_checked(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{field_name} = "):
        AprioriRule(**kwargs)


def test_rule_and_decision_to_dict() -> None:
    rule = AprioriRule()
    assert rule.to_dict() == {"wet_rain_mm": 10.0, "wet_window_days": 3, "dry_days": 7, "rain_day_mm": 1.0,
                              "name": "default"}
    assert AprioriRule(**rule.to_dict()) == rule
    dec = decide_apriori(before("2024-04-06", [0] * 7), D)
    assert json.loads(json.dumps(dec.to_dict())) == {"state": "dry", "reason": dec.reason, "rule": rule.to_dict()}


def test_weather_period_covers_every_acquisition() -> None:
    whens = [datetime(2024, 4, 6, 17, 49, tzinfo=timezone.utc), datetime(2024, 4, 18, 5, 11, tzinfo=timezone.utc)]
    assert weather_period(whens) == (date(2024, 3, 30), date(2024, 4, 17))
    assert weather_period(whens, AprioriRule(wet_window_days=10, dry_days=2)) == (date(2024, 3, 27), date(2024, 4, 17))


# ------------------------------------------------------------------------------------------------------ CSV


def write(tmp_path: Path, text: str, name: str = "weather.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_read_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "date,precipitation_mm,temperature_c,station\n"
                           "2024-04-02,0.0,11.5,X\n2024-04-01, 14.2 ,9.0,X\n\n2024-04-03,,12.0,X\n")
    frame = read_weather_csv(path)
    assert list(frame.columns) == ["date", "precipitation_mm", "temperature_c"]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert [d.date().isoformat() for d in frame["date"]] == ["2024-04-01", "2024-04-02", "2024-04-03"]
    assert frame["precipitation_mm"].tolist()[:2] == [14.2, 0.0] and math.isnan(frame["precipitation_mm"].iloc[2])
    assert frame["temperature_c"].tolist() == [9.0, 11.5, 12.0]


def test_read_csv_without_temperature_bom_and_header_case(tmp_path: Path) -> None:
    path = write(tmp_path, " Date , Precipitation_MM\n2024-04-01,3\n2024-04-02,NaN\n", encoding="utf-8-sig")
    frame = read_weather_csv(path)
    assert frame["precipitation_mm"].iloc[0] == 3.0 and math.isnan(frame["precipitation_mm"].iloc[1])
    assert frame["temperature_c"].isna().all()


@pytest.mark.parametrize("text, match", [
    ("day,rain\n2024-04-01,1\n", r"missing column\(s\) date, precipitation_mm .*first line must name the columns"),
    ("date;precipitation_mm\n2024-04-01;1,5\n", r"missing column.*use ',' \(and '\.' for decimals\)"),
    ("date,precipitation_mm\n2024-04-01,1\n01/04/2024,2\n", r"line 3: date '01/04/2024' is not a day YYYY-MM-DD.*e\.g\. 2024-04-06"),
    ("date,precipitation_mm\n2024-04-01,1\n20240402,2\n", r"line 3: date '20240402' is not a day YYYY-MM-DD"),
    ("date,precipitation_mm\n2024-04-01,\"1,5\"\n", r"line 2: precipitation_mm '1,5' is not a number\. Use '\.' as the decimal separator"),
    ("date,precipitation_mm,temperature_c\n2024-04-01,1,warm\n", r"line 2: temperature_c 'warm' is not a number.*Leave the cell empty"),
    ("date,precipitation_mm\n2024-04-01,inf\n", r"line 2: precipitation_mm 'inf' is not a finite number"),
    ("date,precipitation_mm\n2024-04-01,1\n2024-04-02,0\n2024-04-01,3\n", r"duplicate dates 2024-04-01 \(line 2 and line 4\)\. Keep one row per UTC day"),
    ("date,precipitation_mm\n2024-04-01,-0.2\n", r"line 2: precipitation -0.2 mm is negative\..*leave the cell empty"),
    ("date,precipitation_mm\n", r"no data rows after the header\. Add one row per day"),
    ("", r"empty file\. Expected a header line"),
])
def test_bad_csv(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=match) as info:
        read_weather_csv(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: weather CSV not found\. Check the path given to --weather-csv"):
        read_weather_csv(tmp_path / "nope.csv")


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("date,precipitation_mm,temp\xe9rature\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.csv: not a UTF-8 text file .*Save the weather table as CSV in UTF-8"):
        read_weather_csv(path)


# ----------------------------------------------------------------------------------------------- Open-Meteo


@dataclass
class Replay:
    """What the loopback server answers, and the requests it received."""

    url: str = ""
    status: int = 200
    body: bytes = field(default_factory=SAMPLE.read_bytes)
    content_type: str = "application/json; charset=utf-8"
    delay_s: float = 0.0
    content_length: int | None = None  # announce more bytes than sent: a cut answer
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, raw query)
    release: threading.Event = field(default_factory=threading.Event)
    stop: Any = None


@pytest.fixture
def server() -> Iterator[Replay]:
    replay = Replay()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path, _, query = self.path.partition("?")
            replay.requests.append((path, query))
            if replay.delay_s:
                replay.release.wait(replay.delay_s)  # the test's teardown releases it at once
            try:
                self.send_response(replay.status)
                self.send_header("Content-Type", replay.content_type)
                self.send_header("Content-Length", str(replay.content_length or len(replay.body)))
                self.end_headers()
                self.wfile.write(replay.body)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    replay.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/archive"
    replay.stop = stop
    yield replay
    replay.release.set()
    stop()


def fetch(replay: Replay, **kwargs: Any) -> pd.DataFrame:
    return fetch_open_meteo(LAT, LON, START, END, base_url=replay.url, **kwargs)


def test_url_and_defaults() -> None:
    assert OPEN_METEO_ARCHIVE_URL == "https://archive-api.open-meteo.com/v1/archive"
    assert open_meteo_url(LAT, LON, START, END) == (
        "https://archive-api.open-meteo.com/v1/archive?latitude=47.3901&longitude=1.5850&start_date=2024-03-25"
        "&end_date=2024-04-08&daily=precipitation_sum,temperature_2m_mean&timezone=UTC")


def test_fetch_query_and_values(server: Replay) -> None:
    frame = fetch(server)
    assert len(server.requests) == 1
    path, query = server.requests[0]
    assert path == "/v1/archive"
    assert parse_qs(query) == {"latitude": ["47.3901"], "longitude": ["1.5850"], "start_date": ["2024-03-25"],
                               "end_date": ["2024-04-08"], "daily": ["precipitation_sum,temperature_2m_mean"],
                               "timezone": ["UTC"]}
    assert list(frame.columns) == ["date", "precipitation_mm", "temperature_c"]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert frame["date"].iloc[0] == pd.Timestamp("2024-03-25", tz="UTC")
    assert frame["date"].iloc[-1] == pd.Timestamp("2024-04-08", tz="UTC") and len(frame) == 15
    assert frame["precipitation_mm"].tolist() == [0.0, 0.3, 0.0, 0.0, 4.8, 12.4, 6.1, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9]
    assert frame["temperature_c"].iloc[[0, 6, 14]].tolist() == [8.4, 7.9, 11.8]


def test_fetched_frame_equals_the_csv_frame(server: Replay, tmp_path: Path) -> None:
    frame = fetch(server)
    text = "date,precipitation_mm,temperature_c\n" + "".join(
        f"{d.date()},{p},{t}\n" for d, p, t in frame.itertuples(index=False))
    pd.testing.assert_frame_equal(frame, read_weather_csv(write(tmp_path, text)))


def test_decisions_on_the_replayed_series(server: Replay) -> None:
    frame = fetch(server)
    wet = decide_apriori(frame, datetime(2024, 4, 1, 17, 49, tzinfo=timezone.utc))
    assert wet.reason == "23.3 mm in the 3 days before 2024-04-01 (≥ 10 mm) → wet"
    assert decide_apriori(frame, datetime(2024, 4, 4, 5, 0)).state == "none"
    assert decide_apriori(frame, datetime(2024, 4, 8, 5, 0)).state == "dry"
    assert decide_apriori(frame, datetime(2024, 3, 27, 5, 0)).reason.startswith("weather data missing for 2024-03-20")


def test_cache_serves_a_rerun_without_the_network(server: Replay, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = fetch(server, cache_dir=cache)
    files = list(cache.glob("*.json"))
    assert len(files) == 1 and files[0].name.startswith("open-meteo_47.3901_1.5850_2024-03-25_2024-04-08_")
    assert json.loads(files[0].read_text(encoding="utf-8")) == json.loads(SAMPLE.read_text(encoding="utf-8"))
    server.stop()
    pd.testing.assert_frame_equal(fetch(server, cache_dir=cache), first)
    assert len(server.requests) == 1
    with pytest.raises(WeatherServiceError, match="cannot connect"):  # without the cache, the stopped server fails
        fetch(server)


def test_cache_is_keyed_by_the_query(server: Replay, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fetch(server, cache_dir=cache)
    fetch_open_meteo(LAT, LON, START, END - timedelta(days=1), base_url=server.url, cache_dir=cache)
    fetch_open_meteo(LAT + 0.01, LON, START, END, base_url=server.url, cache_dir=cache)
    fetch(server, cache_dir=cache)
    assert len(server.requests) == 3 and len(list(cache.glob("*.json"))) == 3


def test_damaged_cache_file_is_fetched_again(server: Replay, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fetch(server, cache_dir=cache)
    (cached,) = cache.glob("*.json")
    cached.write_text("{trunc", encoding="utf-8")
    assert len(fetch(server, cache_dir=cache)) == 15
    assert len(server.requests) == 2 and json.loads(cached.read_text(encoding="utf-8"))["daily"]


def test_http_400_with_open_meteo_reason(server: Replay, tmp_path: Path) -> None:
    reason = "Cannot initialize WeatherVariable from invalid String value tempeture_2m for key daily"
    server.status, server.body = 400, json.dumps({"error": True, "reason": reason}).encode()
    with pytest.raises(InputError, match=f"HTTP 400: {reason}") as info:
        fetch(server, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(server.url + "?latitude=47.3901") and "--weather-csv" in message
    assert isinstance(info.value, WeatherServiceError) and info.value.exit_code == 4
    assert not list((tmp_path / "cache").glob("*.json"))  # errors are not cached


def test_http_500_html(server: Replay) -> None:
    server.status, server.body, server.content_type = 502, b"<html>Bad Gateway</html>", "text/html"
    with pytest.raises(WeatherServiceError, match=r"HTTP 502: <html>Bad Gateway</html>\. Retry later"):
        fetch(server)


def test_timeout(server: Replay) -> None:
    server.delay_s = 5.0
    with pytest.raises(InputError, match=r"no answer within 0\.2 s\. .*--weather-csv"):
        fetch(server, timeout_s=0.2)


@pytest.mark.parametrize("payload, match", [
    ({"error": True, "reason": "Parameter 'start_date' is out of allowed range"},
     "Open-Meteo error: Parameter 'start_date' is out of allowed range"),
    ({"latitude": 47.4}, "missing field 'daily'"),
    ({"daily": {"time": ["2024-04-01"]}}, r"missing field\(s\) daily\.precipitation_sum"),
    ({"daily": {"time": ["2024-04-01", "2024-04-02"], "precipitation_sum": [1.0]}}, "daily arrays of different lengths"),
    ({"daily": {"time": ["2024-04-01"], "precipitation_sum": ["lots"]}}, "unexpected daily values"),
    ({"daily_units": {"precipitation_sum": "inch"}, "daily": {"time": ["2024-04-01"], "precipitation_sum": [0.1]}},
     "precipitation in 'inch', expected 'mm'"),
    ({"utc_offset_seconds": 7200, "daily": {"time": ["2024-04-01"], "precipitation_sum": [0.1]}},
     "days are not UTC days"),
    ([1, 2], "the answer is not a JSON object"),
])
def test_unusable_answers(server: Replay, payload: Any, match: str) -> None:
    server.body = json.dumps(payload).encode()
    with pytest.raises(WeatherServiceError, match=match) as info:
        fetch(server)
    assert server.url in str(info.value) and "--weather-csv" in str(info.value)


def test_answer_not_json(server: Replay) -> None:
    server.body = b"<html>maintenance</html>"
    with pytest.raises(WeatherServiceError, match="the answer is not JSON"):
        fetch(server)


def test_cut_answer(server: Replay) -> None:
    server.content_length = len(server.body) + 100
    with pytest.raises(WeatherServiceError, match=r"incomplete answer \(IncompleteRead"):
        fetch(server)


def test_empty_answer_gives_missing_days(server: Replay) -> None:
    server.body = b'{"utc_offset_seconds":0,"daily":{"time":[],"precipitation_sum":[],"temperature_2m_mean":[]}}'
    frame = fetch(server)
    assert frame.empty and list(frame.columns) == ["date", "precipitation_mm", "temperature_c"]
    assert decide_apriori(frame, D).reason.startswith("weather data missing for 2024-03-30")


def test_null_values_are_missing_days(server: Replay) -> None:
    server.body = json.dumps({"utc_offset_seconds": 0, "daily": {
        "time": ["2024-04-01", "2024-04-02"], "precipitation_sum": [2.5, None], "temperature_2m_mean": [None, 9.5]}}).encode()
    frame = fetch(server)
    assert frame["precipitation_mm"].iloc[0] == 2.5 and math.isnan(frame["precipitation_mm"].iloc[1])
    assert math.isnan(frame["temperature_c"].iloc[0]) and frame["temperature_c"].iloc[1] == 9.5


def test_bad_arguments_make_no_request(server: Replay) -> None:
    with pytest.raises(InputError, match="not a WGS84 latitude, longitude"):
        fetch_open_meteo(6_700_000.0, 600_000.0, START, END, base_url=server.url)
    with pytest.raises(UsageError, match="the start is after the end"):
        fetch_open_meteo(LAT, LON, END, START, base_url=server.url)
    assert server.requests == []
