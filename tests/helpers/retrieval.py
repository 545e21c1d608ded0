"""Synthetic tracks for the retrieval tests: tag sets drawn from a few clusters, with
embeddings in which only a few low-variance dimensions hold the cluster."""

from __future__ import annotations

import numpy as np

__all__ = ["clustered_tracks"]


def clustered_tracks(
    n: int, *, seed: int, n_clusters: int = 6, n_tags: int = 18, signal_scale: float = 0.15
) -> tuple[np.ndarray, list[list[str]]]:
    """Tracks of a few clusters: ~6 tags from the cluster's profile, D=32 embeddings.

    Dimensions 0-3 hold the cluster (low variance, ``signal_scale``); 4-31 are unit-variance
    noise, so raw cosine similarity barely sees the tags. The clusters are the same for every
    ``seed`` (train, valid and test splits share them).
    """
    profile_rng = np.random.default_rng(1234)  # the same clusters for every split
    profiles = [profile_rng.choice(n_tags, size=6, replace=False) for _ in range(n_clusters)]
    centroids = profile_rng.normal(size=(n_clusters, 4))
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, size=n)
    tags = []
    for c in cluster:
        kept = [t for t in profiles[c] if rng.random() < 0.85]
        extra = [t for t in range(n_tags) if t not in profiles[c] and rng.random() < 0.03]
        tags.append([f"tag{t}" for t in sorted(kept + extra)])
    signal = signal_scale * (centroids[cluster] + 0.2 * rng.normal(size=(n, 4)))
    noise = rng.normal(size=(n, 28))
    return np.concatenate([signal, noise], axis=1).astype(np.float32), tags
