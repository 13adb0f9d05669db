"""plotsm command-line interface (typer).

The only package that prints, reads the environment or chooses an exit code: library code raises
:class:`plotsm.errors.PlotsmError` subclasses and :func:`main` turns them into a one-line message on stderr and
the error's exit code (0 ok, 1 bug, 2 usage, 3 configuration, 4 input data, 5 model, 6 storage).
Progress goes to stderr (rich); results to stdout.

Commands are thin: they parse and check their options, call the library, and print what it returns.

- :mod:`.console`: stdout/stderr consoles, the --quiet state, the info / warning / error lines;
- :mod:`.progress`: progress bars on a terminal, plain progress lines in a log;
- :mod:`.model`: ``train``, ``model list``, ``model evaluate``;
- :mod:`.run`: ``run``;
- :mod:`.acquire`: ``search``, ``download``;
- :mod:`.process`: ``process``;
- :mod:`.demo`: ``demo``;
- :mod:`.store`: ``sql``, ``export``, ``delete``;
- :mod:`.sources`: ``s1 calibrate``, ``s2 ndvi``, ``s2 composite``, ``dem slope``.
"""

from __future__ import annotations

import errno
import threading
from typing import Annotated, Any

import typer

from plotsm import __version__
from plotsm.cli.acquire import download, search
from plotsm.cli.console import err, fail, out, show_warning, state
from plotsm.cli.demo import demo
from plotsm.cli.model import model_app, train
from plotsm.cli.process import process
from plotsm.cli.maps import map_command
from plotsm.cli.report import report
from plotsm.cli.run import run
from plotsm.cli.segment import segment
from plotsm.cli.sources import dem_app, s1_app, s2_app
from plotsm.cli.store import TABLE_CELL_MAX, delete, export, sql_command
from plotsm.cli.validate import validate
from plotsm.cli.store import _format_table as _format_table  # bench/sql_format.py times it
from plotsm.errors import PlotsmError

__all__ = ["TABLE_CELL_MAX", "app", "err", "main", "out", "state"]


def _flags_take_no_value() -> None:
    """typer 0.2x prints "<bool>" beside every on/off flag (--force, --help) in the help, as if it took a value;
    flags take none, so show nothing there (display only: parsing is untouched)."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "plotsm_patched", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich.plotsm_patched = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        out.print(f"plotsm {__version__}")
        raise typer.Exit()


def _main(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or informational messages.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    state.quiet = quiet


def _build_app() -> typer.Typer:
    """The ``plotsm`` app: the commands in the order the help lists them, then the groups."""
    _flags_take_no_value()
    app = typer.Typer(
        name="plotsm",
        help="Plot-scale surface soil moisture from Sentinel-1 and Sentinel-2 (S2MP method).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_main)
    app.command()(train)
    app.command()(run)
    app.command("search")(search)
    app.command("download")(download)
    app.command("process")(process)
    app.command("segment")(segment)
    app.command()(demo)
    app.command("sql")(sql_command)
    app.command()(export)
    app.command("report")(report)
    app.command("map")(map_command)
    app.command("validate")(validate)
    app.command()(delete)
    app.add_typer(model_app, name="model")
    app.add_typer(s2_app, name="s2")
    app.add_typer(dem_app, name="dem")
    app.add_typer(s1_app, name="s1")
    _unwrap_help(app)
    return app


def _unwrap_help(app: typer.Typer) -> None:
    """Give each command its docstring with the source's hard line breaks joined inside paragraphs: typer's rich
    help keeps them, which printed ragged lines in ``plotsm --help``. Paragraphs (blank lines) and list items
    (lines starting with ``-``, ``•`` or a digit and ``.``) keep their breaks."""
    import inspect
    import re

    item = re.compile(r"^\s*(?:[-•]|\d+\.)\s")

    def unwrap(text: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines: list[str] = []
            for line in paragraph.splitlines():
                if lines and not item.match(line):
                    lines[-1] += " " + line.strip()
                else:
                    lines.append(line.strip())
            paragraphs.append("\n".join(lines))
        return "\n\n".join(paragraphs)

    for info in app.registered_commands:
        doc = info.help or (inspect.getdoc(info.callback) if info.callback else None)
        if doc:
            info.help = unwrap(doc)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


app = _build_app()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, map plotsm errors to their exit codes.

    Usage errors are reported by typer itself (exit 2); a :class:`PlotsmError` becomes one line on stderr and
    its exit code; an OSError on a destination (permission, space) is a storage error (exit 6) naming the path;
    Ctrl-C and SIGTERM stop the command with exit 130 and no traceback; anything else is a bug (exit 1, with the
    traceback). Warnings are printed as one ``warning:`` line each (no Python source line). Messages name
    settings as the command line spells them (``--vv-unit db``: :func:`plotsm.errors.cli_wording`).
    """
    import signal
    import warnings

    from plotsm.errors import cli_wording
    from plotsm.zonal import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread allocates: see plotsm.zonal.MALLOC_ARENAS
    shown, warnings.showwarning = warnings.showwarning, show_warning
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    command = typer.main.get_command(app)
    try:
        with cli_wording():
            command.main(args=argv, prog_name="plotsm", standalone_mode=True)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM handler) into exit 130, silently
            fail(130, "interrupted. Files being written were removed: nothing half-written is left.")
        raise
    except PlotsmError as exc:
        fail(exc.exit_code, str(exc))
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRNOS:
            raise
        from plotsm.atomic import storage_error

        fail(6, str(storage_error(exc.filename or "output", exc)))
    finally:
        warnings.showwarning = shown


#: errno values of an OSError that mean "cannot write the destination" (exit 6, not a bug)
_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM behaves as Ctrl-C: the command stops where it is, cleans up and says what is kept."""
    raise KeyboardInterrupt
