"""``pipeline info``: what a checkpoint holds, as text and JSON, and one-line errors.

Checkpoints are the ``checkpoints`` fixture of ``tests/conftest.py`` (one of each tagger
kind, trained briefly, with their ``train_summary.json``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import EXIT_OK, EXIT_USAGE, main
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.checkpoints import KINDS, random_network_checkpoint
from tests.helpers.cli import ENV, one_line_error, run_pipeline

KIND_OF = {
    "fcn": "network",
    "lstm": "network",
    "bag_of_frames": "bag_of_frames",
    "embedding_svm": "embedding_classifier",
    "embedding_lstm": "embedding_sequence",
}


def _info_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["info", str(path), "--json"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1
    return json.loads(out)


@pytest.mark.parametrize("name", KINDS)
def test_json_reports_what_the_checkpoint_and_its_summary_hold(
    checkpoints: dict, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = checkpoints[name]
    info = _info_json(path, capsys)
    checkpoint = load_checkpoint(path)
    summary = json.loads((path.parent / "train_summary.json").read_text())
    assert info["kind"] == KIND_OF[name] == checkpoint["kind"]
    assert info["architecture"] == checkpoint["architecture"]
    assert info["tags"] == checkpoint["tags"] and info["features"] == checkpoint["features"]
    assert info["training"]["train_config"] == checkpoint["train_config"]
    for key in ("n_train_tracks", "epochs_run", "best_epoch"):
        assert info["training"][key] == summary[key]
    assert info["training"]["dataset"] is None  # not under results/<dataset>/models/
    assert info["selection"]["epoch"] == checkpoint["selection"]["epoch"]
    assert info["metrics"] is None and info["licences"] == []
    assert info["parameters"] >= summary["params"] > 0  # frozen networks count here too
    assert (info["frozen_network"] is not None) is name.startswith("embedding_")


def test_text_names_every_section(checkpoints: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(checkpoints["fcn"])]) == EXIT_OK
    out = capsys.readouterr().out
    sections = [line.split("  ")[0] for line in out.splitlines()]
    assert sections == [
        "checkpoint",
        "kind",
        "architecture",
        "parameters",
        "tags",
        "features",
        "window",
        "training data",
        "train config",
        "selection",
        "test metrics",
        "licence",
    ]
    lines = dict(line.split("  ", 1) for line in out.splitlines())
    assert lines["kind"].strip() == "network (checkpoint format 1)"
    assert lines["architecture"].strip().startswith("fcn, input window; hparams: depth 4")
    assert lines["tags"].strip() == "2: low, high"
    assert "n_mels 16" in lines["features"] and "length_s 1.008" in lines["window"]
    assert "crop_frames 32" in lines["train config"]
    assert lines["licence"].strip() == "none"


def test_a_workflow_model_folder_gives_dataset_and_test_metrics(
    checkpoints: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results" / "mydata" / "models" / "fcn"
    shutil.copytree(checkpoints["fcn"].parent, folder)
    mean = {"n_tracks": 9, "n_tags_evaluated": 2, "macro_roc_auc": 0.75, "macro_pr_auc": None}
    mean |= {"micro_roc_auc": 0.5, "micro_pr_auc": 0.25, "skipped_tags": []}
    metrics = {  # as pipeline.evaluation.evaluate writes it
        "split": "test",
        "aggregation": "mean",
        "aggregations": {"mean": mean, "max": {**mean, "macro_roc_auc": 0.5}},
        "n_tracks": 9,
    }
    (folder / "evaluation").mkdir()
    (folder / "evaluation" / "metrics.json").write_text(json.dumps(metrics))
    info = _info_json(folder / "checkpoint.pt", capsys)
    assert info["training"]["dataset"] == "mydata"
    assert info["metrics"] == {
        "split": "test",
        "aggregation": "mean",
        **{k: v for k, v in mean.items() if k != "skipped_tags"},
    }
    assert main(["info", str(folder / "checkpoint.pt")]) == EXIT_OK
    text = capsys.readouterr().out
    assert "dataset mydata" in text and "macro_roc_auc 0.7500, macro_pr_auc n/a" in text


def test_licences_of_pretrained_weights_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = random_network_checkpoint()
    checkpoint["pretrained"] = {"model_id": "m-a-p/MERT-v1-95M", "licence": "CC-BY-NC-4.0"}
    checkpoint["features"] = {**checkpoint["features"], "encoder": {"license": "MIT"}}
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, path)
    info = _info_json(path, capsys)
    assert info["licences"] == [
        {"where": "features.encoder.license", "licence": "MIT"},
        {"where": "pretrained.licence", "licence": "CC-BY-NC-4.0"},
    ]
    assert main(["info", str(path)]) == EXIT_OK
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.split(None, 1) == [
        "licence",
        "MIT (features.encoder.license); CC-BY-NC-4.0 (pretrained.licence)",
    ]


def test_values_that_are_not_finite_are_null_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = random_network_checkpoint()
    checkpoint["selection"] = {**checkpoint["selection"], "value": float("nan")}
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, path)
    assert _info_json(path, capsys)["selection"]["value"] is None


def _bad(folder: Path, kind: str, real: Path) -> Path:
    path = folder / f"{kind}.pt"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.touch()
    elif kind == "random":
        path.write_bytes(np.random.default_rng(3).integers(0, 256, 3000, np.uint8).tobytes())
    elif kind == "truncated":
        data = real.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory, not a checkpoint file"),
        ("empty", "is empty"),
        ("random", "is not a checkpoint (not a torch file)"),
        ("truncated", "is not a checkpoint (a damaged or truncated torch file)"),
    ],
)
def test_a_missing_or_corrupt_checkpoint_is_one_line(
    checkpoints: dict, tmp_path: Path, kind: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bad(tmp_path, kind, checkpoints["fcn"])
    assert main(["info", str(path), "--json"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("pipeline info: error: ") and str(path) in err and why in err, err


def test_as_a_command_it_exits_2_with_one_line_and_no_traceback(
    checkpoints: dict, tmp_path: Path
) -> None:
    path = _bad(tmp_path, "truncated", checkpoints["fcn"])
    out = run_pipeline("info", str(path))
    assert out.returncode == EXIT_USAGE and out.stdout == ""
    assert "damaged or truncated" in one_line_error(out, command="info")
    good = run_pipeline("info", str(checkpoints["lstm"]), "--json")
    assert good.returncode == EXIT_OK and json.loads(good.stdout)["architecture"] == "lstm"


def test_help_lists_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=True,
    )
    assert "info" in out.stdout and "show what a checkpoint holds" in out.stdout
