"""A-priori soil moisture state (dry / wet / none) from daily precipitation before an acquisition.

S²MP constrains the inversion with an a-priori soil state [C: the seed paper, "A priori knowledge on the soil
moisture state", ``shared/seed/000_6fe336b6b9aa1337.txt``; method of El Hajj et al. 2017, *Remote Sensing*
9:1292]: "dry to slightly wet" when there was no precipitation for many days before the SAR acquisition (mv
assumed 2–25 vol.%, network trained on 2–30), "very wet" after heavy rainfall preceding it (25–40 vol.%, network
trained on 20–40). The paper leaves this to expertise on precipitation and temperature and gives no numbers
(science.md §6: weather used [C], rule [D]). :class:`AprioriRule` turns it into a named, documented rule on
daily precipitation totals (mm/day); :func:`decide_apriori` applies it to one acquisition and returns the state
with its reason, which the pipeline stores per acquisition.

Weather comes from a CSV (:func:`read_weather_csv`) or, opt-in, from the Open-Meteo historical weather API
(:func:`fetch_open_meteo`: reanalysis, ERA5 / ERA5-Land and ECMWF IFS in its default "best match" [C: API
docs]; the only function of plotsm that uses the network). Both return the same frame:

- ``date``: the UTC day (midnight), ``datetime64[ns, UTC]``, unique, sorted;
- ``precipitation_mm``: precipitation of that day, mm, float64, NaN = missing;
- ``temperature_c``: mean 2 m air temperature of that day, °C, float64, NaN when not given.

Temperature is read and kept but not used by the rule [D]: the paper names it as part of the expertise without
a rule, and a freeze/snow criterion would be a separate setting.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from plotsm import __version__
from plotsm.errors import ConfigurationError, InputError, UsageError

#: Open-Meteo historical weather API endpoint [C: https://open-meteo.com/en/docs/historical-weather-api].
OPEN_METEO_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"

#: Daily variables asked of Open-Meteo [C: same page]: ``precipitation_sum`` (mm, rain + showers + snowfall
#: of the day) and ``temperature_2m_mean`` (°C).
OPEN_METEO_DAILY = ("precipitation_sum", "temperature_2m_mean")

#: Columns of the weather frame, in order.
WEATHER_COLUMNS = ("date", "precipitation_mm", "temperature_c")

#: Required and optional CSV columns.
CSV_REQUIRED = ("date", "precipitation_mm")
CSV_OPTIONAL = ("temperature_c",)

#: Cells read as a missing value (NaN) in the numeric CSV columns [D].
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})

#: What to do when Open-Meteo cannot be used (the CLI options of the a-priori state).
_FETCH_FIX = ("Retry later, or pass the daily precipitation as a CSV with --weather-csv "
              "(columns date, precipitation_mm[, temperature_c]), or choose --apriori dry|wet|none.")

#: Decimals (mm) sums are rounded to before a threshold is compared [D]: 3.3 + 3.3 + 3.4 is 10 mm, not
#: 9.999999999999998 mm. Daily precipitation is stored with 0.1 mm precision by Open-Meteo [C: same page].
_SUM_DECIMALS = 6


class WeatherServiceError(InputError):
    """The weather service could not be reached or sent an answer plotsm cannot use (exit code 4)."""


@dataclass(frozen=True)
class AprioriRule:
    """The named rule that turns daily precipitation before an acquisition into an a-priori soil state.

    On the UTC days strictly before the acquisition's UTC day, wet is tested first and has priority:

    - **wet** if the precipitation of the ``wet_window_days`` (N) days before totals ≥ ``wet_rain_mm`` (T);
    - else **dry** if each of the ``dry_days`` (M) days before had less than ``rain_day_mm``;
    - else **none** (the full-range network).

    Defaults, all [D] (the seed paper gives no numbers); they are judgements to tune against in-situ data:

    - ``rain_day_mm`` = 1.0 mm: the wet-day threshold of the ETCCDI daily climate indices [C: ETCCDI, wet day
      RR ≥ 1 mm; CDD "consecutive days with RR < 1 mm"]; smaller daily amounts barely wet the surface.
    - ``wet_rain_mm`` = 10 mm in ``wet_window_days`` = 3 days. C-band senses the top few centimetres, and 10 mm
      of water held in the top 5 cm is +20 vol.% (10 mm / 50 mm): even if part of it runs off, drains or
      evaporates, it can lift a 10–20 vol.% soil towards the 25–40 vol.% of the wet case. 10 mm is also the
      ETCCDI heavy-precipitation-day threshold [C: R10mm]. Three days, because rain wets the surface layer
      for a few days at most; older rain says less about the top centimetres.
    - ``dry_days`` = 7: one week without a rain day, our reading of "no precipitation for many days".

    The acquisition day itself is never counted [D]: daily totals cannot tell rain before the pass from rain
    after it. A day with missing or NaN precipitation is never guessed: if the days the decision needs are not
    all known, the state is ``none`` and the reason names the missing days. Wet needs only its N days, so a
    complete wet window decides ``wet`` even when older days are missing; ``dry`` and the ``none`` of the rule
    need all max(N, M) days.
    """

    wet_rain_mm: float = 10.0
    wet_window_days: int = 3
    dry_days: int = 7
    rain_day_mm: float = 1.0
    name: str = "default"

    def __post_init__(self) -> None:
        for field_name in ("wet_rain_mm", "rain_day_mm"):
            value = getattr(self, field_name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (is_number and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"a-priori rule {self.name!r}: {field_name} = {value!r}; "
                                         "expected a number of mm > 0")
        for field_name in ("wet_window_days", "dry_days"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"a-priori rule {self.name!r}: {field_name} = {value!r}; "
                                         "expected a whole number of days ≥ 1")
        if not self.name:
            raise ConfigurationError("a-priori rule: name is empty; give the rule a name (stored with every decision)")

    @property
    def lookback_days(self) -> int:
        """Days before the acquisition day the rule may read: max(N, M)."""
        return max(self.wet_window_days, self.dry_days)

    def to_dict(self) -> dict[str, Any]:
        """The rule's settings, JSON-ready (stored with every decision)."""
        return asdict(self)


