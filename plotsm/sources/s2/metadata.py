"""Radiometric metadata of Sentinel-2 L2A products: how their values become reflectance (science.md §7).

- ESA L2A (Sen2Cor): ρ = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE, both read from ``MTD_MSIL2A.xml``
  (:func:`read_l2a_offsets`; :func:`parse_l2a_offsets` for its text, e.g. read from a zip), or implied by the
  processing baseline alone (:func:`l2a_offsets_for_baseline`: offset −1000 from baseline 04.00 on, 0 before);
  DN 0 = no data.
- Theia/MAJA L2A and Theia L3A: a fixed encoding, reflectance × 10000 in int16, −10000 no data
  (:data:`THEIA_SCALE`, :data:`THEIA_NODATA`).

:func:`resolve_offsets` turns what a caller gives for an ESA product (its metadata file, an offsets dict or
nothing) into offsets, and :func:`band_offset` picks the offset of one band.
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from plotsm.errors import DataWarning, InputError, UsageError

PathLike = str | os.PathLike[str]

#: Processing baseline from which ESA adds BOA_ADD_OFFSET = −1000 to L2A DNs (25 January 2022) [C].
OFFSET_BASELINE = (4, 0)
#: Offset of baselines ≥ 04.00 when a product does not state it (it always does in MTD_MSIL2A.xml) [C].
DEFAULT_BOA_ADD_OFFSET = -1000.0
#: BOA_QUANTIFICATION_VALUE of every L2A baseline so far [C].
DEFAULT_BOA_QUANTIFICATION = 10000.0

#: Theia/MAJA FRE encoding [C]: reflectance × 10000 in int16, −10000 = no data.
THEIA_SCALE = 10000.0
THEIA_NODATA = -10000

_BASELINE = re.compile(r"^\s*(\d{2})\.(\d{2})\s*$")


# ------------------------------------------------------------------------------------------- L2A metadata


def read_l2a_offsets(mtd_xml: PathLike) -> dict[str, Any]:
    """Radiometric offsets of an ESA L2A product from its ``MTD_MSIL2A.xml``.

    Returns ``{"processing_baseline": "04.00", "boa_quantification_value": 10000.0,
    "boa_add_offset": {"B1": -1000.0, …, "B8A": …, "B12": …}}``; band names come from
    ``Spectral_Information/@physicalBand``. Baselines before 04.00 carry no offset list: their offsets are 0.
    A missing or malformed baseline, a missing quantification value, or a baseline ≥ 04.00 without offsets
    raises :class:`InputError` naming the file.
    """
    path = Path(mtd_xml)
    if not path.is_file():
        raise InputError(f"{path}: L2A metadata not found. Pass the MTD_MSIL2A.xml at the top of the .SAFE.")
    return parse_l2a_offsets(path.read_bytes(), str(path))


def parse_l2a_offsets(xml: bytes | str, source: str) -> dict[str, Any]:
    """:func:`read_l2a_offsets` of the text of an ``MTD_MSIL2A.xml`` (e.g. read from a zipped .SAFE);
    ``source`` names the file in error messages."""
    path = source
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"{path}: not valid XML ({exc}). Pass the MTD_MSIL2A.xml of the product.") from exc

    def find(tag: str) -> list[ET.Element]:
        return [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == tag]

    baselines = find("PROCESSING_BASELINE")
    if not baselines or not (baselines[0].text or "").strip():
        raise InputError(f"{path}: no PROCESSING_BASELINE; cannot tell the BOA offset. "
                         "Pass the MTD_MSIL2A.xml of an L2A product (not MTD_TL.xml or an L1C file).")
    baseline = (baselines[0].text or "").strip()
    parsed = _parse_baseline(baseline)
    if parsed is None:
        raise InputError(f"{path}: unknown processing baseline {baseline!r} (expected NN.NN, e.g. 04.00). "
                         "Pass offsets explicitly with l2a_offsets_for_baseline().")
    quant = find("BOA_QUANTIFICATION_VALUE")
    if not quant:
        raise InputError(f"{path}: no BOA_QUANTIFICATION_VALUE. Pass the MTD_MSIL2A.xml of an L2A product.")
    bands = {el.get("bandId"): el.get("physicalBand") for el in find("Spectral_Information")}
    offsets_el = find("BOA_ADD_OFFSET")
    if offsets_el:
        offsets = {bands.get(el.get("band_id"), f"band_id {el.get('band_id')}"): float(el.text or "nan")
                   for el in offsets_el}
    elif parsed >= OFFSET_BASELINE:
        raise InputError(f"{path}: processing baseline {baseline} (≥ 04.00) but no BOA_ADD_OFFSET values. "
                         "The file looks truncated; use the product's complete MTD_MSIL2A.xml.")
    else:
        offsets = {name: 0.0 for name in bands.values() if name}
    return {"processing_baseline": baseline, "boa_quantification_value": float(quant[0].text or "nan"),
            "boa_add_offset": offsets}


def l2a_offsets_for_baseline(baseline: str) -> dict[str, Any]:
    """Offsets implied by a processing baseline alone, for products shipped without ``MTD_MSIL2A.xml`` (COGs
    whose STAC item gives ``s2:processing_baseline``): offset 0 before 04.00, −1000 from 04.00 on (B4, B8)."""
    parsed = _parse_baseline(baseline)
    if parsed is None:
        raise InputError(f"unknown processing baseline {baseline!r} (expected NN.NN, e.g. 04.00).")
    offset = DEFAULT_BOA_ADD_OFFSET if parsed >= OFFSET_BASELINE else 0.0
    return {"processing_baseline": baseline.strip(), "boa_quantification_value": DEFAULT_BOA_QUANTIFICATION,
            "boa_add_offset": {"B4": offset, "B8": offset}}


def _parse_baseline(text: str) -> tuple[int, int] | None:
    match = _BASELINE.match(text)
    return (int(match[1]), int(match[2])) if match else None


def resolve_offsets(mtd: PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """Offsets of an ESA L2A product from its ``MTD_MSIL2A.xml`` path, an offsets dict (checked for its two keys,
    returned as is) or ``None`` (the pre-04.00 encoding, with a :class:`DataWarning`)."""
    if mtd is None:
        warnings.warn("no L2A metadata given: assuming BOA_ADD_OFFSET 0 and quantification 10000 (baselines "
                      "before 04.00). Pass mtd=MTD_MSIL2A.xml or l2a_offsets_for_baseline(...) to be sure.",
                      DataWarning, stacklevel=3)
        return l2a_offsets_for_baseline("02.00")
    if isinstance(mtd, dict):
        if "boa_quantification_value" not in mtd or "boa_add_offset" not in mtd:
            raise UsageError("offsets dict needs 'boa_quantification_value' and 'boa_add_offset' "
                                     "(use read_l2a_offsets or l2a_offsets_for_baseline).")
        return mtd
    return read_l2a_offsets(mtd)


def band_offset(offsets: dict[str, float], band: str, meta: dict[str, Any]) -> float:
    """BOA_ADD_OFFSET of ``band`` (``"B4"``, also found as ``"B04"``) in the ``boa_add_offset`` dict of ``meta``."""
    for name in (band, band.replace("B", "B0", 1)):
        if name in offsets:
            return float(offsets[name])
    raise InputError(f"no BOA_ADD_OFFSET for band {band} in the metadata of baseline "
                     f"{meta.get('processing_baseline', '?')}: bands present {sorted(offsets)}.")
