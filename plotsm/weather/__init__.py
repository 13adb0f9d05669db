"""Reading the weather: daily precipitation (and mean temperature) per UTC day, from a CSV or Open-Meteo.

Weather comes from a CSV (:func:`read_weather_csv`, :mod:`plotsm.weather.csv`) or, opt-in, from the Open-Meteo
historical weather API (:func:`fetch_open_meteo`, :mod:`plotsm.weather.open_meteo`: reanalysis, ERA5 /
ERA5-Land and ECMWF IFS in its default "best match" [C: API docs]; the only function of plotsm that uses the
network). Both return the same frame (:mod:`plotsm.weather.frame`):

- ``date``: the UTC day (midnight), ``datetime64[ns, UTC]``, unique, sorted;
- ``precipitation_mm``: precipitation of that day, mm, float64, NaN = missing;
- ``temperature_c``: mean 2 m air temperature of that day, °C, float64, NaN when not given.

What the weather means for an acquisition (the a-priori dry / wet / none state and its rule) is
:mod:`plotsm.apriori`, which sits above this package.
"""

from __future__ import annotations

from plotsm.weather.csv import CSV_OPTIONAL, CSV_REQUIRED, read_weather_csv
from plotsm.weather.open_meteo import (
    OPEN_METEO_ARCHIVE_URL,
    OPEN_METEO_DAILY,
    WeatherServiceError,
    fetch_open_meteo,
    open_meteo_url,
)

__all__ = [
    "CSV_OPTIONAL", "CSV_REQUIRED", "OPEN_METEO_ARCHIVE_URL", "OPEN_METEO_DAILY", "WeatherServiceError",
    "fetch_open_meteo", "open_meteo_url", "read_weather_csv",
]