@dataclass(frozen=True)
class AprioriDecision:
    """The a-priori state of one acquisition, why, and under which rule."""

    state: Literal["dry", "wet", "none"]
    reason: str
    rule: AprioriRule

    def to_dict(self) -> dict[str, Any]:
        """``{"state", "reason", "rule": {...}}``, JSON-ready."""
        return {"state": self.state, "reason": self.reason, "rule": self.rule.to_dict()}


# --------------------------------------------------------------------------------------------------------- frames


def _frame(dates: Sequence[date], precipitation_mm: Sequence[float], temperature_c: Sequence[float],
           source: str, lines: Sequence[int] | None = None) -> pd.DataFrame:
    """Checked weather frame from parallel lists. ``source`` (and ``lines``) name where a bad value came from."""

    def where(i: int) -> str:
        return f"line {lines[i]}" if lines is not None else str(dates[i])

    seen: dict[date, int] = {}
    duplicates: list[str] = []
    for i, day in enumerate(dates):
        if day in seen:
            duplicates.append(f"{day} ({where(seen[day])} and {where(i)})")
        else:
            seen[day] = i
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (f", … ({len(duplicates)} in all)" if len(duplicates) > 5 else "")
        raise InputError(f"{source}: duplicate dates {shown}. Keep one row per UTC day (daily totals).")
    negative = [i for i, v in enumerate(precipitation_mm) if v < 0]  # NaN < 0 is False
    if negative:
        i = negative[0]
        raise InputError(f"{source}: {where(i)}: precipitation {precipitation_mm[i]:g} mm is negative. "
                         "Precipitation is a daily total ≥ 0 mm; leave the cell empty if the value is missing.")
    frame = pd.DataFrame({
        "date": pd.to_datetime(pd.Series([d.isoformat() for d in dates], dtype=object), format="%Y-%m-%d", utc=True)
                .astype("datetime64[ns, UTC]"),
        "precipitation_mm": np.asarray(precipitation_mm, dtype="float64"),
        "temperature_c": np.asarray(temperature_c, dtype="float64"),
    })
    return frame.sort_values("date", kind="stable").reset_index(drop=True)


