"""End-to-end training of a window or sequence network (the ``train_model`` job of every
architecture of :data:`pipeline.models.ARCHITECTURES`).

:func:`train_model` reads windows (or whole tracks) from the shard stores, trains with Adam,
warm-up and cosine decay and masked BCE in :func:`pipeline.training.loop.fit`, validates on
the valid split at the song level after every epoch, keeps the best epoch, stops early, and
resumes after a crash. It writes to ``out_dir``:

- ``checkpoint.pt``: the best epoch (:mod:`pipeline.io.checkpoint` format), chosen on the valid
  split's macro ROC-AUC at the song level (window probabilities averaged over a track).
- ``history.csv``: one row per epoch (``epoch, train_loss, valid_loss, valid_roc_auc,
  valid_pr_auc, lr, seconds``).
- ``train_summary.json``: parameters, time, best epoch, device, selection criterion.
- ``last.pt``: the full training state after each epoch (weights, optimizer, grad scaler,
  torch's random state (dropout), history, best weights so far; the order of the training
  items and their crops are functions of ``(seed, epoch)``, see
  :class:`pipeline.training.loaders.EpochShuffler`). A new call with the same settings
  resumes after the last finished epoch; with more ``epochs`` it continues training (the
  cosine schedule then stretches to the new length from that epoch on). On the CPU an
  interrupted and resumed run ends with exactly the weights of an uninterrupted one.
  ``last.pt`` must not be a declared Snakemake output (Snakemake deletes outputs before a
  job runs).

The same code runs on the CPU and on CUDA (``torch.autocast`` float16 + ``GradScaler``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.settings import FeatureSettings
from pipeline.inference.network import sequence_steps, window_logits
from pipeline.io.checkpoint import network_checkpoint, save_checkpoint, save_torch
from pipeline.io.device import torch_device
from pipeline.io.files import write_json
from pipeline.models import ARCHITECTURES, build_model
from pipeline.models.layers import TaggerNetwork
from pipeline.numeric import json_float
from pipeline.training.config import RESUMABLE, TrainConfig, masked_bce, selection_text
from pipeline.training.loaders import (
    EpochShuffler,
    TrackSequenceDataset,
    WindowDataset,
    collate_sequences,
    label_budget_summary,
    seed_worker,
    window_loader,
)
from pipeline.training.loop import Best, LoopState, cosine_schedule, fit, tensorboard_dir

__all__ = ["train_model"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class _Data:
    """The datasets and loaders of one run."""

    train: WindowDataset | TrackSequenceDataset
    valid: WindowDataset | TrackSequenceDataset
    train_loader: DataLoader
    valid_loader: DataLoader
    sampler: EpochShuffler


def _make_data(
    *,
    input_kind: str,
    cfg: TrainConfig,
    index: pd.DataFrame,
    stats: Mapping[str, Any],
    tags: Sequence[str],
    pin_memory: bool,
) -> _Data:
    common: dict[str, Any] = {"index": index, "stats": stats, "tags": tags, "seed": cfg.seed}
    train: WindowDataset | TrackSequenceDataset
    valid: WindowDataset | TrackSequenceDataset
    if input_kind == "sequence":
        if cfg.crop_frames is not None:
            raise ConfigError(
                f"train.crop_frames: {cfg.crop_frames!r} applies to window models only; "
                "sequence models take whole tracks (set it to null)"
            )
        seq: dict[str, Any] = {"pool_frames": cfg.pool_frames, "max_windows": cfg.max_windows}
        train = TrackSequenceDataset(
            **common,
            **seq,
            split="train",
            train=True,
            label_fraction=cfg.label_fraction,
            tag_label_fraction=cfg.tag_label_fraction,
        )
        valid = TrackSequenceDataset(**common, **seq, split="valid", train=False)
    else:
        # raw: float16 windows cross from the workers; normalised on the device (prepare)
        train = WindowDataset(
            **common,
            split="train",
            crop_frames=cfg.crop_frames,
            train=True,
            label_fraction=cfg.label_fraction,
            tag_label_fraction=cfg.tag_label_fraction,
            raw=True,
        )
        valid = WindowDataset(**common, split="valid", train=False, raw=True)
    # The order of an epoch is a function of (seed, epoch) and the crops of (seed, epoch,
    # item), so results do not depend on num_workers and a resumed run repeats them exactly.
    # The loaders' generators only seed the workers' torch, numpy and random generators.
    sampler = EpochShuffler(len(train), seed=cfg.seed)
    # A last batch of one example breaks batch norm on pooled vectors; drop a short tail
    # (a different one each epoch, as the order is shuffled) unless it is all there is.
    drop_last = len(train) > cfg.batch_size and len(train) % cfg.batch_size == 1
    train_loader: DataLoader
    valid_loader: DataLoader
    if isinstance(train, WindowDataset) and isinstance(valid, WindowDataset):
        # Whole batches read in the workers, float16 in reused shared buffers (loaders.py);
        # the same batches as a DataLoader over the items with this sampler.
        batches: dict[str, Any] = {
            "batch_size": cfg.batch_size,
            "num_workers": cfg.num_workers,
            "pin_memory": pin_memory,
        }
        train_loader = window_loader(
            train, sampler=sampler, drop_last=drop_last, seed=cfg.seed, **batches
        )
        valid_loader = window_loader(valid, seed=cfg.seed + 1, **batches)
        return _Data(train, valid, train_loader, valid_loader, sampler)
    loader_args: dict[str, Any] = {
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "worker_init_fn": seed_worker,
        "pin_memory": pin_memory,
        "collate_fn": collate_sequences,
    }
    if cfg.num_workers > 0:
        # Persistent workers: starting them costs more than a small epoch takes to load.
        loader_args.update(prefetch_factor=4, persistent_workers=True)
    train_loader = DataLoader(
        train,
        sampler=sampler,
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=drop_last,
        **loader_args,
    )
    valid_loader = DataLoader(
        valid, shuffle=False, generator=torch.Generator().manual_seed(cfg.seed + 1), **loader_args
    )
    return _Data(train, valid, train_loader, valid_loader, sampler)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _song_probabilities(
    model: TaggerNetwork, data: _Data, *, cfg: TrainConfig, device: torch.device, amp: bool
) -> np.ndarray:
    """Song-level probabilities of the valid tracks, shape (n_tracks, n_tags)."""
    model.eval()
    valid = data.valid
    outputs = []
    with torch.no_grad():
        if isinstance(valid, TrackSequenceDataset):
            for x, _, _, lengths in data.valid_loader:
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    logits = model(x.to(device, non_blocking=True), lengths)
                outputs.append(torch.sigmoid(logits.float()).cpu())
            return torch.cat(outputs).numpy()
        done = 0
        for x, _, _, n_audio in data.valid_loader:
            logits = window_logits(
                model,
                valid.prepare(x, n_audio, device=device),
                valid_frames=valid.valid_frames[done : done + len(x)],
                crop_frames=cfg.crop_frames,
                eval_chunks=cfg.eval_chunks,
                batch_size=cfg.batch_size,
                amp=amp,
            )
            outputs.append(torch.sigmoid(logits.double()).cpu())
            done += len(x)
    window_probs = torch.cat(outputs).numpy()  # (n_windows, n_tags)
    sums = np.zeros((len(valid.tracks), window_probs.shape[1]))
    np.add.at(sums, valid.item_track, window_probs)
    counts = np.bincount(valid.item_track, minlength=len(valid.tracks))
    return sums / counts[:, None]


def _validate(
    model: TaggerNetwork, data: _Data, *, cfg: TrainConfig, device: torch.device, amp: bool
) -> dict[str, float]:
    probs = _song_probabilities(model, data, cfg=cfg, device=device, amp=amp)
    labels = data.valid.labels
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped))
    roc, pr, _ = macro_auc(labels, probs, method="sklearn")
    return {"valid_loss": float(loss), "valid_roc_auc": roc, "valid_pr_auc": pr}


def _input_kind(architecture: str) -> str:
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture {architecture!r} is not one of {sorted(ARCHITECTURES)}")
    return str(ARCHITECTURES[architecture].module.input_kind)


def _fingerprint(
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    cfg: TrainConfig,
    tags: Sequence[str],
    features: Mapping[str, Any],
    stats: Mapping[str, Any],
    train_ids: Sequence[str],
) -> str:
    """What must not change for ``last.pt`` to be resumed: a hash of the run's settings."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE}
    payload = {
        "architecture": architecture,
        "hparams": dict(hparams),
        "train": settings,
        "tags": list(tags),
        "features": dict(features),
        "mean": [float(v) for v in stats["mean"]],
        "std": [float(v) for v in stats["std"]],
        "train_tracks": sorted(str(t) for t in train_ids),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _save_state(state: dict[str, Any], path: Path) -> None:
    """Write ``last.pt`` (a separate function so tests can interrupt a run right after it)."""
    save_torch(state, path)


def _load_state(path: Path, *, fingerprint: str, epochs: int) -> dict[str, Any] | None:
    """``last.pt`` when it belongs to this run and can be continued, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (a torn or foreign file: start afresh)
        log.warning("%s is not readable (%s): training from scratch", path, exc)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        log.warning("%s belongs to other settings: training from scratch", path)
        return None
    if state["epoch"] > epochs:
        log.warning(
            "%s has %d epochs, more than the %d asked for: training from scratch",
            path,
            state["epoch"],
            epochs,
        )
        return None
    return state


def train_model(
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    train_config: TrainConfig,
    index: pd.DataFrame,
    stats: Mapping[str, Any],
    tags: Sequence[str],
    features: Mapping[str, Any],
    out_dir: Path,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one tagger and write its checkpoint, history and summary (module docstring).

    Parameters
    ----------
    architecture : str
        A key of :data:`pipeline.models.ARCHITECTURES`.
    hparams : mapping
        The architecture's hyper-parameters.
    train_config : TrainConfig
    index : pd.DataFrame
        The feature set's ``index.parquet`` (train and valid splits are used).
    stats : mapping
        The feature set's ``stats.json`` (per-band ``mean`` and ``std``, train split).
    tags : sequence of str
        The vocabulary (``vocabulary.json["tags"]``), in output order.
    features : mapping
        ``FeatureSettings.to_dict()`` of the feature set (a store's ``attrs["features"]``);
        must equal the stores' own settings.
    out_dir : Path
        Where the files go (created).
    device : str, optional
        Torch device; None: CUDA when available, else the CPU.
    progress : bool
        Show a tqdm progress bar per epoch.

    Returns
    -------
    dict
        ``architecture, params, train_time_s, best_epoch, best_valid_roc_auc,
        best_valid_pr_auc, epochs_run, stopped_early, device, amp, selection`` and the label
        budget (``n_train_tracks, n_train_labels, ...``); also written as
        ``train_summary.json``. ``train_time_s`` sums the epochs' seconds (training and
        validation) over all calls of a resumed run.
    """
    cfg = train_config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch_device(device)
    amp = dev.type == "cuda"
    input_kind = _input_kind(architecture)

    data = _make_data(
        input_kind=input_kind, cfg=cfg, index=index, stats=stats, tags=tags, pin_memory=amp
    )
    settings = FeatureSettings.from_dict(features)
    if settings != data.train.features:
        raise PipelineError(
            f"the feature settings given ({settings.to_dict()!r}) differ from those of the "
            f"stores ({data.train.features.to_dict()!r})"
        )
    n_bins, n_frames = data.train.n_bins, data.train.n_frames
    if input_kind == "sequence":
        model_frames = sequence_steps(
            n_frames=n_frames, pool_frames=cfg.pool_frames, max_windows=cfg.max_windows
        )
    else:
        model_frames = cfg.crop_frames or n_frames

    torch.manual_seed(cfg.seed)
    model = build_model(
        architecture, n_tags=len(tags), n_bins=n_bins, n_frames=model_frames, hparams=hparams
    ).to(dev)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)

    steps_per_epoch = len(data.train_loader)

    fingerprint = _fingerprint(
        architecture=architecture,
        hparams=hparams,
        cfg=cfg,
        tags=tags,
        features=settings.to_dict(),
        stats=stats,
        train_ids=list(data.train.tracks["track_id"]),
    )
    write_best = functools.partial(
        _write_checkpoint,
        out_dir / "checkpoint.pt",
        architecture=architecture,
        hparams=hparams,
        cfg=cfg,
        tags=tags,
        settings=settings,
        stats=stats,
        input_kind=input_kind,
    )
    last_path = out_dir / "last.pt"
    loop = LoopState()
    state = _load_state(last_path, fingerprint=fingerprint, epochs=cfg.epochs)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if amp and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        loop = LoopState(
            epoch=state["epoch"],
            step=state["step"],
            bad_epochs=state["bad_epochs"],
            history=list(state["history"]),
            best=_best_from_record(state["best"]),
        )
        log.info("resuming %s after epoch %d from %s", architecture, loop.epoch, last_path)

    log.info(
        "training %s (%d parameters) on %s: %d train / %d valid items, %d steps per epoch",
        architecture,
        n_params,
        dev,
        len(data.train),
        len(data.valid),
        steps_per_epoch,
    )

    def batches(epoch: int) -> DataLoader:
        # The order of an epoch and its crops are functions of (seed, epoch).
        data.train.set_epoch(epoch)
        data.sampler.set_epoch(epoch)
        return data.train_loader

    def batch_loss(batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, float]:
        # window batches: (x float16, y, mask, n_audio); sequences: (x, y, mask, lengths)
        x, y, mask, extra = batch
        lengths = None
        if isinstance(data.train, WindowDataset):
            x = data.train.prepare(x, extra, device=dev)  # (B, n_bins, frames), normalised
        else:
            lengths = extra
            x = x.to(dev, non_blocking=True)  # (B, time, n_bins)
        y, mask = y.to(dev, non_blocking=True), mask.to(dev, non_blocking=True)
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=amp):
            logits = model(x, lengths)  # (B, n_tags)
        return masked_bce(logits, y, mask), float(mask.sum())

    def end_epoch(run: LoopState) -> None:
        _write_history(run.history, out_dir)
        _save_state(
            {
                "fingerprint": fingerprint,
                "epoch": run.epoch,
                "step": run.step,
                "bad_epochs": run.bad_epochs,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if amp else [],
                "history": run.history,
                "best": _best_record(run.best),
            },
            last_path,
        )

    loop = fit(
        model=model,
        optimizer=optimizer,
        epochs=cfg.epochs,
        batches=batches,
        batch_loss=batch_loss,
        validate=lambda epoch: _validate(model, data, cfg=cfg, device=dev, amp=amp),
        monitor="valid_roc_auc",
        patience=cfg.patience,
        schedule=cosine_schedule(cfg=cfg, steps_per_epoch=steps_per_epoch),
        scaler=scaler,
        state=loop,
        on_best=lambda best: write_best(best=best),
        on_epoch_end=end_epoch,
        name=architecture,
        progress=progress,
        tensorboard_dir=tensorboard_dir(cfg=cfg, out_dir=out_dir),
    )
    best, history = loop.best, loop.history
    if best is None:
        raise PipelineError(f"{architecture}: no epoch was trained (epochs={cfg.epochs})")
    # Rewrite the best checkpoint: it may be missing after a resumed run (Snakemake removes
    # a failed job's outputs), and its content is fully determined by ``best``.
    write_best(best=best)
    _write_history(history, out_dir)
    budget = label_budget_summary(data.train)
    summary = {
        "architecture": architecture,
        "params": n_params,
        "train_time_s": float(sum(r["seconds"] for r in history)),
        "best_epoch": int(best.epoch),
        "best_valid_roc_auc": json_float(best.value),
        "best_valid_pr_auc": json_float(best.metrics["valid_pr_auc"]),
        "epochs_run": len(history),
        "stopped_early": bool(loop.bad_epochs >= cfg.patience and len(history) < cfg.epochs),
        "device": str(dev),
        "amp": amp,
        "selection": selection_text(input_kind),
        "n_train_items": len(data.train),
        "n_train_tracks": budget["n_tracks"],
        "n_train_labels": budget["n_labels"],
        "n_train_positive_labels": budget["n_positive_labels"],
        "label_fraction": cfg.label_fraction,
        "tag_label_fraction": cfg.tag_label_fraction,
    }
    write_json(summary, out_dir / "train_summary.json")
    return summary


