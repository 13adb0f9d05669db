"""Errors and warnings of plotsm, and how messages name settings.

Every :class:`PlotsmError` carries the process exit code the CLI uses for it (house style):
0 ok, 1 bug, 2 usage, 3 configuration, 4 input data, 5 model, 6 storage, 130 interrupted. Library code raises these;
only :mod:`plotsm.cli` turns them into a message and an exit code. Messages name the thing and the fix.

One class per kind of mistake: a bad argument (a value or a combination the caller chose) is always a
:class:`UsageError` (exit 2), whether it came from an option or a keyword argument; bad data read from a file is
an :class:`InputError` (4); a store that cannot be written a :class:`StorageError` (6).

A message that tells which setting fixes the problem names it with :func:`option`: ``vv_unit='db'`` in Python, and
``--vv-unit db`` while the command line is the one talking (:func:`cli_wording`), so that a
notebook user reads the keyword and a shell user the option.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

#: Environment variable saying who words the messages: "cli" while the command line runs (inherited by its
#: worker processes), else Python.
WORDING_VARIABLE = "PLOTSM_WORDING"
_UNSET = object()

#: keyword argument → command-line option, where the option's name is not the keyword's (``min_valid_pixels`` …)
OPTION_NAMES = {"min_valid_pixels": "--min-pixels", "layer": "--parcels-layer", "slope_max_deg": "--slope-max",
                "ndvi_max": "--ndvi-max"}


@contextmanager
def cli_wording() -> Iterator[None]:
    """Word settings in messages as command-line options inside the block (:func:`plotsm.cli.main`); the previous
    wording is restored after it, so a test calling the CLI in process leaves the library's wording as it was."""
    before = os.environ.get(WORDING_VARIABLE)
    os.environ[WORDING_VARIABLE] = "cli"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WORDING_VARIABLE, None)
        else:
            os.environ[WORDING_VARIABLE] = before


def option(name: str, value: object = _UNSET) -> str:
    """How a message names setting ``name`` (a keyword argument) with ``value``: ``vv_unit='db'`` in Python,
    ``--vv-unit db`` on the command line (see the module docstring)."""
    if os.environ.get(WORDING_VARIABLE) == "cli":
        flag = OPTION_NAMES.get(name, "--" + name.replace("_", "-"))
        return flag if value is _UNSET else f"{flag} {value}"
    return name if value is _UNSET else f"{name}={value!r}"


class PlotsmError(Exception):
    """Base class of every error plotsm raises on purpose."""

    exit_code: int = 1


class UsageError(PlotsmError):
    """A command was called with options that do not fit together."""

    exit_code = 2


class ConfigurationError(PlotsmError):
    """A setting is out of range or inconsistent."""

    exit_code = 3


class InputError(PlotsmError):
    """An input file or table is missing, unreadable or invalid."""

    exit_code = 4


class ModelError(PlotsmError):
    """A network is missing, corrupt, or was given inputs of the wrong shape."""

    exit_code = 5


class StorageError(PlotsmError):
    """The output store cannot be read or written."""

    exit_code = 6


class Interrupted(PlotsmError):
    """The user stopped the command (Ctrl-C, SIGTERM); 130 is the shell's code for a process ended by SIGINT."""

    exit_code = 130


#: Exit codes from the most serious cause to the least: a bug (1), then the store (6), a network (5), an input (4),
#: a setting (3), an argument (2). A series where acquisitions failed for several causes exits with the first.
SEVERITY = (1, 6, 5, 4, 3, 2)


def most_serious(kinds: Iterable[type[PlotsmError]]) -> type[PlotsmError]:
    """The most serious of error classes ``kinds`` (:data:`SEVERITY`; PlotsmError when ``kinds`` is empty)."""
    rank = {code: i for i, code in enumerate(SEVERITY)}
    return min(kinds, key=lambda kind: rank.get(kind.exit_code, 0), default=PlotsmError)


class PlotsmWarning(UserWarning):
    """Base class of plotsm warnings (tests turn them into errors unless expected)."""


class GeometryWarning(PlotsmWarning):
    """Parcels were repaired or dropped."""


class ParcelsWarning(PlotsmWarning):
    """Parcels were read in a way the user may not expect: e.g. an id-like field was passed over."""


class DataWarning(PlotsmWarning):
    """Input values were clipped, masked or replaced."""
