"""envs/*.yaml (for --use-conda on clusters) list the same dependencies as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

#: conda-forge names of packages whose PyPI name differs.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pysoundfile": "soundfile",
    "soxr-python": "soxr",
    "matplotlib-base": "matplotlib",
}
#: What an environment file may add: the interpreter and pip themselves, the package, and
#: tinysoundfont, which the Makefile installs without its playback-only pyaudio dependency.
ENV_ONLY = {"python", "pip", "tinysoundfont"}


def _split(requirement: str) -> tuple[str, str]:
    """(normalised name, version specifier with single '=' read as '==')."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, requirement
    name = match.group(1).lower().replace("_", "-")
    spec = re.sub(r"(?<![<>=!])=(?!=)", "==", match.group(3).replace(" ", ""))
    return name, spec


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(_split(r) for r in data["project"]["dependencies"])


def _env(path: Path) -> dict[str, str]:
    out = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        items = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in items:
            if item.startswith("-e"):
                continue
            name, spec = _split(item)
            out[CONDA_TO_PYPI.get(name, name)] = spec
    return out


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_matches_pyproject(env: Path) -> None:
    wanted = _pyproject()
    listed = _env(env)
    assert sorted(set(wanted) - set(listed)) == [], "missing from the environment file"
    assert sorted(set(listed) - set(wanted) - ENV_ONLY) == [], "not in pyproject.toml"
    for name, spec in wanted.items():
        assert listed[name] == spec, (name, listed[name], spec)


def test_env_installs_the_package() -> None:
    pip = next(
        e["pip"]
        for e in yaml.safe_load((REPO / "envs/pipeline.yaml").read_text())["dependencies"]
        if isinstance(e, dict)
    )
    assert "-e ../" in pip