def _write_history(history: Sequence[Mapping[str, float]], out_dir: Path) -> None:
    pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(out_dir / "history.csv", index=False)


def _best_record(best: Best | None) -> dict[str, Any]:
    """The best epoch as ``last.pt`` stores it (``epoch, value, pr_auc, state_dict``)."""
    if best is None:
        return {"epoch": 0, "value": None, "pr_auc": math.nan, "state_dict": None}
    return {
        "epoch": best.epoch,
        "value": best.value,
        "pr_auc": best.metrics["valid_pr_auc"],
        "state_dict": best.state_dict,
    }


def _best_from_record(record: Mapping[str, Any]) -> Best | None:
    """:func:`_best_record` read back."""
    if record["state_dict"] is None:
        return None
    return Best(
        epoch=int(record["epoch"]),
        value=record["value"],
        metrics={"valid_roc_auc": record["value"], "valid_pr_auc": record["pr_auc"]},
        state_dict=record["state_dict"],
    )


def _write_checkpoint(
    path: Path,
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    cfg: TrainConfig,
    tags: Sequence[str],
    settings: FeatureSettings,
    stats: Mapping[str, Any],
    input_kind: str,
    best: Best,
) -> None:
    checkpoint = network_checkpoint(
        architecture=architecture,
        hparams=hparams,
        train_config=cfg.to_dict(),
        tags=tags,
        features=settings.to_dict(),
        stats=stats,
        input_kind=input_kind,
        crop_frames=cfg.crop_frames if input_kind == "window" else None,
        pool_frames=cfg.pool_frames,
        eval_chunks=cfg.eval_chunks,
        max_windows=cfg.max_windows,
        state_dict=best.state_dict,
        selection={
            "criterion": selection_text(input_kind),
            "epoch": int(best.epoch),
            "value": best.value,
        },
    )
    save_checkpoint(checkpoint, path)
