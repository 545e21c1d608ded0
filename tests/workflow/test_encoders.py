"""Workflow test of pretrained encoders: tiny random-weight HuBERT-style and CLAP models in
local directories -> encoder feature sets -> probes and zero-shot CLAP -> leaderboard (with
the licence), the similarity index and few-shot prototypes on an encoder probe, and
`pipeline tag` on a new file. Nothing is downloaded."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.audio import write_audio
from tests.helpers.encoders import encoder_features
from tests.workflow.test_workflow import run

pytestmark = pytest.mark.workflow


def _config(models: dict[str, Path]) -> dict:
    window = {"length_s": 2.0, "hop_s": 2.0, "min_tail_s": 0.5, "max_duration_s": 10}
    mert = encoder_features(models["hubert"], pooling="mean+std")
    clap = encoder_features(models["clap"], chunk_s=2.0)
    train = {"epochs": 3, "batch_size": 4, "lr": 0.01}
    return {
        "datasets": {
            "tiny": {
                "format": "table",
                "root": "data",
                "table": "tags.csv",
                "shards": 2,
                "split": {"valid_fraction": 0.25, "test_fraction": 0.25},
            }
        },
        "features": {"mert": {**mert, "window": window}, "clap": {**clap, "window": window}},
        "extraction": {"threads": 1},
        "models": {
            "mert_probe": {
                "architecture": "probe_mlp",
                "features": "mert",
                "hparams": {"hidden": 16},
                "train": train,
                "threads": 1,
            },
            "clap_probe": {
                "architecture": "probe_linear",
                "features": "clap",
                "train": train,
                "threads": 1,
                "layer_table": True,
            },
            "clap_zero_shot": {"architecture": "zero_shot_clap", "features": "clap", "threads": 1},
        },
        "evaluation": {"taggram_tracks": 1},
        "retrieval": {
            "models": ["mert_probe"],
            "k": 3,
            "metric_learning": {"dim": 4, "epochs": 2},
            "relevance_threshold": 0.3,
        },
        "fewshot": {"models": ["clap_probe"], "shots": [1], "episodes": 2},
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_encoders: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("encoders-workflow")
    rows = []
    for i in range(16):
        name = f"t{i}.wav" if i % 3 else f"t{i}.flac"
        high = i % 2 == 1
        write_audio(
            root / "data" / name,
            duration_s=2.0 + (i % 4),
            sample_rate=8000 if i % 4 else 22050,
            freq_hz=1500.0 if high else 200.0,
            seed=i,
        )
        rows.append((name, "high" if high else "low;calm", f"artist{i // 4}"))
    with (root / "data" / "tags.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "tags", "artist"])
        writer.writerows(rows)
    (root / "config.yaml").write_text(yaml.safe_dump(_config(tiny_encoders)))
    proc = run(root)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return root


def test_leaderboard_lists_probes_and_zero_shot_with_licences(workdir: Path) -> None:
    board = pd.read_csv(workdir / "results" / "leaderboard.csv")
    assert sorted(board["model"]) == ["clap_probe", "clap_zero_shot", "mert_probe"]
    licence = dict(zip(board["model"], board["licence"], strict=True))
    assert licence["mert_probe"] == "cc-by-nc-4.0" and licence["clap_zero_shot"] == "apache-2.0"
    assert board["macro_roc_auc"].notna().all()
    store = workdir / "results" / "tiny" / "features" / "mert" / "0000.zarr"
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    assert attrs["encoder"]["licence"] == "cc-by-nc-4.0"
    assert attrs["features"]["encoder"]["dim"] == 64  # mean+std of 32


def test_layer_table_of_a_probe(workdir: Path) -> None:
    folder = workdir / "results" / "tiny" / "models" / "clap_probe" / "layers"
    table = pd.read_csv(folder / "layers.csv")
    assert table["layer"].tolist() == [0] and (folder / "layers.png").is_file()


def test_retrieval_and_fewshot_accept_encoder_feature_sets(workdir: Path) -> None:
    results = workdir / "results"
    assert (results / "tiny" / "models" / "mert_probe" / "similarity" / "index.parquet").is_file()
    assert "mert_probe" in set(pd.read_csv(results / "retrieval.csv")["model"])
    assert "clap_probe" in set(pd.read_csv(results / "fewshot.csv")["model"])


def test_pipeline_tag_and_similar_run_the_encoder_on_a_new_file(
    workdir: Path, tmp_path: Path
) -> None:
    song = write_audio(tmp_path / "new.wav", duration_s=3.0, sample_rate=44100, freq_hz=1500.0)
    model = workdir / "results" / "tiny" / "models" / "mert_probe"
    for command in (
        ["tag", "-c", str(model / "checkpoint.pt"), "-n", "2"],
        ["similar", "-i", str(model / "similarity" / "index.parquet"), "-k", "2"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", *command, str(song)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert "high" in proc.stdout, proc.stdout
