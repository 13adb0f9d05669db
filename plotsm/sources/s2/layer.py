"""The type :mod:`.ndvi` and :mod:`.masks` share: one input raster of an NDVI computation, a band or a mask."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One input raster: path, role (named in errors) and how its values become reflectance or a mask."""

    path: Path
    role: str
    #: bands: values → reflectance times a factor common to both bands (float32, NaN no data, a new array);
    #: masks: values → invalid (bool), element by element (so a 256-entry table can stand for it)
    convert: Callable[[np.ndarray], np.ndarray]
