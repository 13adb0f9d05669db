"""The record of what ``plotsm process`` has made in its folder: ``process.json``.

Each product's analysis-ready rasters (paths relative to the folder) are recorded once they are written (they are
written atomically, so a file that exists is complete); the composites with the NDVI rasters they were made of,
the slope with its DEM, and the common grid (a folder holds one grid: rasters of another would not compose). The
ledger is rewritten atomically after each change, so a killed run leaves it consistent: at worst a product whose
rasters were written but not yet recorded is made again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from plotsm.atomic import atomic_path
from plotsm.errors import InputError, UsageError

LEDGER_NAME = "process.json"
LEDGER_VERSION = 1


class Ledger:
    """``process.json`` of ``root``: products done (item id → record), composites, slope and the grid key."""

    def __init__(self, root: Path, doc: dict[str, Any]) -> None:
        self.root, self.doc = root, doc
        self._lock = threading.Lock()

    @classmethod
    def load(cls, root: Path) -> Ledger:
        path = root / LEDGER_NAME
        if not path.is_file():
            return cls(root, {"plotsm:process": LEDGER_VERSION, "grid": None, "products": {}, "composites": None,
                              "slope": None})
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot be read ({exc}). Remove it to make every product again.") from None
        if not isinstance(doc, dict) or doc.get("plotsm:process") != LEDGER_VERSION:
            raise InputError(f"{path}: not a plotsm process ledger of version {LEDGER_VERSION}. Remove it, or "
                             "pass another --out.")
        return cls(root, doc)

    def check_grid(self, key: str, described: str) -> None:
        """Record the grid of this folder, or refuse another one (its rasters would not compose)."""
        known = self.doc.get("grid")
        if known is None:
            self.doc["grid"] = {"key": key, "grid": described}
            self.save()
        elif known["key"] != key:
            raise UsageError(f"{self.root}: made on another grid ({known['grid']}) than this run's ({described}): "
                             "other parcels, margin or resolution. Pass another --out, or the same settings.")

    def done(self, item_id: str) -> dict[str, Any] | None:
        """The record of ``item_id`` when its outputs all exist, else None."""
        record = self.doc["products"].get(item_id)
        if record and all((self.root / p).is_file() for p in record["outputs"]):
            return dict(record)
        return None

    def record(self, item_id: str, collection: str, outputs: list[Path], raw: str | None) -> None:
        with self._lock:
            self.doc["products"][item_id] = {"collection": collection, "raw": raw,
                                             "outputs": [self.rel(p) for p in outputs]}
            self.save()

    def set(self, what: str, value: Any) -> None:
        with self._lock:
            self.doc[what] = value
            self.save()

    def rel(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def save(self) -> None:
        with atomic_path(self.root / LEDGER_NAME) as tmp:
            tmp.write_text(json.dumps(self.doc, indent=1, sort_keys=True), encoding="utf-8")


__all__ = ["LEDGER_NAME", "Ledger"]
