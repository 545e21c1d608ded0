"""tools/check_layers.py: the package's import layers hold, and the checker catches breaches."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _checker() -> Any:
    spec = importlib.util.spec_from_file_location(
        "check_layers", REPO / "tools" / "check_layers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_package_layers_hold() -> None:
    assert _checker().check() == []


def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pipeline"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_upward_import_inside_a_function_is_reported(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "io/__init__.py": "",
            "io/files.py": "def f():\n    from pipeline.training import loop\n",
            "training/__init__.py": "",
            "training/loop.py": "from pipeline.io import files\n",
        },
    )
    problems = _checker().check(pkg)
    assert any("pipeline.io.files (io) imports pipeline.training" in p for p in problems)
    assert any(p.startswith("import cycle:") for p in problems)


def test_siblings_on_one_layer_are_independent(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "fewshot/__init__.py": "",
            "fewshot/a.py": "from pipeline.retrieval.b import x\n",
            "retrieval/__init__.py": "",
            "retrieval/b.py": "x = 1\n",
        },
    )
    problems = _checker().check(pkg)
    assert problems == [
        f"{pkg / 'fewshot' / 'a.py'}:1: pipeline.fewshot.a (fewshot) imports "
        "pipeline.retrieval.b (retrieval, the same layer)"
    ]


def test_a_lower_import_is_fine(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "io/__init__.py": "",
            "io/files.py": "x = 1\n",
            "training/__init__.py": "",
            "training/loop.py": "def f():\n    from pipeline.io.files import x\n    return x\n",
        },
    )
    assert _checker().check(pkg) == []
