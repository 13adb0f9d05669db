"""``plotsm validate``: a run's moisture against soil-moisture probes.

Probes (ISMN ``.stm`` files in both layouts, or a plain CSV with its unit stated) are read and checked
(:mod:`.ismn`, :mod:`.csvfile`, :mod:`.probes`), matched to parcels in space and to acquisitions in time
(:mod:`.match`); the agreement is measured per station and pooled in vol.% (:mod:`.metrics`: n, bias, RMSD,
ubRMSD, R with p, slope) and drawn (:mod:`.figures`). :func:`validate_store` (:mod:`.run`) does it all and writes
``metrics.csv``, ``matches.csv``, ``scatter.png`` and ``series_<station>.png`` into ``<out>/validation/``.

A probe at 5–10 cm does not see the same layer as C-band radar (a few cm): :data:`DEPTH_NOTE` says so.
"""

from __future__ import annotations

from plotsm.validate.metrics import METRICS_COLUMNS, pair_metrics
from plotsm.validate.probes import ProbeSet, read_probes
from plotsm.validate.run import DEPTH_NOTE, VALIDATION_DIR, ValidationResult, validate_store

__all__ = ["DEPTH_NOTE", "METRICS_COLUMNS", "VALIDATION_DIR", "ProbeSet", "ValidationResult", "pair_metrics",
           "read_probes", "validate_store"]