def read_weather_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Daily weather from a CSV file: ``date,precipitation_mm[,temperature_c]``, one row per UTC day.

    ``date`` is ``YYYY-MM-DD`` (a UTC day); ``precipitation_mm`` is that day's total in mm (≥ 0);
    ``temperature_c`` (optional) the mean air temperature in °C. Header names are matched without case and
    surrounding spaces; other columns are ignored; an empty, ``NaN`` or ``NA`` number is a missing value
    (rows may also be left out: missing days are reported by :func:`decide_apriori`, never guessed). Rows may
    come in any order. Returns the frame described in the module docstring.

    Raises :class:`InputError` naming the file, the line and the fix for a missing file or column, an
    unparsable date or number, duplicate dates, negative precipitation or a file without rows.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(_numbered_rows(csv.reader(fh)))
    except FileNotFoundError:
        raise InputError(f"{p}: weather CSV not found. Check the path given to --weather-csv.") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{p}: not a UTF-8 text file ({err.reason} at byte {err.start}). "
                         "Save the weather table as CSV in UTF-8.") from None
    except (OSError, csv.Error) as err:
        raise InputError(f"{p}: cannot read the weather CSV ({err}).") from None
    if not rows:
        raise InputError(f"{p}: empty file. Expected a header line 'date,precipitation_mm[,temperature_c]' "
                         "and one row per day.")
    header_line, header = rows[0]
    names = [h.strip().lower() for h in header]
    missing = [c for c in CSV_REQUIRED if c not in names]
    if missing:
        hint = (" The file seems to use ';' as separator: use ',' (and '.' for decimals)."
                if ";" in ",".join(header) else "")
        raise InputError(f"{p}: line {header_line}: missing column(s) {', '.join(missing)} (found: "
                         f"{', '.join(repr(h) for h in header) or 'none'}). The first line must name the columns "
                         f"date,precipitation_mm[,temperature_c].{hint}")
    col = {name: names.index(name) for name in (*CSV_REQUIRED, *CSV_OPTIONAL) if name in names}
    dates: list[date] = []
    precip: list[float] = []
    temp: list[float] = []
    lines: list[int] = []
    for line, row in rows[1:]:
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in col.items()}
        dates.append(_parse_day(cells["date"], p, line))
        precip.append(_parse_number(cells["precipitation_mm"], "precipitation_mm", p, line))
        temp.append(_parse_number(cells["temperature_c"], "temperature_c", p, line)
                    if "temperature_c" in cells else math.nan)
        lines.append(line)
    if not dates:
        raise InputError(f"{p}: no data rows after the header. "
                         "Add one row per day: date,precipitation_mm[,temperature_c].")
    return _frame(dates, precip, temp, str(p), lines)


