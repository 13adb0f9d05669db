"""Where the shipped networks (``models/``) and named queries (``sql/``) are.

In a wheel they are package data under ``plotsm/_data``; in a checkout (editable install) they are the
top-level ``models/`` and ``sql/`` folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _resource_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def models_dir() -> Path:
    """Folder holding the shipped ONNX networks and their model cards."""
    return _resource_dir("models")


def sql_dir() -> Path:
    """Folder holding ``schema.sql`` and one named query per ``.sql`` file."""
    return _resource_dir("sql")
