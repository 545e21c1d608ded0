"""The one checkpoint format: plain values only, atomic writes, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import (
    COMMON_KEYS,
    FORMAT_VERSION,
    NETWORK_KEYS,
    check_plain,
    load_checkpoint,
    network_checkpoint,
    plain,
    save_checkpoint,
    save_torch,
)
from tests.helpers.checkpoints import RANDOM_STATS, random_network_checkpoint


def test_checkpoint_is_plain_and_loads_with_weights_only(trained: dict) -> None:
    raw = torch.load(trained["fcn"], weights_only=True)
    assert set(COMMON_KEYS) | set(NETWORK_KEYS) <= set(raw)
    assert raw["format_version"] == FORMAT_VERSION and raw["kind"] == "network"
    assert raw["architecture"] == "fcn" and raw["crop_frames"] == 32
    assert raw["tags"] == trained["tags"] and raw["features"] == trained["features"]
    assert raw["stats"]["mean"] == pytest.approx(trained["stats"]["mean"])
    assert raw["train_config"]["eval_chunks"] == 4 and raw["eval_chunks"] == 4
    assert raw["selection"]["criterion"].startswith("best valid macro ROC-AUC")
    assert all(isinstance(v, torch.Tensor) for v in raw["state_dict"].values())


def test_checkpoint_errors_name_the_file(trained: dict, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="nothing.pt.*does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(PipelineError, match="text.pt.*not a checkpoint"):
        load_checkpoint(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(PipelineError, match="foreign.pt.*no format_version"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    torch.save({**load_checkpoint(trained["fcn"]), "format_version": FORMAT_VERSION + 1}, newer)
    with pytest.raises(PipelineError, match="newer.pt.*format 2, newer"):
        load_tagger(newer)
    partial = tmp_path / "partial.pt"
    torch.save({"format_version": 1, "kind": "network", "tags": []}, partial)
    with pytest.raises(PipelineError, match="partial.pt.*lacks key"):
        load_checkpoint(partial)
    with pytest.raises(PipelineError, match="Path"):
        save_checkpoint({**load_checkpoint(trained["fcn"]), "hparams": {"x": tmp_path}}, newer)


def test_plain_turns_tuples_into_lists_and_keys_into_strings() -> None:
    value = {"a": (1, (2, 3)), 4: {"b": [(5,)]}, "c": None}
    assert plain(value) == {"a": [1, [2, 3]], "4": {"b": [[5]]}, "c": None}
    check_plain(plain(value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": (1, 2)}, r"checkpoint\['a'\]: tuple \(1, 2\)"),
        ({"a": [1, {"b": np.float32(1)}]}, r"checkpoint\['a'\]\[1\]\['b'\]: float32"),
        ({"p": Path("x.pt")}, r"checkpoint\['p'\]: PosixPath"),
        ({(1, 2): 3}, r"key \(1, 2\) is not a str or int"),
    ],
)
def test_check_plain_names_the_bad_value(value: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        check_plain(value)


def test_check_plain_accepts_tensors_scalars_and_int_keys() -> None:
    check_plain({"w": torch.zeros(2), "n": None, "s": "x", "f": 1.5, "b": True, 0: {"1": [2]}})


def test_network_checkpoint_copies_weights_and_keeps_plain_values() -> None:
    weights = {"w": torch.ones(2, requires_grad=True)}
    checkpoint = network_checkpoint(
        architecture="fcn",
        hparams={"pool": (2, 4)},
        train_config={"lr": 0.1},
        tags=("a", "b"),
        features={"name": "lm"},
        stats={**RANDOM_STATS, "n_frames": 10},
        input_kind="window",
        crop_frames=np.int64(32),
        pool_frames=8,
        eval_chunks=4,
        max_windows=2,
        state_dict=weights,
        selection={"criterion": "last epoch", "epoch": 3, "value": 0.5},
    )
    assert set(checkpoint) == {*COMMON_KEYS, *NETWORK_KEYS}
    assert checkpoint["format_version"] == FORMAT_VERSION and checkpoint["kind"] == "network"
    assert checkpoint["hparams"] == {"pool": [2, 4]} and checkpoint["tags"] == ["a", "b"]
    assert set(checkpoint["stats"]) == {"mean", "std"}
    assert type(checkpoint["crop_frames"]) is int
    copy = checkpoint["state_dict"]["w"]
    assert not copy.requires_grad
    with torch.no_grad():
        weights["w"].add_(1.0)
    assert copy.tolist() == [1.0, 1.0]  # a copy, not a view of the training weights
    check_plain(checkpoint)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    checkpoint = random_network_checkpoint()
    path = tmp_path / "deep" / "checkpoint.pt"
    save_checkpoint(checkpoint, path)
    loaded = load_checkpoint(path)
    assert set(loaded) == set(checkpoint)
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], value), key
    assert {k: v for k, v in loaded.items() if k != "state_dict"} == {
        k: v for k, v in checkpoint.items() if k != "state_dict"
    }
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary left


class _Unsaveable:
    def __reduce__(self) -> tuple:
        raise RuntimeError("cannot be saved")


def test_save_torch_replaces_a_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    save_torch({"step": 1}, path)
    save_torch({"step": 2, "extra": torch.arange(3)}, path)
    assert torch.load(path, weights_only=True)["step"] == 2
    with pytest.raises(RuntimeError, match="cannot be saved"):
        save_torch({"bad": _Unsaveable()}, path)  # fails half-way: the old file stays
    assert torch.load(path, weights_only=True)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


@pytest.mark.parametrize("version", [0, "1", 1.0])
def test_invalid_format_versions_are_errors(tmp_path: Path, version: object) -> None:
    path = tmp_path / "odd.pt"
    torch.save({**random_network_checkpoint(), "format_version": version}, path)
    with pytest.raises(PipelineError, match=f"odd.pt.*format_version {version!r} is not valid"):
        load_checkpoint(path)


def test_saving_checks_keys_before_writing(tmp_path: Path) -> None:
    checkpoint = random_network_checkpoint()
    del checkpoint["selection"]
    with pytest.raises(PipelineError, match=r"lacks key\(s\) \['selection'\]"):
        save_checkpoint(checkpoint, tmp_path / "c.pt")
    other = {k: random_network_checkpoint()[k] for k in COMMON_KEYS} | {"kind": "other"}
    save_checkpoint(other, tmp_path / "other.pt")  # other kinds need only the common keys
    assert load_checkpoint(tmp_path / "other.pt")["kind"] == "other"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt"]
