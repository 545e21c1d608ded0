#!/usr/bin/env python
"""Embedding throughput of the encoder feature kind: windows per second and peak memory of
:class:`pipeline.features.encoder.EncoderExtractor` on random-weight HuBERT-style models
(the MERT architecture) saved to a temporary directory and loaded through the same offline
path as real weights (:func:`pipeline.io.pretrained.load_encoder`). Nothing is downloaded.

Configs (``--configs``):

* ``tiny``: 2 transformer layers, 64 wide, MERT's convolutional front end (7 layers, 320x
  down-sampling: 75 frames/s at 24 kHz).
* ``mert95m``: MERT-v1-95M's size (12 layers, 768 wide, 3072 feed-forward).
* ``mert330m``: MERT-v1-330M's size (24 layers, 1024 wide, 4096 feed-forward).

Each config runs in a child process (so its peak resident memory is its own) on
``--windows`` windows of 29.1 s at 24 kHz, in 5 s chunks (6 per window), ``--batch``
chunks per forward pass, all hidden states kept, mean pooling. Reported: windows/s and
chunks/s (best of ``--repeats``, after one warm-up call), peak RSS of the process (CPU) or
``torch.cuda.max_memory_allocated`` (GPU), and the hours it would take to embed the 25,863
MagnaTagATune clips at that rate.

Usage::

    .venv/bin/python benchmarks/encoder_throughput.py                         # tiny, CPU
    .venv/bin/python benchmarks/encoder_throughput.py --configs tiny mert95m --windows 2
    .venv/bin/python benchmarks/encoder_throughput.py --device cuda --configs mert95m mert330m
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RATE = 24000
LENGTH_S = 29.1
MTAT_CLIPS = 25863

#: Config name -> HubertConfig arguments (the rest are HuBERT-base defaults: conv front end
#: of 7 layers with 512 channels, strides 5,2,2,2,2,2,2).
CONFIGS: dict[str, dict] = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "conv_dim": (32,) * 7,
    },
    "mert95m": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "mert330m": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "do_stable_layer_norm": True,
        "feat_extract_norm": "layer",
    },
}


def _save_model(config: str, folder: Path) -> Path:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    HubertModel(HubertConfig(**CONFIGS[config])).eval().save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"sampling_rate": RATE, "do_normalize": True})
    )
    return folder


def measure(config: str, *, windows: int, batch: int, repeats: int, device: str) -> dict:
    """One config in this process: throughput and peak memory."""
    from pipeline.features.encoder import EncoderExtractor
    from pipeline.features.settings import FeatureSettings

    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _save_model(config, Path(tmp) / config)
        settings = FeatureSettings.from_dict(
            {
                "kind": "encoder",
                "sample_rate": RATE,
                "encoder": {"model": str(model_dir), "chunk_s": 5.0, "batch_size": batch},
                "window": {"length_s": LENGTH_S, "hop_s": LENGTH_S},
            },
            name=config,
        )
        extractor = EncoderExtractor(settings, device=device)
        audio = 0.1 * np.random.default_rng(0).standard_normal((windows, settings.window.length))
        audio = audio.astype(np.float32)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        extractor(audio[:1])  # warm-up
        best = float("inf")
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            out = extractor(audio)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
        n_chunks = len(audio) * -(-settings.window.length // extractor.chunk)
        params = sum(p.numel() for p in extractor.encoder.model.parameters())
    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    rate = len(audio) / best
    return {
        "config": config,
        "params_m": round(params / 1e6, 1),
        "device": device,
        "threads": torch.get_num_threads(),
        "batch_chunks": batch,
        "windows": len(audio),
        "output": list(out.shape[1:]),
        "windows_per_s": round(rate, 3),
        "chunks_per_s": round(n_chunks / best, 2),
        "peak_mb": round(peak_mb),
        "mtat_hours": round(MTAT_CLIPS / rate / 3600, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny"], choices=sorted(CONFIGS))
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--batch", type=int, default=6, help="chunks per forward pass")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one config
    args = parser.parse_args()
    options = {
        "windows": args.windows,
        "batch": args.batch,
        "repeats": args.repeats,
        "device": args.device,
    }
    if args.one:
        print(json.dumps(measure(args.one, **options)))
        return
    rows = []
    for config in args.configs:
        cmd = [sys.executable, __file__, "--one", config]
        for key, value in options.items():
            cmd += [f"--{key}", str(value)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": platform.platform(), "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
