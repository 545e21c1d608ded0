"""Workflow tests: the real Snakemake DAG on tiny data made here.

They prove what the workflow promises: outputs are complete, bad input becomes failure rows
and never kills the run, a second run does nothing, changing one feature set re-extracts that
set only, and adding one track re-extracts one shard only.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.io.store import FeatureStore
from tests.helpers.audio import write_audio

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

pytestmark = pytest.mark.workflow

TINY_CONFIG = {
    "datasets": {
        "tiny": {
            "format": "table",
            "root": "data",
            "table": "tags.csv",
            "shards": 2,
            "split": {"valid_fraction": 0.25, "test_fraction": 0.25},
            "max_missing_fraction": 0.2,  # 2 of 15 audio files are missing or empty on purpose
        }
    },
    "features": {
        "logmel": {
            "kind": "logmel",
            "n_mels": 24,
            "n_frames": 126,
            "window": {"length_s": 2.0, "hop_s": 2.0, "min_tail_s": 0.5, "max_duration_s": 10},
        },
        "mfcc": {
            "kind": "mfcc",
            "n_mels": 24,
            "n_mfcc": 8,
            "deltas": 1,
            "n_frames": 126,
            "window": {"length_s": 2.0, "hop_s": 2.0, "min_tail_s": 0.5, "max_duration_s": 10},
        },
    },
    "extraction": {"threads": 1},
    "models": {
        "fcn": {  # trained on 48-frame crops: its taggrams are per chunk
            "architecture": "fcn",
            "features": "logmel",
            "hparams": {"width": 2},
            "train": {"epochs": 2, "batch_size": 4, "crop_frames": 48},
            "threads": 1,
        },
        "lstm": {
            "architecture": "lstm",
            "features": "mfcc",
            "hparams": {"hidden": 8, "mlp": 8},
            "train": {"epochs": 2, "batch_size": 4, "pool_frames": 8},
            "threads": 1,
        },
        "bof": {
            "architecture": "bag_of_frames",
            "features": "mfcc",
            "hparams": {"codebook_size": 8, "hidden": 8},
            "train": {"epochs": 2, "batch_size": 4},
            "threads": 1,
            "seeds": [0, 1],  # two runs, one leaderboard row
        },
        "fcn_lstm": {
            "architecture": "embedding_lstm",
            "features": "logmel",
            "hparams": {"from_model": "fcn", "lstm": {"hidden": 8, "mlp": 8}},
            "train": {"epochs": 2, "batch_size": 4, "max_windows": 4},
            "threads": 1,
        },
        "random_fcn": {
            "architecture": "embedding_svm",
            "features": "logmel",
            "hparams": {"network": "fcn", "network_hparams": {"width": 2}},
            "threads": 1,
        },
    },
    "evaluation": {"taggram_tracks": 1},
    "retrieval": {
        "models": ["fcn", "lstm"],
        "k": 5,
        "metric_learning": {"dim": 4, "hidden": 8, "epochs": 3},
    },
    "fewshot": {
        "models": ["fcn"],
        "shots": [1, 2],
        "episodes": 2,
        "finetune": {"steps": 3, "batch_size": 4},
    },
    "collections": {
        "folder": {"root": "data", "model": "fcn", "shards": 2, "top": 2},
        "tracks": {"dataset": "tiny", "model": "lstm", "top": 1},
    },
}


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``; return the finished process (output in .stdout)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _write_tiny_dataset(root: Path) -> list[tuple[str, str, str]]:
    """Good tracks in every format, plus the bad inputs the workflow must survive."""
    data = root / "data"
    rows = []
    good = [
        ("a.wav", 16000, 1, 5.0),
        ("b.flac", 44100, 2, 4.5),
        ("c.ogg", 22050, 1, 3.0),
        ("d.mp3", 16000, 1, 6.0),
        ("e_8k.wav", 8000, 1, 4.0),
        ("f_96k.flac", 96000, 1, 3.0),
        ("g_6ch.wav", 16000, 6, 3.0),
        ("h_short.wav", 16000, 1, 0.7),
        ("i_long.flac", 16000, 1, 25.0),
        ("Ünïcødé – 歌.ogg", 16000, 1, 4.0),
    ]
    for i, (name, sr, channels, seconds) in enumerate(good):
        write_audio(
            data / name,
            duration_s=seconds,
            sample_rate=sr,
            channels=channels,
            freq_hz=220.0 * (1 + i % 3),
            seed=i,
        )
        rows.append((name, "low" if i % 2 else "high;tone", f"artist{i % 4}"))
    write_audio(data / "silent.wav", data=np.zeros((16000 * 3, 1), np.float32))
    rows.append(("silent.wav", "quiet", "artist9"))
    (data / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 20)
    (data / "empty.wav").write_bytes(b"")
    (data / "text.mp3").write_text("this is not audio at all\n" * 200)
    # an old collection's Latin-1 name (not in the dataset's table; the folder collection
    # lists it): not valid UTF-8, so Python sees a lone surrogate
    latin = write_audio(data / "old" / "latin.wav", duration_s=3.0, seed=11)
    os.rename(latin, os.fsdecode(os.fsencode(data / "old") + b"/caf\xe9.wav"))
    rows += [
        ("corrupt.flac", "low", "artist1"),
        ("empty.wav", "low", "artist2"),
        ("text.mp3", "low", "artist3"),
        ("missing.wav", "low", "artist1"),
    ]
    with (data / "tags.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "tags", "artist"])
        writer.writerows(rows)
    return rows


def _store_times(workdir: Path, features: str) -> dict[str, int]:
    folder = workdir / "results" / "tiny" / "features" / features
    return {p.name: (p / "zarr.json").stat().st_mtime_ns for p in sorted(folder.glob("*.zarr"))}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset processed once by the real workflow; tests below build on it."""
    root = tmp_path_factory.mktemp("workflow")
    _write_tiny_dataset(root)
    (root / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    proc = run(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_outputs_and_failures(workdir: Path) -> None:
    results = workdir / "results" / "tiny"
    manifest = pd.read_parquet(results / "manifest.parquet")
    # every audio file is checked before any work: the missing and the empty one leave the
    # manifest as failure rows of stage "check"; the other 13 go on
    assert len(manifest) == 13
    assert set(manifest["split"]) <= {"train", "valid", "test"}
    checked = json.loads((results / "manifest_summary.json").read_text())["files"]
    assert (checked["checked"], checked["found"], checked["missing"]) == (15, 13, 1)
    assert checked["unreadable"] == 1 and checked["missing_examples"] == ["data/missing.wav"]
    for features, n_bins in (("logmel", 24), ("mfcc", 16)):
        folder = results / "features" / features
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["n_tracks"] == 13
        assert summary["n_stored"] == 11  # 10 good tracks + the silent one
        assert summary["n_failed"] == 4
        failed = pd.read_csv(folder / "failed.csv")
        errors = failed[failed["level"] == "error"]
        assert sorted(Path(p).name for p in errors["path"]) == [
            "corrupt.flac",
            "empty.wav",
            "missing.wav",
            "text.mp3",
        ]
        stage = dict(zip(errors["path"].map(lambda p: Path(p).name), errors["stage"], strict=True))
        assert stage == {
            "corrupt.flac": "decode",
            "text.mp3": "decode",
            "empty.wav": "check",
            "missing.wav": "check",
        }
        for _, row in errors.iterrows():
            assert Path(row["path"]).name in row["error"]
        warned = set(failed.loc[failed["level"] == "warning", "path"].map(lambda p: Path(p).name))
        assert {"silent.wav", "i_long.flac"} <= warned
        index = pd.read_parquet(folder / "index.parquet")
        assert len(index) == 11
        ids = set(index["track_id"])
        assert "Ünïcødé – 歌" in ids
        long_track = index.set_index("track_id").loc["i_long"]
        assert long_track["n_windows"] == 5  # max_duration_s=10 with 2 s windows
        assert long_track["duration_s"] == pytest.approx(10.0, abs=0.01)
        stores = [FeatureStore(p) for p in sorted(folder.glob("*.zarr"))]
        assert sum(s.attrs["n_tracks"] for s in stores) == 11
        for s in stores:
            assert s.windows.shape[1:] == (n_bins, 126)
            assert s.windows.dtype == np.float16
            assert s.attrs["features"]["name"] == features
        stats = json.loads((folder / "stats.json").read_text())
        assert len(stats["mean"]) == n_bins and all(v > 0 for v in stats["std"])


def test_models_trained_evaluated_and_ranked(workdir: Path) -> None:
    results = workdir / "results"
    board = pd.read_csv(results / "leaderboard.csv")
    assert sorted(board["model"]) == ["bof", "fcn", "fcn_lstm", "lstm", "random_fcn"]
    assert board["macro_roc_auc"].between(0, 1).all()
    assert (board["split"] == "test").all()
    assert set(board["aggregation"]) == {"mean", "model"}
    html = (results / "leaderboard.html").read_text()
    assert "random_fcn" in html and "<table" in html
    for model in board["model"]:
        folder = results / "tiny" / "models" / model
        checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
        assert (
            checkpoint["tags"] == json.loads((results / "tiny/vocabulary.json").read_text())["tags"]
        )
        assert len(pd.read_csv(folder / "history.csv")) >= 1
        metrics = json.loads((folder / "evaluation" / "metrics.json").read_text())
        assert metrics["split"] == "test"
        for name in ("per_tag_auc.png", "curves.png", "training.png"):
            assert (folder / "evaluation" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fcn = json.loads((results / "tiny/models/fcn/evaluation/metrics.json").read_text())
    assert set(fcn["aggregations"]) == {"mean", "max", "autopool"}


def test_uncertainty_seeds_and_chunk_taggrams(workdir: Path) -> None:
    """Bootstrap intervals per row, the paired test in words, the plot; a model with two
    seeds is two runs and one row; a crop model's evaluation taggram is per chunk."""
    results = workdir / "results"
    board = pd.read_csv(results / "leaderboard.csv")
    for metric in ("macro_roc_auc", "macro_pr_auc"):
        low, high = board[f"{metric}_ci_low"], board[f"{metric}_ci_high"]
        known = board[metric].notna()
        assert (low[known] <= board[metric][known] + 1e-12).all()
        assert (board[metric][known] <= high[known] + 1e-12).all()
    markdown = (results / "leaderboard.md").read_text()
    assert "tiny: The difference in macro ROC-AUC between" in markdown
    assert "significant at 95 % (p = " in markdown
    assert (results / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bof = board.set_index("model").loc["bof"]
    assert bof["n_seeds"] == 2 and np.isfinite(bof["macro_roc_auc_std"])
    runs = [json.loads((results / f"tiny/models/{m}/evaluation/metrics.json").read_text())
            for m in ("bof", "bof_seed1")]  # fmt: skip
    mean = np.mean([r["aggregations"]["model"]["macro_roc_auc"] for r in runs])
    assert bof["macro_roc_auc"] == pytest.approx(mean)
    chunks = pd.read_parquet(results / "tiny/models/fcn/predictions/eval_chunks.parquet")
    songs = pd.read_parquet(results / "tiny/models/fcn/predictions/eval_songs.parquet")
    assert set(chunks["track_id"]) == {songs["track_id"].iloc[0]}  # taggram_tracks: 1
    assert (chunks["end_s"] - chunks["start_s"]).max() == pytest.approx(48 * 256 / 16000)
    assert pd.read_parquet(results / "tiny/models/lstm/predictions/eval_chunks.parquet").empty
    retrieval = pd.read_csv(results / "retrieval.csv")
    tagger = retrieval[retrieval["space"] != "random"]
    assert (tagger["map@5_ci_low"] <= tagger["map@5"] + 1e-12).all()


def test_retrieval_fewshot_and_collections(workdir: Path) -> None:
    """Similarity index and retrieval table, few-shot table, batch-tagged collections."""
    from pipeline.retrieval.similarity import load_index

    results = workdir / "results"
    table = pd.read_csv(results / "retrieval.csv")
    assert sorted(set(table["model"])) == ["(any)", "fcn", "lstm"]
    assert (table["space"] == "random").sum() == 1  # chance: one row per dataset
    assert set(table["space"]) == {"tagger", "triplet", "random"}
    assert table["map@5"].between(0, 1).all()
    assert "Retrieval" in (results / "retrieval.md").read_text()
    index = load_index(results / "tiny/models/fcn/similarity/index.parquet")
    assert index.space == "tagger" and len(index.table) >= 8
    assert index.table["path"].str.startswith("data").all()

    fewshot = pd.read_csv(results / "fewshot.csv")
    assert set(fewshot["method"]) == {"prototypes", "finetune"}
    assert sorted(set(fewshot["shots"])) == [1, 2]

    tags = pd.read_parquet(results / "collections/folder/tags.parquet")
    failed = pd.read_parquet(results / "collections/folder/failed.parquet")
    assert {"corrupt.flac", "empty.wav", "text.mp3"} <= set(failed["track_id"])
    assert "a.wav" in set(tags["track_id"]) and len(tags) + len(failed) == 15
    assert "old/caf\\udce9.wav" in set(tags["track_id"])  # tagged, its name escaped
    vocabulary = json.loads((results / "tiny/vocabulary.json").read_text())["tags"]
    assert tags[vocabulary].to_numpy().max() <= 1
    assert len(tags["embedding"][0]) > 0 and all(len(t) == 2 for t in tags["top_tags"])
    from_dataset = pd.read_parquet(results / "collections/tracks/tags.parquet")
    assert "a" in set(from_dataset["track_id"])


def test_second_run_does_nothing(workdir: Path) -> None:
    proc = run(workdir, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_feature_change_reextracts_that_set_only(workdir: Path) -> None:
    before = {f: _store_times(workdir, f) for f in ("logmel", "mfcc")}
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["features"]["mfcc"]["n_mfcc"] = 6
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    proc = run(workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {f: _store_times(workdir, f) for f in ("logmel", "mfcc")}
    assert after["logmel"] == before["logmel"]
    assert all(after["mfcc"][k] != before["mfcc"][k] for k in before["mfcc"])
    store = FeatureStore(next((workdir / "results/tiny/features/mfcc").glob("*.zarr")))
    assert store.windows.shape[1] == 12


def test_new_track_reextracts_one_shard(workdir: Path) -> None:
    before = {f: _store_times(workdir, f) for f in ("logmel", "mfcc")}
    write_audio(workdir / "data" / "new.wav", duration_s=3.0, freq_hz=880.0)
    with (workdir / "data" / "tags.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["new.wav", "high", "artist7"])
    proc = run(workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for features in ("logmel", "mfcc"):
        after = _store_times(workdir, features)
        changed = [k for k in after if after[k] != before[features][k]]
        assert len(changed) == 1, (features, changed)
        index = pd.read_parquet(workdir / f"results/tiny/features/{features}/index.parquet")
        assert "new" in set(index["track_id"])


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = {**TINY_CONFIG, "features": {"logmel": {"kind": "logmel", "n_mels": 0}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = run(tmp_path, "--dry-run")
    assert proc.returncode != 0
    assert "features.logmel.n_mels" in proc.stdout + proc.stderr


def test_snakemake_report(workdir: Path) -> None:
    proc = run(workdir, "--report", "report.html")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (workdir / "report.html").read_text(errors="replace")
    assert "Leaderboard" in html and "Taggrams" in html
    assert "leaderboard.png" in html
    # the landing page summarises the leaderboard (rule summarise_leaderboard)
    assert (workdir / "results" / "leaderboard_summary.rst").is_file()
    assert "Leaderboard summary" in html and "Best macro ROC-AUC" in html
