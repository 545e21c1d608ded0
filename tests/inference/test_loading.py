"""Loading any checkpoint kind as a tagger, through the registry of kinds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.inference.bag_of_frames import BagOfFramesTagger
from pipeline.inference.embedding import EmbeddingClassifierTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.registry import TAGGER_KINDS
from pipeline.inference.sequence import EmbeddingSequenceTagger
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.checkpoints import (
    random_bag_of_frames_checkpoint,
    random_embedding_classifier_checkpoint,
    random_embedding_sequence_checkpoint,
    random_network_checkpoint,
)
from tests.helpers.synthetic import SETTINGS, TAGS


def test_tagger_registry_dispatches_on_kind(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = tmp_path / "odd.pt"
    save_checkpoint({**load_checkpoint(trained["fcn"]), "kind": "constant"}, odd)
    seen = []
    monkeypatch.setitem(TAGGER_KINDS, "constant", lambda ckpt, device: seen.append(device) or 42)
    assert load_tagger(odd, device="cpu") == 42 and seen == ["cpu"]


def test_unknown_kind_names_it(trained: dict, tmp_path: Path) -> None:
    odd = tmp_path / "odd.pt"
    torch.save({**load_checkpoint(trained["fcn"]), "kind": "no_such_kind"}, odd)
    with pytest.raises(PipelineError, match="'no_such_kind'"):
        load_tagger(odd)


@pytest.mark.parametrize(
    ("build", "kind", "cls"),
    [
        (random_network_checkpoint, "network", NetworkTagger),
        (random_bag_of_frames_checkpoint, "bag_of_frames", BagOfFramesTagger),
        (random_embedding_classifier_checkpoint, "embedding_classifier", EmbeddingClassifierTagger),
        (random_embedding_sequence_checkpoint, "embedding_sequence", EmbeddingSequenceTagger),
    ],
)
def test_every_kind_loads_as_its_tagger(build, kind: str, cls: type, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.pt"
    save_checkpoint(build(), path)
    tagger = load_tagger(path)
    assert type(tagger) is cls and TAGGER_KINDS[kind] is not None
    assert tagger.tags == TAGS and tagger.features == SETTINGS


def test_unknown_kind_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    save_checkpoint({**random_network_checkpoint(), "kind": "odd"}, path)
    known = sorted(TAGGER_KINDS)
    assert {"network", "bag_of_frames", "embedding_classifier", "embedding_sequence"} <= set(known)
    with pytest.raises(
        PipelineError, match=f"odd.pt.*kind 'odd'; {re.escape(f'known kinds: {known}')}"
    ):
        load_tagger(path)
    with pytest.raises(PipelineError, match="missing.pt.*does not exist"):
        load_tagger(tmp_path / "missing.pt")


def test_tagger_kinds_are_registered(checkpoints: dict, tmp_path: Path) -> None:
    assert {"bag_of_frames", "embedding_classifier"} <= set(TAGGER_KINDS)
    partial = tmp_path / "partial.pt"
    checkpoint = load_checkpoint(checkpoints["bag_of_frames"])
    del checkpoint["codebook"]
    save_checkpoint(checkpoint, partial)
    with pytest.raises(PipelineError, match=r"'bag_of_frames' lacks key\(s\) \['codebook'\]"):
        load_tagger(partial)
