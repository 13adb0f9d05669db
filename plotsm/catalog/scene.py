"""The record a catalogue scan produces, :class:`S1Scene`, with its σ⁰ unit type and :class:`CatalogWarning`.

Shared by the folder scan, the STAC reader and the pairing, so it has a module of its own below them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from plotsm.catalog.naming import _some
from plotsm.errors import InputError, PlotsmWarning
from plotsm.times import acquisition_id

VvUnit = Literal["linear", "db"]


class CatalogWarning(PlotsmWarning):
    """A file in an input folder was not recognised and is skipped."""


@dataclass(frozen=True)
class S1Scene:
    """One acquisition's analysis-ready S1 rasters: σ⁰ VV (``vv_unit``) and incidence angle (degrees)."""

    datetime_utc: datetime
    vv: Path
    theta: Path
    platform: str | None = None
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    vv_unit: VvUnit = "linear"

    @property
    def acquisition_id(self) -> str:
        """The id :class:`plotsm.pipeline.Acquisition` will give it (:func:`plotsm.times.acquisition_id`)."""
        return acquisition_id(self.datetime_utc, self.platform)


def vv_unit_of(scenes: Iterable[S1Scene]) -> VvUnit:
    """The σ⁰ unit shared by all ``scenes`` (for ``RunSettings.vv_unit``); mixed units are an InputError."""
    by_unit: dict[str, list[str]] = defaultdict(list)
    for scene in scenes:
        by_unit[scene.vv_unit].append(scene.vv.name)
    if len(by_unit) > 1:
        raise InputError(f"σ⁰ rasters in dB ({_some(by_unit['db'])}) and in linear units ({_some(by_unit['linear'])}) "
                         "are mixed; one run takes one unit. Convert them to one unit or run them separately.")
    return "db" if "db" in by_unit else "linear"
