"""The house's rules on where things live, kept true: imports flow one way (ARCHITECTURE.md), no module is a
hodgepodge (≤ 400 lines), only the CLI prints or exits, the Python API is what the README says, and mypy passes.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plotsm"

#: Each top-level room of plotsm and the rooms it may import (ARCHITECTURE.md, "Imports flow one way").
#: Anything else is an import against the flow.
BASE = {"errors", "times", "progress"}  # what every room may import: the error tree, UTC and ids, callback types

ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "times": set(),
    "progress": set(),
    "resources": set(),
    "physics": set(),
    "atomic": {"errors"},
    "raster": {"errors"},
    "model": {"errors", "resources", "atomic", "physics"},
    "parcels": {"errors"},
    "sources": {"errors", "atomic", "raster"},
    "zonal": {"errors", "atomic", "raster", "parcels"},
    "store": {"errors", "resources", "atomic"},
    "inversion": {"errors", "model", "physics"},
    "weather": {"errors", "atomic"},
    "acquire": {"errors", "atomic", "parcels"},
    "apriori": {"errors", "weather"},
    "pipeline": {"errors", "raster", "zonal", "inversion", "physics", "store"},
    "catalog": {"errors", "raster", "pipeline"},
    "series": {"errors", "atomic", "raster", "parcels", "zonal", "store", "inversion", "model", "pipeline", "apriori"},
    "export": {"errors", "atomic", "store"},
    "segment": {"errors", "atomic", "raster"},
    "validate": {"errors", "atomic", "parcels", "store", "export"},
    "report": {"errors", "atomic", "resources", "raster", "model", "parcels", "store", "export", "validate",
               "weather"},
    "process": {"errors", "atomic", "raster", "parcels", "sources", "store", "catalog", "series", "apriori",
                "export", "acquire", "segment"},
    "api": {"errors", "raster", "parcels", "zonal", "inversion", "model", "pipeline", "physics"},
    "demo": {"errors", "physics", "parcels", "store", "inversion", "pipeline", "series", "export", "report"},
    "cli": {"errors", "resources", "atomic", "raster", "model", "parcels", "sources", "zonal", "store", "inversion",
            "weather", "apriori", "pipeline", "catalog", "series", "export", "api", "demo", "acquire", "process", "segment",
            "validate", "report"},
    "__main__": {"cli"},
}


#: Rooms that import no other plotsm module at all, not even the base: the physics stands alone.
ISOLATED = {"errors", "times", "progress", "resources", "physics"}


def allowed(room: str) -> set[str]:
    """The rooms ``room`` may import: its entry in ALLOWED, and the base unless it is isolated."""
    return ALLOWED.get(room, set()) | (set() if room in ISOLATED else BASE)


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0].removesuffix(".py")


def _imports() -> dict[tuple[str, str], list[str]]:
    """(importing room, imported room) → the files (every import, function-level ones included)."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(path)
        if room == "__init__":  # the API's lazy re-exports (under TYPE_CHECKING): the top of the flow
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "plotsm" and len(parts) > 1 and parts[1] != room:
                    found[(room, parts[1])].append(str(path.relative_to(ROOT)))
    return found


def test_every_room_is_in_the_map():
    rooms = {_room(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "_data"}
    assert rooms <= set(ALLOWED), f"add {sorted(rooms - set(ALLOWED))} to ALLOWED and to ARCHITECTURE.md"


def test_imports_flow_one_way():
    against = {f"{a} → {b}": files for (a, b), files in _imports().items() if b not in allowed(a)}
    assert not against, f"imports against the flow (see ARCHITECTURE.md): {against}"


def test_the_flow_has_no_cycle():
    graph = {room: set(deps) for room, deps in ALLOWED.items()}
    seen: dict[str, int] = {}

    def visit(room: str, path: tuple[str, ...]) -> None:
        assert room not in path, f"cycle: {' → '.join((*path, room))}"
        if seen.get(room):
            return
        for dep in graph.get(room, ()):
            visit(dep, (*path, room))
        seen[room] = 1

    for room in graph:
        visit(room, ())


def test_the_checker_catches_an_import_against_the_flow(tmp_path, monkeypatch):
    """The rule can fail: a source module importing the zonal engine, physics importing errors."""
    fake = tmp_path / "plotsm"
    (fake / "sources").mkdir(parents=True)
    (fake / "physics").mkdir()
    (fake / "sources" / "bad.py").write_text("from plotsm.zonal import ZonalEngine\n")
    (fake / "physics" / "bad.py").write_text("def f():\n    from plotsm.errors import InputError\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = _imports()
    assert found[("sources", "zonal")] == ["plotsm/sources/bad.py"]
    assert found[("physics", "errors")] == ["plotsm/physics/bad.py"]
    assert "zonal" not in allowed("sources") and "errors" not in allowed("physics")


def test_no_module_is_over_400_lines():
    """One concept per module (house style: grow the layout when a module passes ~400 lines)."""
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert not long, f"modules over ~400 lines: {long}"


def test_only_the_cli_prints_or_exits():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if _room(path) in ("cli", "__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f"{getattr(f.value, 'id', '')}.{f.attr}" \
                    if isinstance(f, ast.Attribute) else ""
                if name in ("print", "sys.exit", "exit", "quit"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}()")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if mod and mod.split(".")[0] in ("typer", "rich", "click"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {mod}")
    assert not offenders, offenders


def test_architecture_md_names_every_room():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [room for room in ALLOWED if room not in ("__main__",) and f"`{room}" not in text]
    assert not missing, f"ARCHITECTURE.md does not describe: {missing}"


def test_python_m_plotsm_runs():
    res = subprocess.run([sys.executable, "-m", "plotsm", "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and re.match(r"plotsm \d", res.stdout), res.stderr


def test_public_api_names():
    import plotsm

    for name in ("read_parcels", "as_parcels", "observe", "estimate_moisture", "zonal_stats", "run_series", "Store",
                 "export_moisture", "segment_ndvi", "write_plots"):
        assert name in plotsm.__all__ and callable(getattr(plotsm, name))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        plotsm.nope  # noqa: B018


@pytest.mark.slow
def test_mypy_passes_on_the_package():
    res = subprocess.run([sys.executable, "-m", "mypy", "plotsm"], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stdout[-4000:]
