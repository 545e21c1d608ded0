"""Two-stage taggers: a fixed representation of each track, then a small classifier.

- ``bag_of_frames`` (:mod:`.bag_of_frames`, first stage in :mod:`.codebook`): K-means
  codebook of feature frames, codeword histograms, an MLP. Checkpoint kind
  ``"bag_of_frames"``.
- ``embedding_svm`` (:mod:`.embedding`, second stage in :mod:`.linear`): frozen network
  embeddings (random or trained weights), mean-pooled per track, a linear classifier
  (logistic regression or linear SVM). Checkpoint kind ``"embedding_classifier"``.
- ``embedding_lstm`` (:mod:`.sequence`): the same frozen network's embeddings of a track's
  windows (at most ``train.max_windows``, the middle block) as a sequence, summarised by the
  ``lstm`` architecture and its MLP. Checkpoint kind ``"embedding_sequence"``.

:mod:`.common` reads a split's tracks from the shard stores and writes the trainers' files.

Their trainers take the keyword arguments of :func:`pipeline.train.train_model` and write the
same files (``checkpoint.pt``, ``history.csv``, ``train_summary.json``) with the same summary
keys; :data:`TWO_STAGE_TRAINERS` maps the architecture names of ``config.yaml`` to them.
Importing this package registers their tagger kinds with :func:`pipeline.tagger.register_tagger`,
so :func:`pipeline.tagger.load_tagger` reads their checkpoints (it imports this package).
The taggers give their own song prediction (``aggregation="model"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.twostage.bag_of_frames import (
    BagOfFramesConfig,
    BagOfFramesTagger,
    train_bag_of_frames,
)
from pipeline.twostage.embedding import (
    EmbeddingClassifierConfig,
    EmbeddingClassifierTagger,
    train_embedding_classifier,
)
from pipeline.twostage.linear import CLASSIFIERS
from pipeline.twostage.sequence import (
    EmbeddingSequenceConfig,
    EmbeddingSequenceTagger,
    train_embedding_sequence,
)

__all__ = [
    "CLASSIFIERS",
    "TWO_STAGE_TRAINERS",
    "BagOfFramesConfig",
    "BagOfFramesTagger",
    "EmbeddingClassifierConfig",
    "EmbeddingClassifierTagger",
    "EmbeddingSequenceConfig",
    "EmbeddingSequenceTagger",
    "train_bag_of_frames",
    "train_embedding_classifier",
    "train_embedding_sequence",
]

#: Architecture name -> trainer with the signature of :func:`pipeline.train.train_model`.
TWO_STAGE_TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    "bag_of_frames": train_bag_of_frames,
    "embedding_svm": train_embedding_classifier,
    "embedding_lstm": train_embedding_sequence,
}
