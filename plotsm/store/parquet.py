"""The Parquet dataset of an output folder: one file per acquisition, Hive-partitioned by year and month.

``<out>/parquet/moisture/year=YYYY/month=M/<acquisition_id>.parquet`` holds an acquisition's moisture with its
model inputs (``sql/moisture_parquet.sql``). A file is written under a temporary name, then renamed, so a reader
never sees half of one; the temporaries of a killed writer are removed by :func:`clean_parquet_temporaries`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from plotsm.atomic import atomic_path, clean_stale
from plotsm.store.queries import QueriesMixin
from plotsm.times import utc

#: Folder of the dataset inside an output folder.
PARQUET_DIR = Path("parquet") / "moisture"


def parquet_path(out_dir: Path, acquisition_id: str, when: datetime) -> Path:
    """Where the Parquet file of an acquisition is (``<out>/parquet/moisture/year=YYYY/month=M/<id>.parquet``)."""
    t = utc(when)
    return out_dir / PARQUET_DIR / f"year={t.year:04d}" / f"month={t.month}" / f"{acquisition_id}.parquet"


def write_parquet(store: QueriesMixin, out_dir: Path, acquisition_id: str, when: datetime) -> Path:
    """This acquisition's moisture with its model inputs, as one file of the Hive-partitioned dataset."""
    path = parquet_path(out_dir, acquisition_id, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    with atomic_path(path, clean=False) as tmp:
        pq.write_table(store.query("moisture_parquet", {"acquisition_id": acquisition_id}), tmp,
                       compression="zstd")
    return path


def ensure_parquet(store: QueriesMixin, out_dir: Path, acquisition_id: str, when: datetime) -> None:
    """Write the acquisition's file (:func:`write_parquet`) if it is missing."""
    if not parquet_path(out_dir, acquisition_id, when).is_file():
        write_parquet(store, out_dir, acquisition_id, when)


def clean_parquet_temporaries(out_dir: Path) -> None:
    """Temporary Parquet files left by a killed run (their writer's process is gone), and those of plotsm
    versions whose temporary names did not carry a process id."""
    root = out_dir / PARQUET_DIR
    if root.is_dir():
        for folder in root.glob("year=*/month=*"):
            clean_stale(folder)
        for tmp in root.glob("year=*/month=*/.*.parquet.tmp"):
            tmp.unlink(missing_ok=True)
