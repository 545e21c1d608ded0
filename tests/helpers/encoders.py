"""Tiny random-weight pretrained encoders saved to a directory, loaded through the same
local-path code as real ones (:mod:`pipeline.io.pretrained`): a small CLAP (``ClapModel``,
its feature extractor and a word-level tokenizer) and a small HuBERT-style model (the MERT
path). Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: Sample rate of the tiny encoders (small, so tests stay fast).
TINY_RATE = 8000

_WORDS = (
    "this is a recording of music . rock jazz pop drums guitar piano voice beat calm fast "
    "slow loud quiet tag_a tag_b tag_c tag_d"
).split()


def tiny_clap(path: Path, *, seed: int = 0, licence: str | None = "apache-2.0") -> Path:
    """A random-weight CLAP model (16-dimensional projection, 2 s inputs at 8 kHz) in ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    audio = {
        "window_size": 4,
        "num_mel_bins": 16,
        "spec_size": 64,
        "patch_size": 4,
        "patch_stride": (4, 4),
        "hidden_size": 32,
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "patch_embeds_hidden_size": 16,
        "projection_dim": 16,
        "enable_fusion": False,
    }
    text = {
        "vocab_size": 64,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 40,
        "projection_dim": 16,
    }
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16))
    model.eval().save_pretrained(path)
    ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=TINY_RATE,
        max_length_s=2,
        fft_window_size=512,
        hop_length=128,
        truncation="rand_trunc",
        padding="repeatpad",
    ).save_pretrained(path)
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *_WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    ).save_pretrained(path)
    _model_card(path, licence)
    return path


def tiny_hubert(
    path: Path, *, seed: int = 0, layers: int = 3, licence: str | None = "cc-by-nc-4.0"
) -> Path:
    """A random-weight HuBERT-style model (32 wide, ``layers`` transformer layers, 8 kHz
    input standardised as MERT's feature extractor does) in ``path``."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        conv_pos_batch_norm=False,
    )
    HubertModel(config).eval().save_pretrained(path)
    (Path(path) / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "feature_extractor_type": "Wav2Vec2FeatureExtractor",
                "sampling_rate": TINY_RATE,
                "do_normalize": True,
                "feature_size": 1,
                "padding_value": 0.0,
                "return_attention_mask": True,
            }
        )
    )
    _model_card(path, licence)
    return path


def _model_card(path: Path, licence: str | None) -> None:
    if licence is not None:
        (Path(path) / "README.md").write_text(f"---\nlicense: {licence}\n---\n# tiny test model\n")


def encoder_features(
    model_dir: Path,
    *,
    name: str = "enc",
    length_s: float = 2.0,
    chunk_s: float = 1.0,
    layers: list[int] | str = "all",
    pooling: str = "mean",
    batch_size: int = 4,
) -> dict:
    """A ``kind: encoder`` feature-set config entry for a tiny model."""
    return {
        "kind": "encoder",
        "sample_rate": TINY_RATE,
        "encoder": {
            "model": str(model_dir),
            "layers": layers,
            "pooling": pooling,
            "chunk_s": chunk_s,
            "batch_size": batch_size,
        },
        "window": {
            "length_s": length_s,
            "hop_s": length_s,
            "min_tail_s": 0.5,
            "max_duration_s": 10,
        },
    }


def encoder_dataset(folder: Path, model_dir: Path, *, n_tracks: int = 16, **features) -> dict:
    """Tagged tracks (``low`` tones vs ``high`` tones, half of them also ``noisy``) embedded
    by a tiny encoder into one shard store, with the index, band statistics and vocabulary a
    trainer reads: ``{"index", "stats", "tags", "features", "index_path", "stats_path",
    "vocabulary_path"}``."""
    import numpy as np
    import pandas as pd

    from pipeline.features.extract import extract_shard
    from pipeline.features.index import build_index
    from pipeline.features.settings import FeatureSettings
    from pipeline.features.stats import band_statistics
    from pipeline.io.files import write_json
    from pipeline.io.store import FeatureStore
    from tests.helpers.audio import write_audio

    folder = Path(folder)
    rows, meta = [], []
    splits = ["train", "train", "valid", "train", "test"]  # both classes in valid and test
    for k in range(n_tracks):
        high, noisy = k % 2 == 1, (k // 2) % 2 == 1
        rng = np.random.default_rng(k)
        t = np.arange(int(2.5 * TINY_RATE)) / TINY_RATE
        tone = 0.3 * np.sin(2 * np.pi * (1500.0 if high else 200.0) * t)
        data = tone + (0.2 * rng.standard_normal(t.size) if noisy else 0.0)
        path = write_audio(folder / "audio" / f"t{k}.wav", sample_rate=TINY_RATE, data=data)
        track_tags = ["high" if high else "low", *(["noisy"] if noisy else [])]
        rows.append((f"t{k}", str(path)))
        meta.append({"track_id": f"t{k}", "split": splits[k % 5], "tags": track_tags})
    settings = FeatureSettings.from_dict(
        encoder_features(model_dir, **features), name=features.get("name", "enc")
    )
    store = folder / "0000.zarr"
    extract_shard(
        tracks=pd.DataFrame(rows, columns=["track_id", "path"]),
        settings=settings,
        store_path=store,
        failed_path=folder / "0000.failed.parquet",
    )
    index = build_index(stores=[store], manifest=pd.DataFrame(meta))
    stats = band_statistics(index=index)
    tags = ["high", "low", "noisy"]
    paths = {
        "index_path": folder / "index.parquet",
        "stats_path": folder / "stats.json",
        "vocabulary_path": folder / "vocabulary.json",
    }
    index.to_parquet(paths["index_path"])
    write_json(stats, paths["stats_path"])
    write_json({"tags": tags}, paths["vocabulary_path"])
    return {
        "index": index,
        "stats": stats,
        "tags": tags,
        "features": FeatureStore(store).attrs["features"],
        **paths,
    }
