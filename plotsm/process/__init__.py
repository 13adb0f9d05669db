"""``plotsm process``: one command from parcels and a season to moisture, built from the existing stages.

:mod:`.run` holds the orchestration (search → download → calibration / NDVI on one grid → composites → slope →
series → export), :mod:`.stages` the stages over one product or all of them, :mod:`.ledger` the record that makes
every stage resumable (``process.json``), :mod:`.workers` where the per-product stages run, :mod:`.config` the
``--config`` TOML file. Nothing here prints: the CLI does.
"""

from plotsm.process.config import read_config
from plotsm.process.ledger import LEDGER_NAME, Ledger
from plotsm.process.run import (
                                DryRun,
                                ProcessReport,
                                ProcessSettings,
                                ProductFailure,
                                dry_run,
                                process,
                                read_inputs,
                                search_plan,
)
from plotsm.process.stages import common_grid, describe_grid

__all__ = ["LEDGER_NAME", "DryRun", "Ledger", "ProcessReport", "ProcessSettings", "ProductFailure", "common_grid",
           "describe_grid", "dry_run", "process", "read_config", "read_inputs", "search_plan"]
