"""The configuration reference page (``config/README.md``), generated from the config schema.

The schema (``workflow/schemas/config.schema.yaml``) is the one source of keys, types,
bounds, defaults and descriptions; :func:`config_reference` turns it into Markdown: one
section per top-level key, with a table of every key below it (``datasets.<name>.split.seed``:
a ``<name>`` stands for any name the user chooses), its type and bounds, its default and its
description, and the per-format defaults of conditional (``allOf``/``if``/``then``) blocks.
``python tools/config_reference.py`` rewrites the page; a test checks that the committed page
equals what the schema gives, so the page cannot go stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["config_reference", "key_rows", "KeyRow"]

#: The heading of the generated page and the note that it is generated.
TITLE = "# Configuration reference"
GENERATED = (
    "<!-- Generated from workflow/schemas/config.schema.yaml by `python tools/config_reference.py`:"
    " edit the schema, not this page. -->"
)

#: A key of the schema: (dotted path, type and bounds, default, description).
KeyRow = tuple[str, str, str, str]


def _resolve(node: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node`` itself, or the ``$defs`` entry its ``$ref`` points to."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    target: Mapping[str, Any] = schema["$defs"][ref[len(prefix) :]]
    return target


def _code(value: Any) -> str:
    """A value as inline code, JSON-style (``true``, ``null``, ``"x"``, ``[1, 2]``)."""
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _type(node: Mapping[str, Any]) -> str:
    """Type, allowed values and bounds of a schema node, in words."""
    if "enum" in node:
        return "one of " + ", ".join(_code(v) for v in node["enum"])
    kind = node.get("type", "any")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if text == "array" and isinstance(node.get("items"), Mapping):
        text = f"list of {_type(node['items'])}"
    bounds = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minItems", "items >="),
        ("minProperties", "entries >="),
    ):
        if key in node:
            bounds.append(f"{sign} {node[key]}")
    if "pattern" in node:
        bounds.append(f"matching `{node['pattern']}`")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _text(node: Mapping[str, Any]) -> str:
    """The description on one line (``|``, ``*``, ``<`` and ``>`` escaped for Markdown
    tables), or an empty string."""
    text = " ".join(str(node.get("description", "")).split())
    for char, escaped in (("|", "\\|"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, escaped)
    return text


def _default(node: Mapping[str, Any], *, required: bool) -> str:
    if "default" in node:
        return _code(node["default"])
    return "required" if required else "–"


def key_rows(
    node: Mapping[str, Any], schema: Mapping[str, Any], *, path: str, required: bool = False
) -> Iterator[KeyRow]:
    """Every key at and below ``path`` in ``node`` (``$ref`` followed), depth first.

    An object's named ``properties`` come in schema order; ``additionalProperties`` that are
    a schema (a map of user-chosen names) continue as ``<path>.<name>``.
    """
    node = _resolve(node, schema)
    yield path, _type(node), _default(node, required=required), _text(node)
    needed = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        yield from key_rows(child, schema, path=f"{path}.{key}", required=key in needed)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from key_rows(extra, schema, path=f"{path}.<name>")


def _conditional_defaults(node: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Lines of the per-value defaults that ``allOf``/``if``/``then`` blocks set."""
    node = _resolve(node, schema)
    lines = []
    for block in node.get("allOf", []):
        condition = block.get("if", {}).get("properties", {})
        then = block.get("then", {}).get("properties", {})
        if not condition or not then:
            continue
        when = ", ".join(f"`{k}: {c.get('const')}`" for k, c in condition.items())
        values = ", ".join(f"`{k}` {_code(v.get('default'))}" for k, v in then.items())
        lines.append(f"- {when}: {values}")
    return lines


def _table(rows: list[KeyRow]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | {kind} | {default} | {text} |" for key, kind, default, text in rows]
    return lines


def config_reference(schema: Mapping[str, Any]) -> str:
    """The Markdown reference of every section and key of ``schema`` (module docstring).

    Parameters
    ----------
    schema : mapping
        The loaded ``workflow/schemas/config.schema.yaml``.

    Returns
    -------
    str
        The page, ending with a newline.
    """
    required = set(schema.get("required", []))
    sections = list(schema["properties"].items())
    out = [
        GENERATED,
        "",
        TITLE,
        "",
        _text(schema),
        "",
        "Every key of `config.yaml` (and of the presets in this folder), section by section: "
        "its type and allowed values, its default (`–`: none, the key is optional; "
        "`required`: it must be given) and what it does. `<name>` stands for a name you "
        "choose (a dataset, feature set, model or collection), which becomes a wildcard of "
        "the workflow. Settings reach the rules as `params:`, so changing one re-runs only "
        "the jobs that use it.",
        "",
        "Sections: " + ", ".join(f"[`{key}`](#{key})" for key, _ in sections) + ".",
        "",
        "Not config keys (they change no result, so they never re-run a job): the environment "
        "variables `PIPELINE_PROGRESS_INTERVAL_S` (seconds between the progress lines of long "
        "jobs in their logs, default 30) and `PIPELINE_PROGRESS_BAR` (`0`/`1`: the one-line "
        "progress bar on a terminal off/on), and `DASK_SCHEDULER_ADDRESS` (see "
        "`extraction.dask_scheduler`).",
    ]
    for key, node in sections:
        resolved = _resolve(node, schema)
        out += ["", f"## {key}", ""]
        if _text(resolved):
            out += [_text(resolved), ""]
        rows = list(key_rows(node, schema, path=key, required=key in required))
        out += _table(rows)
        extra = resolved.get("additionalProperties")
        for where in [resolved, *([extra] if isinstance(extra, Mapping) else [])]:
            defaults = _conditional_defaults(where, schema)
            if defaults:
                out += ["", "Defaults that depend on another key:", "", *defaults]
    return "\n".join(out) + "\n"
