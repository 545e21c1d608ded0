"""The configuration reference (config/README.md) is the config schema's, key for key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from pipeline.config.reference import config_reference, key_rows
from pipeline.config.validation import load_yaml
from tests.helpers.config import REPO, SCHEMA

PAGE = REPO / "config" / "README.md"
ROWS = [
    row
    for key in SCHEMA["properties"]
    for row in key_rows(SCHEMA["properties"][key], SCHEMA, path=key)
]


def test_the_committed_page_is_the_schemas() -> None:
    assert PAGE.read_text(encoding="utf-8") == config_reference(SCHEMA), (
        "config/README.md is stale: run python tools/config_reference.py"
    )


def test_the_check_command_agrees() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "config_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_every_section_and_key_is_described() -> None:
    undocumented = [key for key, _, _, text in ROWS if not text]
    assert undocumented == [], f"add a description to these schema keys: {undocumented}"
    page = PAGE.read_text(encoding="utf-8")
    for key in SCHEMA["properties"]:
        assert f"\n## {key}\n" in page
    for key, *_ in ROWS:
        assert f"| `{key}` |" in page


def _config_keys(value: Any, node: Mapping[str, Any], path: str) -> Iterator[str]:
    """The documented path of every key of a config, walked along the schema."""
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    yield path
    if not isinstance(value, Mapping):
        return
    extra = node.get("additionalProperties")
    for key, item in value.items():
        if key in node.get("properties", {}):
            yield from _config_keys(item, node["properties"][key], f"{path}.{key}")
        elif isinstance(extra, Mapping):
            yield from _config_keys(item, extra, f"{path}.<name>")
        # else: a free-form object (hparams, train fields): its description lists its keys


@pytest.mark.parametrize(
    "config", ["config.yaml", "config/magnatagatune.yaml", "config/mtg-jamendo.yaml"]
)
def test_every_key_of_the_shipped_configs_is_on_the_page(config: str) -> None:
    documented = {key for key, *_ in ROWS}
    loaded = load_yaml(REPO / config)
    keys = [
        k
        for section, value in loaded.items()
        for k in _config_keys(value, SCHEMA["properties"][section], section)
    ]
    assert len(keys) > 10
    assert sorted(set(keys) - documented) == []


def test_rows_follow_refs_bounds_defaults_and_conditions() -> None:
    schema = {
        "properties": {
            "things": {
                "type": "object",
                "description": "Things | by name.",
                "additionalProperties": {"$ref": "#/$defs/thing"},
            }
        },
        "$defs": {
            "thing": {
                "type": "object",
                "required": ["kind"],
                "description": "One <thing>.",
                "properties": {
                    "kind": {"enum": ["a", "b"], "description": "Its kind."},
                    "size": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "x*y"},
                },
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": "b"}}},
                        "then": {"properties": {"size": {"default": 5}}},
                    }
                ],
            }
        },
    }
    rows = list(key_rows(schema["properties"]["things"], schema, path="things"))
    assert rows == [
        ("things", "object", "–", "Things \\| by name."),
        ("things.<name>", "object", "–", "One &lt;thing&gt;."),
        ("things.<name>.kind", 'one of `"a"`, `"b"`', "required", "Its kind."),
        ("things.<name>.size", "integer (>= 1, <= 9)", "`3`", ""),
        ("things.<name>.tags", "list of string", "–", "x\\*y"),
    ]
    page = config_reference(schema)
    assert "## things" in page and "- `kind: b`: `size` `5`" in page
