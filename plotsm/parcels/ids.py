"""Choosing the parcel id field: id-like names, unique keys, the file's feature ids, generated numbers; a
natural id passed over is never passed over silently."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from plotsm.errors import InputError, ParcelsWarning, option
from plotsm.parcels.model import ParcelsReport


def _is_id_name(name: str) -> bool:
    """'id', 'ID_PARCEL', 'parcel_id', 'fid', 'objectid', 'idParcel' (not 'humidity' nor 'width')."""
    low = name.lower()
    return bool(re.search(r"(^|[^a-z])id([^a-z]|$)", low) or low.endswith("id") or re.match(r"^id[A-Z]", name))


def _id_kind_ok(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values) or pd.api.types.is_string_dtype(values)


def _is_integral_float(values: pd.Series) -> bool:
    """Floats that are integers where present: an integer field with nulls, as pyogrio reads it (1.0, NaN, 3.0)."""
    if not pd.api.types.is_float_dtype(values):
        return False
    present = values.dropna().to_numpy()
    return bool(present.size and np.all(np.mod(present, 1) == 0))


def _is_unique_key(values: pd.Series) -> bool:
    return bool(values.notna().all() and values.is_unique)


def _show(value: Any) -> str:
    """A value as the user wrote it: 7, 'A12' (not np.int64(7))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _key_defects(values: pd.Series) -> dict[str, str]:
    """Why ``values`` are not a unique key, nulls first: {"null": "2 null value(s) (e.g. row 4)", "duplicated": …}."""
    defects: dict[str, str] = {}
    nulls = values.isna()
    if nulls.any():
        defects["null"] = f"{int(nulls.sum())} null value(s) (e.g. row {int(np.flatnonzero(nulls)[0])})"
    present = values[~nulls]
    dup = present.duplicated(keep=False)
    if dup.any():
        defects["duplicated"] = (
            f"{present[dup].nunique()} duplicated value(s) over {int(dup.sum())} rows (e.g. {_show(present[dup].iloc[0])})"
        )
    return defects


def _id_fix(kind: str) -> str:
    """The fix of an id field with nulls or duplicates (worded when raised: option or keyword)."""
    return {"null": f"Fill them, or pass another unique field to {option('id_field')}.",
            "duplicated": f"Make the ids unique, or pass another field to {option('id_field')}."}[kind]


def _check_ids(values: pd.Series, name: str, path: Path) -> None:
    defects = _key_defects(values)
    if defects:
        kind, text = next(iter(defects.items()))  # nulls first
        raise InputError(f"{path}: id field {name!r} has {text}. {_id_fix(kind)}")


def _skipped_message(path: Path, skipped: list[tuple[str, str]], source: str, nulls: bool) -> str:
    """One line saying which id-like fields were passed over, why, what was used instead and how to choose."""
    fix = "unique and non-null" if nulls else "unique"
    if len(skipped) == 1:
        name, why = skipped[0]
        what, todo = f"field {name!r} looks like the parcel id but has {why}", f"Make {name} {fix}"
    else:
        listed = ", ".join(f"{name!r} ({why})" for name, why in skipped)
        what, todo = f"fields {listed} look like the parcel id but none is a unique key", f"Make one of them {fix}"
    return f"{path.name}: {what}; parcel ids come from {source} instead. {todo} or pass {option('id_field', 'FIELD')} to choose."


def _normalise_ids(values: pd.Series, name: str, path: Path) -> pd.Series:
    """int64 for integers (and integral floats), strings otherwise."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(values):
        if np.all(np.mod(values.to_numpy(), 1) == 0):
            return values.astype(np.int64)
        raise InputError(f"{path}: id field {name!r} holds non-integer numbers. Pass a field of integers or text to {option('id_field')}.")
    return values.astype(str)


def _choose_id(
    gdf: gpd.GeoDataFrame, path: Path, id_field: str | None, fids: pd.Series | None, report: ParcelsReport
) -> tuple[str | None, pd.Series]:
    attrs = [c for c in gdf.columns if c != gdf.geometry.name]
    columns = {c: gdf[c].reset_index(drop=True) for c in attrs}
    if fids is not None and fids.name not in columns:
        columns[str(fids.name)] = fids
    if id_field is not None:
        if id_field not in columns:
            raise InputError(
                f"{path}: no field {id_field!r}. Available fields: {', '.join(columns) or 'none'}. Pass one to {option('id_field')}."
            )
        _check_ids(columns[id_field], id_field, path)
        return id_field, _normalise_ids(columns[id_field], id_field, path)
    # an integer field with nulls is read as floats: still id-like, so that its nulls are reported, not hidden
    named = [c for c in attrs if _is_id_name(c) and (_id_kind_ok(gdf[c]) or _is_integral_float(gdf[c]))]
    typed = [c for c in attrs if _id_kind_ok(gdf[c]) and c not in named]
    fid_names = [str(fids.name)] if fids is not None and fids.name not in attrs else []
    chosen: str | None = None
    for name in [*named, *typed, *fid_names]:
        if _is_unique_key(columns[name]):
            chosen = name
            break
        if name in named:  # a natural id abandoned: never silently (report.id_skipped, a message, a warning)
            report.id_skipped.append((name, " and ".join(_key_defects(columns[name]).values())))
    natural = next((c for c in typed if pd.api.types.is_integer_dtype(gdf[c])), None) if not named else None
    if natural is not None and chosen != natural:
        # no id-like name: the first integer field (e.g. a segmentation's 'label') was the natural id; say why
        # another field, the feature ids or generated numbers are used instead
        report.id_skipped.append((natural, " and ".join(_key_defects(columns[natural]).values())))
    if chosen is not None:
        ids = _normalise_ids(columns[chosen], chosen, path)
        report.messages.append(f"{path.name}: parcel ids from field {chosen!r} (pass {option('id_field')} to choose another).")
        source = f"the file's feature ids ({chosen!r})" if chosen in fid_names else f"field {chosen!r}"
    else:
        ids = pd.Series(np.arange(1, len(gdf) + 1, dtype=np.int64))
        report.id_generated = True
        report.messages.append(f"{path.name}: no unique id field; parcel ids generated 1..{len(gdf)} in file order.")
        source = f"numbers 1..{len(gdf)} generated in file order"
    if report.id_skipped:
        nulls = any(columns[name].isna().any() for name, _ in report.id_skipped)
        msg = _skipped_message(path, report.id_skipped, source, nulls)
        report.messages.append(msg)
        warnings.warn(msg, ParcelsWarning, stacklevel=3)
    return chosen, ids
