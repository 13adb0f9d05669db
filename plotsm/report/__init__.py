"""What people look at: the offline HTML report (:func:`build_report`), moisture maps as rasters and quick-look
PNGs (:mod:`plotsm.report.rasters`, :mod:`plotsm.report.quicklook`)."""

from __future__ import annotations

from plotsm.report.data import MAX_BYTES, ReportData
from plotsm.report.html import build_report

__all__ = ["MAX_BYTES", "ReportData", "build_report"]
