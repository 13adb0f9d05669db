"""``--config plotsm.toml``: the options of ``plotsm process`` read from a TOML file (stdlib :mod:`tomllib`).

Keys are the options' long names without the dashes (``keep-raw`` or ``keep_raw``); the command line wins over
the file. An unknown key is refused, naming it, so a typo does not pass silently.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from plotsm.errors import UsageError


def read_config(path: str | os.PathLike[str], known: Iterable[str], aliases: dict[str, str] | None = None
                ) -> dict[str, Any]:
    """The settings of the TOML file ``path`` as ``{parameter name (underscores): value}``.

    ``known``: the parameter names accepted. Raises :class:`UsageError` for a missing or malformed file, a key
    not in ``known`` (all of them named) or a table where a value is expected. ``aliases``: key → parameter name
    (``out`` → ``out_dir``)."""
    file = Path(path)
    try:
        with open(file, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"--config {file}: file not found.") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--config {file}: not a readable TOML file ({exc}).") from None
    allowed = set(known)
    values: dict[str, Any] = {}
    unknown = []
    for key, value in doc.items():
        name = key.strip().lstrip("-").replace("-", "_")
        name = (aliases or {}).get(name, name)
        if name not in allowed:
            unknown.append(key)
            continue
        if isinstance(value, dict):
            raise UsageError(f"--config {file}: {key} is a table; expected a value (e.g. {key} = \"…\").")
        values[name] = value
    if unknown:
        raise UsageError(f"--config {file}: unknown key(s) {', '.join(sorted(unknown))}. Known: "
                         f"{', '.join(sorted(n.replace('_', '-') for n in allowed - set((aliases or {}).values())) + list(aliases or {}))}.")
    return values


__all__ = ["read_config"]
