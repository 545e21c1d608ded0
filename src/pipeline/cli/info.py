"""``pipeline info CHECKPOINT``: what a checkpoint holds, readable or as JSON.

It reads the checkpoint with the same safe loader as ``pipeline tag``
(:func:`pipeline.io.checkpoint.load_checkpoint`, no pickled code) and, when the checkpoint
lies in the workflow's model folder (``results/<dataset>/models/<model>/checkpoint.pt``), the
files next to it: ``train_summary.json`` (training data and run) and
``evaluation/metrics.json`` (test metrics). Nothing is computed on audio.

What it reports (the keys of ``--json``):

=================  ===========================================================================
``checkpoint``     the path
``format_version`` the checkpoint format
``kind``           the tagger kind (``network``, ``bag_of_frames``, ``embedding_classifier``,
                   ``embedding_sequence``, ...)
``architecture``   the architecture, its ``hparams`` and, for networks, ``input_kind``
``parameters``     values in the checkpoint's weight tensors (weights, codebooks, scalers)
``tags``           the vocabulary, in output order
``features``       the feature settings (``FeatureSettings.to_dict()``, window included)
``training``       ``dataset`` (from the folder, or null), ``train_config`` and, from
                   ``train_summary.json``, the training tracks, labels, epochs and time
``selection``      how the saved epoch was chosen (criterion, epoch, value)
``metrics``        the test metrics of ``evaluation/metrics.json`` (split, the reported
                   aggregation and its averages; null when absent)
``frozen_network`` the network an embedding model reads (``source``: its weights or random)
``licences``       every licence the checkpoint names for pretrained weights or encoders,
                   ``[{"where": key path, "licence": text}]``; empty when there is none
=================  ===========================================================================
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.cli.common import EXIT_OK, EXIT_USAGE, Command, Messages
from pipeline.errors import PipelineError, printable
from pipeline.io.files import file_problem, json_line

__all__ = ["COMMAND", "checkpoint_info", "format_info"]

#: Keys that name a licence, in the checkpoint or any dict inside it.
LICENCE_KEYS = ("licence", "license")
#: Keys of train_summary.json shown under ``training``.
SUMMARY_KEYS = (
    "n_train_tracks",
    "n_train_items",
    "n_train_labels",
    "n_train_positive_labels",
    "label_fraction",
    "tag_label_fraction",
    "epochs_run",
    "best_epoch",
    "stopped_early",
    "train_time_s",
    "device",
    "params",
)
#: Keys of metrics.json's reported aggregation (``aggregations[aggregation]``) shown under
#: ``metrics``, after its ``split`` and ``aggregation``.
METRIC_KEYS = (
    "n_tracks",
    "n_tags_evaluated",
    "macro_roc_auc",
    "macro_pr_auc",
    "micro_roc_auc",
    "micro_pr_auc",
)


def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="a checkpoint.pt of the pipeline"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object on stdout instead of the text"
    )


def _licences(value: Any, where: str = "") -> list[dict[str, str]]:
    """Every ``licence``/``license`` entry in nested dicts and lists (tensors skipped)."""
    found: list[dict[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if str(key).lower() in LICENCE_KEYS and isinstance(item, str | Mapping):
                text = item if isinstance(item, str) else json.dumps(item, sort_keys=True)
                found.append({"where": path, "licence": text})
            else:
                found.extend(_licences(item, path))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            found.extend(_licences(item, f"{where}[{k}]"))
    return found


def _n_values(value: Any) -> int:
    """Values in every tensor inside ``value``."""
    import torch

    if isinstance(value, torch.Tensor):
        return int(value.numel())
    if isinstance(value, Mapping):
        return sum(_n_values(v) for v in value.values())
    if isinstance(value, list):
        return sum(_n_values(v) for v in value)
    return 0


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object next to the checkpoint, or None when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _test_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The reported aggregation's metrics of an evaluation's ``metrics.json``."""
    aggregation = metrics.get("aggregation")
    reported = metrics.get("aggregations", {}).get(aggregation, {})
    return {
        "split": metrics.get("split"),
        "aggregation": aggregation,
        **{k: reported.get(k) for k in METRIC_KEYS},
    }


