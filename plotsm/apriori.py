"""The a-priori soil moisture state (dry / wet / none) of an acquisition, from the daily precipitation before it.

S²MP constrains the inversion with an a-priori soil state [C: the seed paper, "A priori knowledge on the soil
moisture state", ``shared/seed/000_6fe336b6b9aa1337.txt``; method of El Hajj et al. 2017, *Remote Sensing*
9:1292]: "dry to slightly wet" when there was no precipitation for many days before the SAR acquisition (mv
assumed 2–25 vol.%, network trained on 2–30), "very wet" after heavy rainfall preceding it (25–40 vol.%, network
trained on 20–40). The paper leaves this to expertise on precipitation and temperature and gives no numbers
(science.md §6: weather used [C], rule [D]). :class:`AprioriRule` turns it into a named, documented rule on
daily precipitation totals (mm/day); :func:`decide_apriori` applies it to one acquisition and returns the state
with its reason, which the pipeline stores per acquisition.

The rule reads the weather frame of :mod:`plotsm.weather` (``date``: UTC days; ``precipitation_mm``: mm per
day, NaN = missing). Temperature is kept in that frame but not used by the rule [D]: the paper names it as part
of the expertise without a rule, and a freeze/snow criterion would be a separate setting. Only
:func:`decide_from_weather`, which reads the weather itself (a CSV or Open-Meteo) and then applies the rule to a
series of acquisitions, imports :mod:`plotsm.weather`, when it is called.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from plotsm.errors import ConfigurationError, InputError, UsageError
from plotsm.times import utc

#: Columns of the weather frame the rule reads (the frame of :func:`plotsm.weather.read_weather_csv`).
RULE_COLUMNS = ("date", "precipitation_mm")

#: Decimals (mm) sums are rounded to before a threshold is compared [D]: 3.3 + 3.3 + 3.4 is 10 mm, not
#: 9.999999999999998 mm. Daily precipitation is stored with 0.1 mm precision by Open-Meteo [C: Open-Meteo
#: historical weather API docs].
_SUM_DECIMALS = 6


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


def acquisition_day(when: datetime | date) -> date:
    """UTC day of an acquisition (a naive datetime is taken as UTC, as everywhere in plotsm)."""
    if isinstance(when, datetime):
        return utc(when).date()
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
    missing = [c for c in RULE_COLUMNS if c not in weather.columns]
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


#: ``announce(lat, lon, start, end)``: called by :func:`decide_from_weather` before it asks Open-Meteo for the
#: daily weather at (``lat``, ``lon``) from ``start`` to ``end`` (UTC days, inclusive).
Announce = Callable[[float, float, date, date], None]

#: The weather services :func:`decide_from_weather` can read.
WEATHER_SERVICES = ("open-meteo",)


def decide_from_weather(whens: Sequence[datetime], rule: AprioriRule = AprioriRule(), *,
                        weather_csv: str | os.PathLike[str] | None = None, weather: str | None = None,
                        area: Any = None, url: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                        announce: Announce | None = None) -> list[AprioriDecision]:
    """The a-priori state of each acquisition at ``whens`` (in that order) by ``rule``, from the daily weather
    of a CSV (``weather_csv``, :func:`plotsm.weather.read_weather_csv`) or of a service (``weather="open-meteo"``,
    :func:`plotsm.weather.fetch_open_meteo`): exactly one of the two.

    Open-Meteo is asked once, for the days the rule reads for all the acquisitions (:func:`weather_period`), at
    the centre of the extent of ``area`` (a GeoDataFrame with a CRS, e.g. the parcels: the centre of their
    bounds in lon/lat, since a union of 150,000 parcels would cost more than it is worth here), from ``url``
    (default: :data:`plotsm.weather.OPEN_METEO_ARCHIVE_URL`), its answer kept in ``cache_dir``; ``announce``
    is called just before.
    """
    from plotsm.errors import option
    from plotsm.weather import OPEN_METEO_ARCHIVE_URL, fetch_open_meteo, read_weather_csv

    if (weather_csv is None) == (weather is None):
        raise UsageError(f"{option('apriori', 'auto')} needs the weather: {option('weather_csv', 'FILE')}, or "
                         f"{option('weather', 'open-meteo')} to download it (one of the two).")
    if weather_csv is not None:
        frame = read_weather_csv(weather_csv)
    else:
        if weather not in WEATHER_SERVICES:
            raise UsageError(f"{option('weather')} {weather!r}: expected one of {', '.join(WEATHER_SERVICES)}")
        if area is None:
            raise UsageError(f"{option('weather', weather)} needs the area to ask the weather for: pass area=, "
                             "e.g. the parcels' GeoDataFrame.")
        x0, y0, x1, y1 = area.to_crs("EPSG:4326").total_bounds
        lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
        start, end = weather_period(whens, rule)
        if announce is not None:
            announce(lat, lon, start, end)
        frame = fetch_open_meteo(lat, lon, start, end, base_url=url or OPEN_METEO_ARCHIVE_URL,
                                 cache_dir=Path(cache_dir) if cache_dir is not None else None)
    return [decide_apriori(frame, when, rule) for when in whens]
