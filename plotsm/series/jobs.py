"""What a series is made of: one job per acquisition, the report of a run, and the callbacks it reports through."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from plotsm.errors import PlotsmError, UsageError, most_serious, option
from plotsm.pipeline import Acquisition, AcquisitionReport, RunSettings
from plotsm.progress import Progress

if TYPE_CHECKING:
    from plotsm.apriori import Announce, AprioriRule

__all__ = ["SHARED_ROLES", "Event", "Progress", "SeriesJob", "SeriesReport", "plan_jobs"]

#: ``event(kind, acquisition_id, detail)`` with kind one of "skipped", "committed", "failed", or "revised" (the
#: joint inversion rewrote a window: ``acquisition_id`` names the window, ``detail`` what was rewritten).
Event = Callable[[str, str, str], None]

#: Raster roles that acquisitions share by design (monthly NDVI, slope): their statistics are kept by workers.
SHARED_ROLES = ("ndvi", "slope")


@dataclass(frozen=True)
class SeriesJob:
    """One acquisition to process with its settings (``settings.apriori`` is the state actually used)."""

    acq: Acquisition
    settings: RunSettings
    apriori_reason: str | None = None


@dataclass
class SeriesReport:
    """What :func:`run_series` did."""

    processed: list[AcquisitionReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: the error class of each failed acquisition (its exit code: :func:`most_serious`)
    failure_kinds: dict[str, type[PlotsmError]] = field(default_factory=dict)
    #: the windows the joint inversion rewrote (:class:`plotsm.series.temporal_pass.WindowReport`)
    revised: list[Any] = field(default_factory=list)

    def add_failure(self, acquisition_id: str, error: PlotsmError) -> None:
        """Acquisition ``acquisition_id`` failed with ``error`` (kept: the reason and the kind of error)."""
        self.failed.append((acquisition_id, str(error)))
        self.failure_kinds[acquisition_id] = type(error)

    @property
    def failure_kind(self) -> type[PlotsmError] | None:
        """The most serious kind of error among the failed acquisitions (None if none failed): a run with failures
        exits with its code."""
        return most_serious(self.failure_kinds.values()) if self.failed else None

    @property
    def status_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.processed:
            for k, v in r.status_counts.items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items()))



def plan_jobs(acqs: Sequence[Acquisition], settings: RunSettings, apriori: str = "none", *,
              rule: AprioriRule | None = None, area: Any = None, weather_csv: str | os.PathLike[str] | None = None,
              weather: str | None = None, url: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
              announce: Announce | None = None) -> list[SeriesJob]:
    """One job per acquisition, with its a-priori state: ``apriori`` dry, wet or none for all, or ``"auto"``:
    decided for each acquisition by ``rule`` (default :class:`~plotsm.apriori.AprioriRule`) from the weather of
    ``weather_csv`` or of ``weather="open-meteo"`` at the centre of ``area`` (the parcels' GeoDataFrame), kept in
    ``cache_dir`` (:func:`plotsm.apriori.decide_from_weather`, whose ``announce`` is called before a download)."""
    from plotsm.apriori import AprioriRule, decide_from_weather

    if apriori not in ("dry", "wet", "none", "auto"):
        raise UsageError(f"{option('apriori')} {apriori!r}: expected one of dry, wet, none, auto")
    if apriori != "auto":
        given = replace(settings, apriori=apriori)  # type: ignore[arg-type]  # checked just above
        return [SeriesJob(a, given, apriori_reason=f"set by {option('apriori', apriori)}") for a in acqs]
    rule = rule or AprioriRule()
    decisions = decide_from_weather([a.datetime_utc for a in acqs], rule, weather_csv=weather_csv, weather=weather,
                                    area=area, url=url, cache_dir=cache_dir, announce=announce)
    return [SeriesJob(a, replace(settings, apriori=d.state, apriori_rule=rule.to_dict()), apriori_reason=d.reason)
            for a, d in zip(acqs, decisions, strict=True)]
