"""The container image, built and run (`make test-image`; skipped unless PLOTSM_TEST_IMAGE=1, so `make test` skips
it). The image is built with scripts/build-image and the options in PLOTSM_IMAGE_ARGS (make test-image
IMAGE_ARGS="…"), or reused when it is newer than every file it is built from (PLOTSM_IMAGE_REBUILD=1 forces a
build). Inside it: `plotsm --version`, `plotsm demo`, and `plotsm run` on the demo scene made on the host, alone and
on a Dask scheduler and worker started from the same image; the moisture tables (read from both DuckDB stores)
must equal those of the same run outside the container.

Commands run with `docker run` (engine docker), or `buildah run --isolation chroot` (engine podman, when buildah
is installed: it also works where `podman run` cannot create containers), else `podman run`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from calendar import timegm
from collections.abc import Iterator
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("PLOTSM_TEST_IMAGE") != "1",
                                reason="builds and runs the container image: make test-image (PLOTSM_TEST_IMAGE=1)")

ROOT = Path(__file__).resolve().parent.parent
PLOTSM = Path(sys.executable).parent / "plotsm"
SOURCES = ["Containerfile", ".containerignore", "pyproject.toml", "README.md", "plotsm", "models", "sql"]
ACQUISITIONS = ["20240406T174912", "20240418T174912", "20240430T174912", "20240512T174912"]


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


class Image:
    """The image under test and how to run a command in it with host folders mounted."""

    def __init__(self, build_args: list[str]) -> None:
        self.build_args = build_args
        self.engine = _option(build_args, "--engine") or self._default_engine()
        self.tag = _option(build_args, "--tag") or f"plotsm:{dist_version('plotsm')}"
        self.buildah = shutil.which("buildah") if self.engine == "podman" else None

    @staticmethod
    def _default_engine() -> str:
        docker = shutil.which("docker")
        if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0:
            return "docker"
        if shutil.which("podman"):
            return "podman"
        pytest.fail("neither a running docker nor podman: cannot build the image")

    def created(self) -> float | None:
        """The image's creation time (epoch seconds), None when there is no such image."""
        done = subprocess.run([self.engine, "image", "inspect", self.tag], capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            return None
        stamp = json.loads(done.stdout)[0]["Created"]
        m = re.match(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)", stamp)
        assert m, stamp
        return float(timegm(tuple(int(g) for g in m.groups()) + (0, 0, 0)))  # type: ignore[arg-type]

    def ensure_built(self) -> str:
        newest = max(p.stat().st_mtime for name in SOURCES for p in [ROOT / name, *(ROOT / name).rglob("*")]
                     if p.is_file() and "__pycache__" not in p.parts)
        created = self.created()
        if created is not None and created > newest and os.environ.get("PLOTSM_IMAGE_REBUILD") != "1":
            return f"reused {self.tag} (built {time.ctime(created)}, newer than its sources)"
        t0 = time.monotonic()
        done = subprocess.run([str(ROOT / "scripts" / "build-image"), *self.build_args], cwd=ROOT,
                              capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
        return f"built {self.tag} in {time.monotonic() - t0:.0f} s: {done.stderr.strip().splitlines()[-1]}"

    def run(self, argv: list[str], mounts: dict[Path, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (``plotsm …``, ``sh -c …``) in the image as its user (10001), with ``mounts`` (host
        folder → container path, ``:ro`` allowed)."""
        volumes = [arg for host, inside in mounts.items() for arg in ("-v", f"{host}:{inside}")]
        if self.buildah:
            cid = subprocess.run([self.buildah, "from", "--pull=never", "--quiet", self.tag], capture_output=True,
                                 text=True, check=True, timeout=120).stdout.strip()
            try:
                return subprocess.run([self.buildah, "run", "--isolation", "chroot", *volumes, cid, "--", *argv],
                                      capture_output=True, text=True, timeout=timeout)
            finally:
                subprocess.run([self.buildah, "rm", cid], capture_output=True, timeout=120)
        return subprocess.run([self.engine, "run", "--rm", *volumes, "--entrypoint", argv[0], self.tag, *argv[1:]],
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> Iterator[Image]:
    img = Image(shlex.split(os.environ.get("PLOTSM_IMAGE_ARGS", "")))
    how = img.ensure_built()
    size = subprocess.run([img.engine, "image", "inspect", "--format", "{{.Size}}", img.tag], capture_output=True,
                          text=True, timeout=60).stdout.strip()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        runner = "buildah run --isolation chroot" if img.buildah else f"{img.engine} run"
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{how}; size {int(size) / 1e6:.0f} MB; commands run with {runner}")
    yield img


def _shared(path: Path) -> Path:
    """A host folder the image's user (uid 10001) may write into."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo region of `plotsm demo`, made on the host, laid out as a series: s1/ (σ⁰ and θ named as
    `s1 calibrate` names them), ndvi/ (monthly composites), parcels.gpkg, slope.tif."""
    base = tmp_path_factory.mktemp("scene")
    demo = base / "demo"
    done = subprocess.run([str(PLOTSM), "--quiet", "demo", "--out", str(demo)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    data = base / "data"
    (data / "s1").mkdir(parents=True)
    (data / "ndvi").mkdir()
    made = demo / "scene"
    for stamp in ACQUISITIONS:
        shutil.copy(made / f"S1_VV_{stamp}.tif", data / "s1" / f"S1A_{stamp}_A059_VV_sigma0.tif")
        shutil.copy(made / f"S1_THETA_{stamp}.tif", data / "s1" / f"S1A_{stamp}_A059_VV_theta.tif")
    for month in ("04", "05"):
        shutil.copy(made / f"ndvi_2024{month}.tif", data / "ndvi" / f"ndvi_2024-{month}.tif")
    shutil.copy(made / "parcels.gpkg", data / "parcels.gpkg")
    shutil.copy(made / "slope_deg.tif", data / "slope.tif")
    for path in [base, data, *data.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o644)
    return data


def _run_args(data: str, out: str) -> list[str]:
    return ["run", "--parcels", f"{data}/parcels.gpkg", "--id-field", "parcel_code", "--s1", f"{data}/s1",
            "--ndvi", f"{data}/ndvi", "--slope", f"{data}/slope.tif", "--apriori", "dry", "--out", out]


@pytest.fixture(scope="module")
def host_run(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host-run")
    done = subprocess.run([str(PLOTSM), "--quiet", *_run_args(str(scene), str(out)), "--workers", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _moisture(store: Path) -> list[tuple[object, ...]]:
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        return con.sql("SELECT parcel_id, acquisition_id, mv_pct, network, status, model_version FROM moisture "
                       "ORDER BY acquisition_id, parcel_id").fetchall()


def _assert_same_moisture(inside: Path, outside: Path) -> None:
    a, b = _moisture(inside), _moisture(outside)
    assert len(a) == len(b) > 0
    assert {r[1] for r in a} == {f"{s}_S1A" for s in ACQUISITIONS}
    assert sum(r[4] == "ok" for r in a) > len(a) // 2
    differ = [(x, y) for x, y in zip(a, b) if x != y]
    assert not differ, f"{len(differ)} rows differ, first: {differ[:3]}"


def test_version(image: Image) -> None:
    done = image.run(["plotsm", "--version"], {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"plotsm {dist_version('plotsm')}"


def test_runs_as_non_root_with_the_mount_points(image: Image) -> None:
    done = image.run(["sh", "-c", "id -u; pwd; test -d /data; test -w /out; command -v dask; "
                      "python3 -c 'import plotsm.resources'"], {})
    assert done.returncode == 0, done.stdout + done.stderr
    uid, cwd, dask = done.stdout.split()[:3]
    assert (uid, cwd, dask) == ("10001", "/out", "/opt/plotsm/bin/dask")


def test_demo_in_the_image(image: Image, tmp_path: Path) -> None:
    out = _shared(tmp_path / "out")
    done = image.run(["plotsm", "--quiet", "demo", "--out", "/out/demo"], {out: "/out"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RMSE" in done.stdout
    for name in ("plotsm.duckdb", "moisture.parquet", "report.html", "map.png"):
        assert (out / "demo" / name).is_file(), name


def test_run_matches_the_host(image: Image, scene: Path, host_run: Path, tmp_path: Path) -> None:
    out = _shared(tmp_path / "out")
    done = image.run(["plotsm", "--quiet", *_run_args("/data", "/out/run"), "--workers", "1"],
                     {scene: "/data:ro", out: "/out"})
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same_moisture(out / "run" / "plotsm.duckdb", host_run / "plotsm.duckdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_on_a_dask_cluster_of_the_image_matches_the_host(image: Image, scene: Path, host_run: Path,
                                                             tmp_path: Path) -> None:
    """compose.yaml's services in one container: `dask scheduler`, `dask worker`, `plotsm run --scheduler`."""
    out = _shared(tmp_path / "out")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    script = (f"trap 'kill $(jobs -p) 2>/dev/null' EXIT; export HOME=/tmp; "
              f"dask scheduler --host 127.0.0.1 --port {port} --no-dashboard >/tmp/scheduler.log 2>&1 & "
              f"dask worker {address} --nworkers 1 --nthreads 2 --no-dashboard "
              f"--local-directory /tmp/dask-worker >/tmp/worker.log 2>&1 & "
              f"plotsm --quiet {shlex.join(_run_args('/data', '/out/run'))} --scheduler {address}; rc=$?; "
              f"[ $rc = 0 ] || tail -20 /tmp/scheduler.log /tmp/worker.log; exit $rc")
    done = image.run(["sh", "-c", script], {scene: "/data:ro", out: "/out"})
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same_moisture(out / "run" / "plotsm.duckdb", host_run / "plotsm.duckdb")