def _dataset_of(path: Path) -> str | None:
    """``<dataset>`` of ``.../<dataset>/models/<model>/checkpoint.pt``, else None."""
    parts = path.resolve().parts
    if len(parts) >= 4 and parts[-3] == "models":
        return parts[-4]
    return None


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """What the checkpoint at ``path`` holds (module docstring), as plain JSON-able values.

    Raises
    ------
    PipelineError
        ``path`` is not a readable checkpoint of this pipeline (missing, a directory, empty,
        damaged, not a torch file, keys missing, a newer format); the message names it.
    """
    from pipeline.io.checkpoint import load_checkpoint  # torch: only when the command runs

    path = Path(path)
    checkpoint = load_checkpoint(path)
    folder = path.parent
    summary = _read_json(folder / "train_summary.json") or {}
    metrics = _read_json(folder / "evaluation" / "metrics.json")
    network = checkpoint.get("network")
    frozen = None
    if isinstance(network, Mapping):
        frozen = {
            "architecture": network.get("architecture"),
            "source": network.get("source"),
        }
    training: dict[str, Any] = {
        "dataset": _dataset_of(path),
        "train_config": checkpoint.get("train_config"),
    }
    training.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
    info: dict[str, Any] = {
        "checkpoint": str(path),
        "format_version": checkpoint["format_version"],
        "kind": checkpoint["kind"],
        "architecture": checkpoint.get("architecture"),
        "hparams": checkpoint.get("hparams"),
        "input_kind": checkpoint.get("input_kind"),
        "parameters": _n_values(checkpoint),
        "tags": list(checkpoint["tags"]),
        "features": checkpoint["features"],
        "training": training,
        "selection": checkpoint.get("selection"),
        "metrics": None if metrics is None else _test_metrics(metrics),
        "frozen_network": frozen,
        "licences": _licences({k: v for k, v in checkpoint.items() if k != "state_dict"}),
    }
    return info


def _number(value: Any) -> str:
    """A number for people: 4 decimals for floats, ``n/a`` for None, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else "n/a"
    return f"{value:,}"


def _settings(values: Mapping[str, Any] | None, *, skip: tuple[str, ...] = ()) -> str:
    if not values:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in values.items() if k not in skip and v is not None)


def format_info(info: Mapping[str, Any]) -> str:
    """The readable text of :func:`checkpoint_info` (non-printable characters escaped)."""
    features = dict(info["features"] or {})
    window = features.pop("window", None)
    training = dict(info["training"])
    train_config = training.pop("train_config", None)
    dataset = training.pop("dataset", None)
    tags = [printable(str(t)) for t in info["tags"]]
    selection = info["selection"] or {}
    lines = [
        ("checkpoint", printable(info["checkpoint"])),
        ("kind", f"{info['kind']} (checkpoint format {info['format_version']})"),
        (
            "architecture",
            f"{info['architecture'] or 'n/a'}"
            + (f", input {info['input_kind']}" if info["input_kind"] else "")
            + f"; hparams: {_settings(info['hparams'])}",
        ),
        ("parameters", f"{info['parameters']:,} values in weight tensors"),
        ("tags", f"{len(tags)}: {', '.join(tags)}"),
        ("features", _settings(features)),
        ("window", _settings(window)),
        (
            "training data",
            f"dataset {printable(dataset) if dataset else 'unknown (not in a models/ folder)'}"
            + "".join(f", {k} {_number(v)}" for k, v in training.items()),
        ),
        ("train config", _settings(train_config)),
        (
            "selection",
            f"{selection.get('criterion', 'n/a')}: epoch {selection.get('epoch', 'n/a')}, "
            f"value {_number(selection.get('value'))}",
        ),
    ]
    metrics = info["metrics"]
    lines.append(
        (
            "test metrics",
            "none (no evaluation/metrics.json next to the checkpoint)"
            if metrics is None
            else ", ".join(f"{k} {_number(v)}" for k, v in metrics.items()),
        )
    )
    if info["frozen_network"] is not None:
        frozen = info["frozen_network"]
        lines.append(
            ("frozen network", f"{frozen['architecture']} from {printable(str(frozen['source']))}")
        )
    licences = info["licences"]
    lines.append(
        (
            "licence",
            "; ".join(f"{printable(x['licence'])} ({x['where']})" for x in licences)
            if licences
            else "none",
        )
    )
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in lines)


def run_info(args: argparse.Namespace) -> int:
    """Handler of ``pipeline info``; returns the exit status."""
    say = Messages(command="info", stream=sys.stderr)
    problem = file_problem(args.checkpoint, what="checkpoint")
    if problem is not None:
        say.error(problem)
        return EXIT_USAGE
    try:
        info = checkpoint_info(args.checkpoint)
    except PipelineError as exc:
        say.error(exc)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - torch errors on a damaged file
        say.error(f"checkpoint {str(args.checkpoint)!r}: {type(exc).__name__}: {exc}")
        return EXIT_USAGE
    print(json_line(info) if args.json else format_info(info), flush=True)
    return EXIT_OK


#: The command, registered in :data:`pipeline.cli.COMMANDS`.
COMMAND = Command(
    help="show what a checkpoint holds: kind, architecture, tags, features, training, "
    "metrics, licences",
    add_arguments=_info_arguments,
    run=run_info,
    epilog="Reads train_summary.json and evaluation/metrics.json next to the checkpoint when "
    "they are there. Exit status: 0, or 2 when the checkpoint cannot be read. Example: "
    "pipeline info results/demo/models/musicnn/checkpoint.pt --json",
)
