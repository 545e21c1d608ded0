"""Frozen pretrained encoders as a feature kind (``kind: encoder``): audio windows in,
per-layer embeddings out, shape ``(n_windows, n_layers, dim)``.

Each window (already decoded, mono, at the encoder's own rate) is cut into chunks of
``encoder.chunk_s`` seconds that cover it (the last chunk ends at the window's end, so
all chunks have one length and batch together). The encoder runs on batches of
``encoder.batch_size`` chunks, so memory is bounded by the chunk, whatever the window or
track length. Per chunk and layer the frames' sum and sum of squares are kept; a window's
mean (and standard deviation for ``pooling: mean+std``) is over all frames of its chunks.
A CLAP chunk gives one vector (its projected, normalised audio embedding): the window's
statistics are then over its chunks.

:class:`EncoderExtractor` has the interface of
:class:`pipeline.features.extractors.Extractor` (``settings``, ``shape``, ``n_bins``,
``floor_db``, a call on a batch of windows), so tagging a new file runs it like any other
extractor; its ``settings`` have ``encoder.n_layers`` and ``encoder.dim`` filled in from the
model (what the stores and checkpoints hold).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from pipeline.errors import ConfigError
from pipeline.features.settings import ENCODER_KIND, EncoderSettings, FeatureSettings
from pipeline.io.device import torch_device
from pipeline.io.pretrained import PretrainedEncoder, load_encoder

__all__ = ["EncoderExtractor", "chunk_starts", "select_layers"]


def chunk_starts(*, length: int, chunk: int) -> np.ndarray:
    """Starts of the chunks that cover a window: every ``chunk`` samples, the last one
    moved back to end at the window's end.

    Parameters
    ----------
    length : int
        Window length in samples.
    chunk : int
        Chunk length in samples (at most ``length``).

    Returns
    -------
    np.ndarray, shape (ceil(length / chunk),), int64
    """
    n = max(1, math.ceil(length / chunk))
    starts = np.arange(n, dtype=np.int64) * chunk
    starts[-1] = length - chunk
    return starts


def select_layers(layers: tuple[int, ...] | None, *, n_layers: int, key: str) -> list[int]:
    """Indices of the kept hidden states (None: all; negative values count from the end).

    Raises
    ------
    ConfigError
        An index outside ``-n_layers .. n_layers - 1``, or the same layer twice.
    """
    if layers is None:
        return list(range(n_layers))
    out = []
    for layer in layers:
        if not -n_layers <= layer < n_layers:
            raise ConfigError(
                f"{key}.layers: {layer} is not a layer of this model (it has {n_layers}: "
                f"0..{n_layers - 1}, or negative from the end)"
            )
        out.append(layer % n_layers)
    if len(set(out)) != len(out):
        raise ConfigError(f"{key}.layers: {list(layers)} names a layer twice")
    return out


class EncoderExtractor:
    """Per-layer embeddings of audio windows by a frozen pretrained encoder.

    Parameters
    ----------
    settings : FeatureSettings
        ``kind="encoder"``; its window's ``sample_rate`` must be the encoder's.
    device : str, optional
        Torch device; None: CUDA when available, else the CPU.
    encoder : PretrainedEncoder, optional
        An already loaded encoder (else loaded from ``settings.encoder``).

    Raises
    ------
    ConfigError
        Wrong kind, a sample rate the encoder does not take, layers it does not have, or
        settings that name other dimensions than the model has (a checkpoint of another
        model).
    PipelineError
        The weights are not available offline (one line with the download command).
    """

    floor_db = 0.0  # zero padding of stored windows means "no embedding"

    def __init__(
        self,
        settings: FeatureSettings,
        *,
        device: str | None = None,
        encoder: PretrainedEncoder | None = None,
    ) -> None:
        key = f"features.{settings.name}"
        if settings.kind != ENCODER_KIND or settings.encoder is None:
            raise ConfigError(f"{key}: kind {settings.kind!r} is not an encoder feature set")
        enc: EncoderSettings = settings.encoder
        self.encoder = encoder or load_encoder(
            model=enc.model, revision=enc.revision, device=torch_device(device)
        )
        if settings.sample_rate != self.encoder.sample_rate:
            raise ConfigError(
                f"{key}.sample_rate: {settings.sample_rate} Hz, but {enc.model!r} takes "
                f"{self.encoder.sample_rate} Hz audio; set sample_rate: {self.encoder.sample_rate}"
            )
        self.layers = select_layers(
            enc.layers, n_layers=self.encoder.n_layers, key=key + ".encoder"
        )
        width = self.encoder.dim * (2 if enc.pooling == "mean+std" else 1)
        for name, have, want in (
            ("n_layers", enc.n_layers, len(self.layers)),
            ("dim", enc.dim, width),
        ):
            if have and have != want:
                raise ConfigError(
                    f"{key}.encoder.{name}: {have}, but {enc.model!r} with these settings gives "
                    f"{want}"
                )
        self.chunk = min(round(enc.chunk_s * settings.sample_rate), settings.window.length)
        resolved = dataclasses.replace(
            enc,
            n_layers=len(self.layers),
            dim=width,
            licence=enc.licence or self.encoder.licence,
        )
        self.settings = dataclasses.replace(settings, encoder=resolved)

    @property
    def n_bins(self) -> int:
        """Rows of one stored window: the kept layers."""
        return len(self.layers)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one stored window, ``(n_layers, dim)``."""
        assert self.settings.encoder is not None
        return self.n_bins, self.settings.encoder.dim

    def _chunk_moments(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Per-layer sum and sum of squares over the frames of each chunk.

        Parameters
        ----------
        chunks : Tensor, shape (batch, chunk_samples), float32, on the CPU

        Returns
        -------
        total, squares : Tensor, shape (batch, n_layers, dim), float64, on the CPU
        frames : int
            Frames per chunk.
        """
        enc = self.encoder
        with torch.inference_mode():
            if enc.family == "clap":
                inputs = enc.feature_extractor(
                    list(chunks.numpy()), sampling_rate=enc.sample_rate, return_tensors="pt"
                )
                out = enc.model.get_audio_features(
                    input_features=inputs["input_features"].to(enc.device),
                    is_longer=inputs["is_longer"].to(enc.device),
                ).pooler_output  # (batch, dim), L2-normalised
                x = out.double()[:, None, :].cpu()  # (batch, 1, dim)
                return x, x * x, 1
            x = chunks.to(enc.device)
            if enc.normalize:  # as Wav2Vec2FeatureExtractor(do_normalize=True), per input
                mean = x.mean(dim=1, keepdim=True)
                var = x.var(dim=1, keepdim=True, unbiased=False)
                x = (x - mean) / torch.sqrt(var + 1e-7)
            hidden = enc.model(input_values=x, output_hidden_states=True).hidden_states
            kept = torch.stack([hidden[i] for i in self.layers], dim=1).double()  # (B, L, T, D)
            return kept.sum(dim=2).cpu(), kept.square().sum(dim=2).cpu(), int(kept.shape[2])

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of windows.

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_samples), float32
            Mono windows at the encoder's sample rate.

        Returns
        -------
        np.ndarray, shape (n_windows, n_layers, dim), float32
            The mean over time of each kept layer (``mean+std``: then its standard deviation).
        """
        windows = np.asarray(windows, dtype=np.float32)
        n, length = windows.shape
        starts = chunk_starts(length=length, chunk=self.chunk)
        frames = torch.from_numpy(np.ascontiguousarray(windows)).unfold(1, self.chunk, 1)
        chunks = frames[:, torch.from_numpy(starts)].reshape(-1, self.chunk)  # (n * C, chunk)
        batch = self.settings.encoder.batch_size if self.settings.encoder else 8
        totals, squares, count = [], [], 0
        for i in range(0, len(chunks), batch):
            total, square, per_chunk = self._chunk_moments(chunks[i : i + batch].contiguous())
            totals.append(total)
            squares.append(square)
            count = per_chunk
        n_chunks = len(starts)
        total = torch.cat(totals).reshape(n, n_chunks, *totals[0].shape[1:]).sum(dim=1)
        square = torch.cat(squares).reshape(n, n_chunks, *squares[0].shape[1:]).sum(dim=1)
        frames_total = count * n_chunks
        mean = total / frames_total  # (n, L, D)
        parts = [mean]
        assert self.settings.encoder is not None
        if self.settings.encoder.pooling == "mean+std":
            parts.append(torch.sqrt(torch.clamp_min(square / frames_total - mean * mean, 0.0)))
        return torch.cat(parts, dim=-1).float().numpy()
