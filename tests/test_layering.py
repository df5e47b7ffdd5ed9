"""The package's layers: every module imports on its own, and no layer imports from one above it.

Layers, lowest first (docs/architecture.md): data (``errors``, ``color``, ``io``, ``photo_io``, ``logistic``,
``synth``, ``data``) -> ``models`` -> inference (``infer``, ``kernel_aware``, ``scene``) -> ``train`` / ``eval`` ->
app / CLI (``app``, ``cli``, ``demo``, ``__main__`` and the ``cli`` module of each package).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in (SRC / "deblurkit").rglob("*.py")
)
LAYERS = {"errors": 0, "color": 0, "io": 0, "photo_io": 0, "viz": 0, "logistic": 0, "synth": 0, "data": 0, "weights": 0,
          "devices": 0,
          "models": 1, "infer": 2, "kernel_aware": 2, "scene": 2, "highlights": 2, "train": 3, "eval": 3,
          "curate": 3, "app": 4, "cli": 4, "demo": 4,
          "__main__": 4}


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[-1] in ("cli", "export_cli"):  # a package's command-line front end belongs to the top
        return 4
    return LAYERS[parts[1]] if len(parts) > 1 else 0


def _imports(module: str) -> set[str]:
    path = SRC / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("deblurkit.") or m == "deblurkit"}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "deblurkit" and m.split(".")[1] not in LAYERS] == []


@pytest.mark.parametrize("module", [m for m in MODULES if m != "deblurkit"])
def test_no_import_from_a_higher_layer(module):
    upward = [m for m in _imports(module) if m != "deblurkit" and _layer(m) > _layer(module)]
    assert upward == [], f"{module} (layer {_layer(module)}) imports from a higher layer: {upward}"


def _is_package(module: str) -> bool:
    return (SRC / Path(*module.split(".")) / "__init__.py").is_file()


def test_no_import_cycle_between_modules():
    """Between files, lazy imports included (a package's ``__init__`` re-exports do not count)."""
    files = [m for m in MODULES if not _is_package(m)]
    graph = {m: sorted(i for i in _imports(m) if i in files) for m in files}
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        path.append(node)
        for nxt in graph[node]:
            assert nxt not in path, "import cycle: " + " -> ".join([*path[path.index(nxt):], nxt])
            if nxt not in done:
                visit(nxt)
        path.pop()
        done.add(node)

    for m in files:
        if m not in done:
            visit(m)


def test_every_module_imports_alone():
    """Each module in a fresh interpreter, so an import that only works after another module fails here."""
    code = ("import importlib, sys\nbad = []\nfor m in sys.argv[1:]:\n"
            "    for k in [k for k in sys.modules if k.startswith('deblurkit')]:\n        del sys.modules[k]\n"
            "    try:\n        importlib.import_module(m)\n    except Exception as e:\n"
            "        bad.append(f'{m}: {type(e).__name__}: {e}')\nprint('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n")
    mods = [m for m in MODULES if m != "deblurkit.__main__"]
    run = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_package_root_imports_nothing_heavy():
    code = "import sys, deblurkit, deblurkit.infer, deblurkit.color; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout.strip() == "False", run.stderr

