"""The repository's config schema, and a small validated config for the tests of
:mod:`pipeline.config`."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_yaml, validate_config

__all__ = ["REPO", "SCHEMA", "workflow_config"]

#: The repository's root folder.
REPO = Path(__file__).resolve().parents[2]
#: The workflow's config schema (``workflow/schemas/config.schema.yaml``).
SCHEMA = load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml")


def workflow_config(**sections) -> dict:
    """A validated config: datasets ``a`` (a table, two shards) and ``b`` (the demo, feature
    set ``lm`` only), feature sets ``lm`` and ``mf``, models ``fcn``, ``svm`` (on ``fcn``'s
    embeddings, dataset ``a``) and ``lstm``; ``sections`` replace or add top-level keys."""
    config = {
        "results": "out",
        "resources": "res",
        "datasets": {
            "a": {"format": "table", "root": "/data/a", "table": "t.csv", "shards": 2},
            "b": {"format": "demo", "shards": 1, "features": ["lm"]},
        },
        "features": {"lm": {"kind": "logmel"}, "mf": {"kind": "mfcc"}},
        "models": {
            "fcn": {"architecture": "fcn", "features": "lm"},
            "svm": {
                "architecture": "embedding_svm",
                "features": "lm",
                "datasets": ["a"],
                "hparams": {"from_model": "fcn"},
            },
            "lstm": {"architecture": "lstm", "features": "mf"},
        },
    }
    config.update(sections)
    return validate_config(config, schema=SCHEMA)
