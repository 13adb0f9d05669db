"""Errors and warnings of plotsm.

Every :class:`PlotsmError` carries the process exit code the CLI uses for it (house style):
0 ok, 1 bug, 2 usage, 3 configuration, 4 input data, 5 model, 6 storage, 130 interrupted. Library code raises these;
only :mod:`plotsm.cli` turns them into a message and an exit code. Messages name the thing and the fix.
"""

from __future__ import annotations


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


class PlotsmWarning(UserWarning):
    """Base class of plotsm warnings (tests turn them into errors unless expected)."""


class GeometryWarning(PlotsmWarning):
    """Parcels were repaired or dropped."""


class ParcelsWarning(PlotsmWarning):
    """Parcels were read in a way the user may not expect: e.g. an id-like field was passed over."""


class DataWarning(PlotsmWarning):
    """Input values were clipped, masked or replaced."""