def _numbered_rows(reader: Iterable[list[str]]) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank rows of a csv reader."""
    line_num = 0
    for row in reader:
        line_num = getattr(reader, "line_num", line_num + 1)
        if any(cell.strip() for cell in row):
            yield line_num, row


def _parse_day(text: str, path: Path, line: int) -> date:
    try:
        if len(text) != 10:  # date.fromisoformat also takes 20240406 and 2024-W14-6
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: line {line}: date {text!r} is not a day YYYY-MM-DD. "
                         "Write dates as ISO days, e.g. 2024-04-06 (UTC).") from None


def _parse_number(text: str, column: str, path: Path, line: int) -> float:
    if text.lower() in _MISSING:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        hint = " Use '.' as the decimal separator." if "," in text else ""
        raise InputError(f"{path}: line {line}: {column} {text!r} is not a number.{hint} "
                         "Leave the cell empty if the value is missing.") from None
    if math.isinf(value):
        raise InputError(f"{path}: line {line}: {column} {text!r} is not a finite number. "
                         "Leave the cell empty if the value is missing.")
    return value


# ---------------------------------------------------------------------------------------------------- Open-Meteo


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
    return _frame(days, precip, temp, url)


def _cache_file(cache_dir: Path, url: str, lat: float, lon: float, start: date, end: date) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"open-meteo_{lat:.4f}_{lon:.4f}_{start}_{end}_{digest}.json"


def _write_atomic(path: Path, text: str) -> None:
    from plotsm.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -------------------------------------------------------------------------------------------------------- the rule


def acquisition_day(when: datetime | date) -> date:
    """UTC day of an acquisition (a naive datetime is taken as UTC, as everywhere in plotsm)."""
    if isinstance(when, datetime):
        return (when if when.tzinfo is None else when.astimezone(timezone.utc)).date()
    return when


def weather_period(whens: Iterable[datetime | date], rule: AprioriRule = AprioriRule()) -> tuple[date, date]:
    """First and last UTC day of weather the rule needs for these acquisitions (for :func:`fetch_open_meteo`)."""
    days = [acquisition_day(w) for w in whens]
    if not days:
        raise UsageError("no acquisition to decide an a-priori state for")
    return min(days) - timedelta(days=rule.lookback_days), max(days) - timedelta(days=1)


def decide_apriori(weather: pd.DataFrame, when: datetime, rule: AprioriRule = AprioriRule()) -> AprioriDecision:
    """Apply ``rule`` to the daily precipitation before the acquisition at ``when`` (see :class:`AprioriRule`).

    ``weather`` has the columns ``date`` (UTC days; naive values are taken as UTC) and ``precipitation_mm``
    (mm, NaN = missing) of :func:`read_weather_csv` / :func:`fetch_open_meteo`. Only the UTC days strictly
    before the acquisition's UTC day are read. The reason gives the numbers, e.g. ``"14.2 mm in the 3 days
    before 2024-04-06 (≥ 10 mm) → wet"``.
    """
    day = acquisition_day(when)
    rain = _daily_series(weather)
    n, m = rule.wet_window_days, rule.dry_days
    needed = [day - timedelta(days=k) for k in range(rule.lookback_days, 0, -1)]  # oldest first
    values = rain.reindex(needed).to_numpy(dtype="float64")
    known = ~np.isnan(values)
    wet_vals, wet_known = values[-n:], known[-n:]
    if wet_known.all():
        total = round(float(wet_vals.sum()), _SUM_DECIMALS)
        if total >= rule.wet_rain_mm:
            return AprioriDecision(
                "wet", f"{total:.1f} mm in the {n} days before {day} (≥ {rule.wet_rain_mm:g} mm) → wet", rule)
    if not known.all():
        gaps = [d for d, ok in zip(needed, known) if not ok]
        shown = ", ".join(str(d) for d in gaps[:5]) + (f", … ({len(gaps)} days)" if len(gaps) > 5 else "")
        return AprioriDecision("none", f"weather data missing for {shown} (the rule reads {needed[0]} to "
                                       f"{needed[-1]}) → none", rule)
    total = round(float(wet_vals.sum()), _SUM_DECIMALS)
    dry_vals = values[-m:]
    dry_days = needed[-m:]
    rain_days = [d for d, v in zip(dry_days, dry_vals) if round(float(v), _SUM_DECIMALS) >= rule.rain_day_mm]
    if not rain_days:
        return AprioriDecision("dry", f"no day with ≥ {rule.rain_day_mm:g} mm in the {m} days before {day} "
                                      f"({round(float(dry_vals.sum()), _SUM_DECIMALS):.1f} mm in all) → dry", rule)
    last = rain_days[-1]
    return AprioriDecision("none", f"{total:.1f} mm in the {n} days before {day} (< {rule.wet_rain_mm:g} mm); "
                                   f"last day with ≥ {rule.rain_day_mm:g} mm: {last}, "
                                   f"{(day - last).days} days before (dry needs {m}) → none", rule)


def _daily_series(weather: pd.DataFrame) -> pd.Series:
    """precipitation_mm indexed by UTC day (``datetime.date``); :class:`InputError` if not a weather frame."""
    missing = [c for c in CSV_REQUIRED if c not in weather.columns]
    if missing:
        raise InputError(f"weather table: missing column(s) {', '.join(missing)}; read it with read_weather_csv "
                         "or fetch_open_meteo")
    dates = pd.to_datetime(weather["date"])
    dates = dates.dt.tz_localize("UTC") if dates.dt.tz is None else dates.dt.tz_convert("UTC")
    index = pd.DatetimeIndex(dates.dt.normalize())
    if index.has_duplicates:
        dup = sorted({str(d.date()) for d in index[index.duplicated()]})
        raise InputError(f"weather table: duplicate days {', '.join(dup[:5])}; keep one row per UTC day")
    values = pd.to_numeric(weather["precipitation_mm"], errors="coerce").to_numpy(dtype="float64")
    return pd.Series(values, index=[d.date() for d in index], dtype="float64")
