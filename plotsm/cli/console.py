"""Where the commands write: results on stdout (``out``), messages and progress on stderr (``err``), and the
state the global options set (``--quiet``).

Printing helpers shared by the commands: :func:`info` (an informational line, silent with --quiet),
:func:`show_warning` (one ``warning:`` line per Python warning) and :func:`fail` (the ``error:`` line and the
exit code).
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


class _State:
    quiet = False


state = _State()


def info(message: str) -> None:
    """An informational line on stderr, unless --quiet."""
    if not state.quiet:
        err.print(message)


def fail(code: int, message: str) -> None:
    """``error: message`` on stderr, then exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """One line per warning on stderr, without the Python source line of the default format."""
    err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
