"""Daily weather at a point from the Open-Meteo historical weather API (opt-in network access), with a file cache.

:func:`fetch_open_meteo` is the only function of plotsm that uses the network: reanalysis, ERA5 / ERA5-Land and
ECMWF IFS in its default "best match" [C: API docs]. It returns the frame of :func:`plotsm.weather.read_weather_csv`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from plotsm import __version__
from plotsm.errors import InputError, UsageError
from plotsm.weather.frame import weather_frame

#: Open-Meteo historical weather API endpoint [C: https://open-meteo.com/en/docs/historical-weather-api].
OPEN_METEO_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"

#: Daily variables asked of Open-Meteo [C: same page]: ``precipitation_sum`` (mm, rain + showers + snowfall
#: of the day) and ``temperature_2m_mean`` (°C).
OPEN_METEO_DAILY = ("precipitation_sum", "temperature_2m_mean")

#: What to do when Open-Meteo cannot be used (the CLI options of the a-priori state).
_FETCH_FIX = ("Retry later, or pass the daily precipitation as a CSV with --weather-csv "
              "(columns date, precipitation_mm[, temperature_c]), or choose --apriori dry|wet|none.")


class WeatherServiceError(InputError):
    """The weather service could not be reached or sent an answer plotsm cannot use (exit code 4)."""


def open_meteo_url(lat: float, lon: float, start: date, end: date, base_url: str = OPEN_METEO_ARCHIVE_URL) -> str:
    """The GET URL :func:`fetch_open_meteo` sends (coordinates rounded to 4 decimals, about 10 m [D])."""
    query = urllib.parse.urlencode({
        "latitude": f"{lat:.4f}",
        "longitude": f"{lon:.4f}",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "daily": ",".join(OPEN_METEO_DAILY),
        "timezone": "UTC",
    }, safe=",")
    return f"{base_url}?{query}"


def fetch_open_meteo(lat: float, lon: float, start: date, end: date, *, base_url: str = OPEN_METEO_ARCHIVE_URL,
                     timeout_s: float = 30, cache_dir: Path | None = None) -> pd.DataFrame:
    """Daily precipitation (and mean temperature) at a point from the Open-Meteo historical weather API.

    Opt-in network access. Sends ``GET {base_url}?latitude=..&longitude=..&start_date=..&end_date=..
    &daily=precipitation_sum,temperature_2m_mean&timezone=UTC`` [C: https://open-meteo.com/en/docs/
    historical-weather-api] for the UTC days ``start`` to ``end`` inclusive; ``lat``/``lon`` in degrees
    (WGS84). The answer is the reanalysis grid cell nearest the point (its ``latitude``/``longitude`` may be
    kilometres away), one value per day in ``daily.time`` / ``daily.precipitation_sum`` (mm, rain + showers +
    snowfall) / ``daily.temperature_2m_mean`` (°C); ``null`` (e.g. the last days, not yet in the archive)
    becomes NaN, a missing day. Open-Meteo's data are CC BY 4.0 ("Weather data by Open-Meteo.com").

    With ``cache_dir``, the validated JSON answer is kept in ``cache_dir/open-meteo_<lat>_<lon>_<start>_
    <end>_<hash of the URL>.json`` and a later call with the same URL reads it without the network.

    Returns the frame of :func:`read_weather_csv`. Raises :class:`WeatherServiceError` (an
    :class:`InputError`, exit code 4) naming the URL and what to do for an HTTP error (with Open-Meteo's
    ``reason`` when it sends ``{"error": true, "reason": ...}``), no answer within ``timeout_s`` seconds,
    a body that is not JSON, or missing or inconsistent fields.
    """
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(f"weather point ({lat}, {lon}) is not a WGS84 latitude, longitude in degrees; "
                         "are the parcels' centroids reprojected to EPSG:4326?")
    if start > end:
        raise UsageError(f"weather period {start} to {end}: the start is after the end")
    if not timeout_s > 0:
        raise UsageError(f"timeout_s = {timeout_s!r}: expected seconds > 0")
    url = open_meteo_url(lat, lon, start, end, base_url)
    cache_file = _cache_file(cache_dir, url, lat, lon, start, end) if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            return _parse_open_meteo(json.loads(cache_file.read_text(encoding="utf-8")), url)
        except (ValueError, InputError):
            pass  # a damaged cache file is fetched again and replaced
    body = _get(url, timeout_s)
    try:
        payload = json.loads(body)
    except ValueError:
        raise WeatherServiceError(f"{url}: the answer is not JSON ({body[:80]!r}). {_FETCH_FIX}") from None
    frame = _parse_open_meteo(payload, url)
    if cache_file is not None:
        _write_atomic(cache_file, json.dumps(payload))
    return frame


def _get(url: str, timeout_s: float) -> str:
    """Body of a GET, or a :class:`WeatherServiceError` that names the URL and the fix."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": f"plotsm/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw: bytes = response.read()
    except urllib.error.HTTPError as err:
        detail = _error_reason(err.read()) or f"{err.reason}"
        raise WeatherServiceError(f"{url}: HTTP {err.code}: {detail}. {_FETCH_FIX}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise WeatherServiceError(f"{url}: no answer within {timeout_s:g} s. {_FETCH_FIX}") from None
        raise WeatherServiceError(f"{url}: cannot connect ({err.reason}). Check the network connection "
                                  f"(Open-Meteo needs internet access). {_FETCH_FIX}") from None
    except TimeoutError:
        raise WeatherServiceError(f"{url}: no answer within {timeout_s:g} s. {_FETCH_FIX}") from None
    except http.client.HTTPException as err:  # e.g. the connection closed in the middle of the answer
        raise WeatherServiceError(f"{url}: incomplete answer ({err!r}). {_FETCH_FIX}") from None
    except OSError as err:
        raise WeatherServiceError(f"{url}: connection failed ({err}). {_FETCH_FIX}") from None
    return raw.decode("utf-8", errors="replace")


def _error_reason(body: bytes) -> str | None:
    """Open-Meteo's ``reason`` of an ``{"error": true, "reason": ...}`` body, else a short excerpt or None."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:200] or None
    if isinstance(payload, dict) and payload.get("reason"):
        return str(payload["reason"])
    return text[:200] or None


def _parse_open_meteo(payload: Any, url: str) -> pd.DataFrame:
    """Weather frame from an Open-Meteo archive answer; :class:`WeatherServiceError` when it is unusable."""

    def bad(what: str) -> WeatherServiceError:
        return WeatherServiceError(f"{url}: {what}. {_FETCH_FIX}")

    if not isinstance(payload, dict):
        raise bad("the answer is not a JSON object")
    if payload.get("error"):
        raise bad(f"Open-Meteo error: {payload.get('reason', 'no reason given')}")
    if payload.get("utc_offset_seconds", 0) != 0:
        raise bad(f"days are not UTC days (utc_offset_seconds = {payload.get('utc_offset_seconds')!r})")
    daily = payload.get("daily")
    if not isinstance(daily, dict):
        raise bad("missing field 'daily'")
    missing = [k for k in ("time", "precipitation_sum") if not isinstance(daily.get(k), list)]
    if missing:
        raise bad(f"missing field(s) {', '.join('daily.' + k for k in missing)}")
    units = payload.get("daily_units") or {}
    if isinstance(units, dict) and units.get("precipitation_sum", "mm") != "mm":
        raise bad(f"precipitation in {units['precipitation_sum']!r}, expected 'mm'")
    times: list[Any] = daily["time"]
    precip_raw: list[Any] = daily["precipitation_sum"]
    temp_raw: list[Any] = daily.get("temperature_2m_mean") or [None] * len(times)
    if not (len(times) == len(precip_raw) == len(temp_raw)):
        raise bad(f"daily arrays of different lengths (time {len(times)}, precipitation_sum {len(precip_raw)}, "
                  f"temperature_2m_mean {len(temp_raw)})")
    try:
        days = [date.fromisoformat(str(t)) for t in times]
        precip = [math.nan if v is None else float(v) for v in precip_raw]
        temp = [math.nan if v is None else float(v) for v in temp_raw]
    except (TypeError, ValueError) as err:
        raise bad(f"unexpected daily values ({err})") from None
    return weather_frame(days, precip, temp, url)


def _cache_file(cache_dir: Path, url: str, lat: float, lon: float, start: date, end: date) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"open-meteo_{lat:.4f}_{lon:.4f}_{start}_{end}_{digest}.json"


def _write_atomic(path: Path, text: str) -> None:
    from plotsm.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
