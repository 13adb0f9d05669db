"""Shared test helpers: builders of rasters and shapes, the session's demo scene, the CLI run in process, damaged
zip members, and the CLI's wording of messages.

Test modules import the plain builders with ``from conftest import write_raster, run_cli`` (pytest puts this
folder on the import path) and get the fixtures by name.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def corrupt_zip_member(archive: Path, suffix: str, where: float = 0.5) -> str:
    """Flip the bits of one byte of the data of the member ending in ``suffix`` (at fraction ``where`` of its
    stored bytes); return its name. The data start is read from the member's local header in the file (its name
    and extra field may differ from the central directory's), so headers and central directory stay intact."""
    with zipfile.ZipFile(archive) as zf:
        (info,) = [i for i in zf.infolist() if i.filename.endswith(suffix)]
    raw = bytearray(archive.read_bytes())
    local = raw[info.header_offset: info.header_offset + 30]
    assert local[:4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    raw[info.header_offset + 30 + name_len + extra_len + int(info.compress_size * where)] ^= 0xFF
    archive.write_bytes(raw)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo(info.filename).CRC == info.CRC  # the archive still opens, its records unchanged
    return info.filename


@pytest.fixture
def corrupt() -> Callable[..., str]:
    """:func:`corrupt_zip_member`, for tests of damaged products."""
    return corrupt_zip_member


@pytest.fixture
def cli_words() -> Iterator[None]:
    """Messages worded as the command line words them (``--vv-unit db``), for tests of what a shell user reads;
    without it the library words settings as Python keywords (``vv_unit='db'``)."""
    from plotsm.errors import cli_wording

    with cli_wording():
        yield


# ------------------------------------------------------------------------------------------------ builders

UTM = "EPSG:32631"
X0, Y0, RES = 500_000.0, 4_800_000.0, 10.0  # top-left corner and pixel size of the generated rasters


def write_raster(path: Path, data: Any, *, nodata: float | None = None, crs: str | None = UTM, x0: float = X0,
                 y0: float = Y0, res: float = RES, tags: dict[str, str] | None = None, **profile: Any) -> Path:
    """A one-band GeoTIFF of ``data`` on a north-up grid (``res`` m pixels from (x0, y0)); tags before pixels."""
    import warnings

    import numpy as np
    import rasterio
    from affine import Affine

    data = np.asarray(data)
    meta = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1, "dtype": data.dtype,
            "crs": crs, "transform": Affine(res, 0.0, x0, 0.0, -res, y0), "nodata": nodata, **profile}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning for the no-CRS case
        with rasterio.open(path, "w", **meta) as dst:
            if tags:
                dst.update_tags(**tags)
            dst.write(data, 1)
    return path


def pixel_box(c0: float, r0: float, c1: float, r1: float, x0: float = X0, y0: float = Y0, res: float = RES) -> Any:
    """A rectangle in pixel units (column, row) of the generated grid, as map coordinates."""
    import shapely

    return shapely.box(x0 + c0 * res, y0 - r1 * res, x0 + c1 * res, y0 - r0 * res)


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo region (`plotsm demo`'s scene, seed 2017), built once for the whole session under
    ``<tmp>/demo-output/scene`` (the path the README's examples use, relative to ``<tmp>``): read it, do not
    write into it."""
    from plotsm.demo import build_demo_scene

    return build_demo_scene(tmp_path_factory.mktemp("session") / "demo-output" / "scene")


# --------------------------------------------------------------------------------------------- the CLI


#: The warnings filters of a fresh ``python`` (no -W, no PYTHONWARNINGS): what a ``plotsm`` process starts with.
#: Anything they do not match is shown once per location (the "default" action), as the command line shows it.
FRESH_WARNINGS_FILTERS = (("default", DeprecationWarning, r"__main__\Z"), ("ignore", DeprecationWarning, ""),
                          ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                          ("ignore", ResourceWarning, ""))


@contextlib.contextmanager
def _fd_output(fd: int) -> Iterator[Callable[[], str]]:
    """What is written straight to file descriptor ``fd`` inside the block (GDAL, ONNX Runtime, a handler bound
    to the original stream): a subprocess's pipe holds it too. The returned function gives it after the block."""
    import tempfile

    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    got: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            yield lambda: "".join(got)
        finally:
            for stream in (sys.__stdout__, sys.__stderr__):
                if stream is not None:
                    stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            got.append(tmp.read().decode("utf-8", errors="replace"))


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    """``plotsm ARGS`` in this process, answered like ``subprocess.run(..., capture_output=True, text=True)``:
    returncode, stdout, stderr. As a new ``plotsm`` process would run it: the warnings filters of a fresh
    interpreter (printed by the CLI as ``warning:`` lines, not raised as the test configuration would), log
    records of WARNING and above printed as Python's last-resort handler prints them, ``sys.argv`` of the command,
    ``--quiet`` off until given, an unexpected exception printed as a traceback with exit 1, and what native code
    writes to file descriptors 1 and 2 kept in stdout and stderr. The SIGTERM handler the CLI installs is removed
    afterwards. For what needs a process of its own (signals, worker processes, clusters), use a subprocess."""
    import io
    import logging
    import signal
    import traceback
    import warnings

    from plotsm.cli import main, state

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    last_resort = logging.StreamHandler(err)  # the root logger has pytest's handlers, so lastResort stays silent
    last_resort.setLevel(logging.WARNING)
    sigterm = signal.getsignal(signal.SIGTERM) if hasattr(signal, "SIGTERM") else None
    saved_argv, saved_quiet = sys.argv, state.quiet
    sys.argv, state.quiet = ["plotsm", *argv], False
    logging.getLogger().addHandler(last_resort)
    try:
        with _fd_output(1) as native_out, _fd_output(2) as native_err, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in FRESH_WARNINGS_FILTERS:
                warnings.filterwarnings(action, category=category, module=module, append=True)
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
            except Exception:  # noqa: BLE001 - the interpreter's answer to an uncaught exception
                traceback.print_exc(file=err)
                code = 1
    finally:
        logging.getLogger().removeHandler(last_resort)
        sys.argv, state.quiet = saved_argv, saved_quiet
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    if code is not None and not isinstance(code, int):
        print(code, file=err)  # sys.exit("message"): the interpreter prints it and exits 1
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["plotsm", *argv], returncode, out.getvalue() + native_out(),
                                       err.getvalue() + native_err())
