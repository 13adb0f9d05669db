"""Time stamps: every date and time plotsm handles is UTC, and an acquisition has one id whatever the entry point.

S1 annotation, STAC items, raster tags and file names give sensing times in UTC, with or without an offset;
the store keeps naive UTC (DuckDB TIMESTAMP). :func:`utc` is the one conversion, :func:`acquisition_id` the one id.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc(when: datetime) -> datetime:
    """``when`` as an aware UTC datetime; a naive value is taken as UTC already (the convention of S1/S2 metadata)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def acquisition_id(when: datetime, platform: str | None) -> str:
    """The one id of an acquisition, whatever the entry point: UTC sensing time to the second, then the platform
    when known (``20211223T051122_S1B``)."""
    return utc(when).strftime("%Y%m%dT%H%M%S") + (f"_{platform}" if platform else "")
