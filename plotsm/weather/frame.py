"""The weather frame: daily precipitation (and mean temperature) per UTC day, checked where it is built.

Both readers (:func:`plotsm.weather.read_weather_csv`, :func:`plotsm.weather.fetch_open_meteo`) build it with
:func:`weather_frame`, so a duplicate day or a negative total is refused the same way, whatever the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from plotsm.errors import InputError


def weather_frame(dates: Sequence[date], precipitation_mm: Sequence[float], temperature_c: Sequence[float],
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
