"""The one checkpoint format: plain values only, atomic writes, and errors that name the file."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
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
    load_torch_file,
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
    with pytest.raises(PipelineError, match=r"foreign.pt.*lacks key\(s\) \['format_version'"):
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


# --------------------------------------------------------------------------------------------
# Files that are not checkpoints: one line naming the file, never PyTorch's advice
# --------------------------------------------------------------------------------------------


class _Code:
    """A class instance: torch.save pickles a reference to code that loading would import."""

    def __init__(self) -> None:
        self.x = 1


def _not_checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad checkpoint files the test makes, each with the end of its one-line message."""
    rng = np.random.default_rng(0)
    made: dict[str, tuple[Path, str]] = {}

    def add(name: str, why: str) -> Path:
        made[name] = (folder / name, why)
        return folder / name

    add("folder.pt", "is a directory, not a checkpoint file").mkdir()
    add("empty.pt", "is empty").touch()
    os.mkfifo(add("pipe.pt", "is a named pipe (FIFO), not a checkpoint file"))
    for k in range(8):  # random bytes once said "IndexError: pop from empty list"
        add(f"random{k}.pt", "is not a checkpoint (not a torch file)").write_bytes(
            rng.integers(0, 256, size=int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
        )
    add("text.pt", "is not a checkpoint (not a torch file)").write_text("weights? no.")
    with add("pickle.pt", "is not a checkpoint (not a torch file)").open("wb") as f:
        pickle.dump({"state_dict": {}}, f)
    torch.save({"model": _Code()}, add("code.pt", f"holds pickled code ({__name__}._Code)"))
    torch.save(
        {"model": _Code()},
        add("legacy_code.pt", f"holds pickled code ({__name__}._Code)"),
        _use_new_zipfile_serialization=False,
    )
    whole = folder / "whole.pt"
    torch.save(random_network_checkpoint(), whole)
    data = whole.read_bytes()
    add("truncated.pt", "(a damaged or truncated torch file)").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(add("archive.pt", "(a zip archive, but not a torch file)"), "w") as z:
        z.writestr("notes.txt", "hello")
    with warnings.catch_warnings():  # torch.jit is deprecated, and still written by some
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(
            torch.jit.script(torch.nn.Linear(2, 2)),
            add(
                "scripted.pt", "is a TorchScript archive (code), not a checkpoint of this pipeline"
            ),
        )
    torch.save(torch.zeros(3), add("tensor.pt", "it holds a Tensor, not a dict with keys"))
    torch.save(
        {"weights": torch.zeros(2)},
        add("foreign.pt", "lacks key(s) ['format_version', 'kind', 'tags', 'features', 'stats']"),
    )
    return made


def test_files_that_are_not_checkpoints_get_one_line_each(tmp_path: Path) -> None:
    for name, (path, why) in _not_checkpoints(tmp_path).items():
        with pytest.raises(PipelineError) as info:
            load_checkpoint(path)  # the FIFO is refused before opening: no hang
        message = str(info.value)
        assert "\n" not in message and str(path) in message and why in message, (name, message)
        assert "weights_only" not in message and "safe_globals" not in message, name
        assert len(message) < 300, (name, message)
        context = info.value.__context__  # PyTorch's long message is not chained either
        assert info.value.__cause__ is None, name
        assert context is None or info.value.__suppress_context__, name


def test_pickled_code_is_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_Code, "__setstate__", lambda self, state: calls.append(1), raising=False)
    path = tmp_path / "code.pt"
    torch.save({"format_version": 1, "model": _Code()}, path)
    with pytest.raises(PipelineError, match="holds pickled code"):
        load_checkpoint(path)
    assert calls == []


def test_load_torch_file_names_what_the_file_should_be(tmp_path: Path) -> None:
    """The loader under load_checkpoint, for other torch files (projections, resume state)."""
    good = tmp_path / "projection.pt"
    torch.save({"kind": "triplet_projection", "weight": torch.eye(2)}, good)
    assert torch.equal(load_torch_file(good, what="projection")["weight"], torch.eye(2))
    bad = tmp_path / "bad.pt"
    bad.write_text("no")
    with pytest.raises(PipelineError, match=r"^'.*bad.pt' is not a projection \(not a torch"):
        load_torch_file(bad, what="projection")
    with pytest.raises(PipelineError, match=r"^projection '.*' is a directory, not a projection"):
        load_torch_file(tmp_path, what="projection")
