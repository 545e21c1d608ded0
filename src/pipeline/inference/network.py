"""The network tagger: a trained network of :mod:`pipeline.models` from a ``kind="network"``
checkpoint, as a :class:`~pipeline.inference.registry.Tagger` (:class:`NetworkTagger`,
registered under ``"network"``), and running a network on normalised windows, which
training's validation shares: :func:`window_logits` (whole windows, or evenly spaced crops
for crop-trained models) and :func:`sequence_steps` (the sequence length a sequence model
is built for).

Inputs are feature windows as stored (raw dB, float16 or float32), shape
``(n_windows, n_bins, n_frames)``, all from one track and in order for the ``*_track``
methods, optionally with ``valid_frames`` (frames of each window that hold audio, see
:func:`pipeline.features.windows.audio_frames`) so that crops and sequences skip the zero
padding of a short track's last window. Other checkpoint kinds live in their own modules;
:func:`pipeline.inference.loading.load_tagger` loads any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import (
    chunk_grid,
    crop_starts,
    hop_frames,
    middle_block,
    normaliser,
    pool_sequence,
)
from pipeline.inference.registry import Tagger, register_tagger
from pipeline.models import build_model
from pipeline.models.layers import TaggerNetwork
from pipeline.numeric import sigmoid

__all__ = ["NetworkTagger", "window_logits", "sequence_steps"]


# --------------------------------------------------------------------------------------------
# Running a network on normalised windows (shared with training's validation)
# --------------------------------------------------------------------------------------------


def _chunked(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, batch: int
) -> torch.Tensor:
    """``fn`` over the first axis of ``x`` in batches, concatenated."""
    return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def window_logits(
    model: TaggerNetwork,
    x: torch.Tensor,
    *,
    valid_frames: np.ndarray | None,
    crop_frames: int | None,
    eval_chunks: int,
    embed: bool = False,
    batch_size: int = 16,
    amp: bool = False,
) -> torch.Tensor:
    """A window model's logits (or embeddings) for whole normalised windows.

    For a model trained on crops, ``eval_chunks`` evenly spaced crops inside each window's
    audio frames are scored and combined (Won et al. 2020 use 16): probabilities are
    averaged, and the window's logit is the logit of that mean (embeddings are averaged).

    Parameters
    ----------
    model : pipeline.models.layers.TaggerNetwork
        A ``"window"`` model, in eval mode.
    x : Tensor, shape (n_windows, n_bins, n_frames)
        Normalised windows, on the model's device.
    valid_frames : np.ndarray, shape (n_windows,), optional
        Frames holding audio; default all.
    crop_frames : int or None
        The model's crop length; None: whole windows.
    eval_chunks : int
        Crops per window.
    embed : bool
        Return ``model.embed`` outputs instead of logits.
    batch_size : int
        Model inputs (windows or crops) per forward pass.
    amp : bool
        CUDA autocast (float16) for the forward passes.

    Returns
    -------
    Tensor, shape (n_windows, n_tags) or (n_windows, embedding_dim), float32
    """
    fn = model.embed if embed else model
    n, n_bins, n_frames = x.shape

    def run(inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, dtype=torch.float16, enabled=amp):
            return fn(inputs).float()

    with torch.no_grad():
        if crop_frames is None or crop_frames >= n_frames:
            return _chunked(run, x, batch=batch_size)
        valid = np.full(n, n_frames) if valid_frames is None else np.asarray(valid_frames)
        starts = torch.as_tensor(
            crop_starts(valid_frames=valid, crop_frames=crop_frames, n_chunks=eval_chunks),
            device=x.device,
        )  # (n, chunks)
        frames = starts[:, :, None] + torch.arange(crop_frames, device=x.device)  # (n, C, crop)
        crops = torch.gather(
            x[:, None].expand(n, eval_chunks, n_bins, n_frames),
            3,
            frames[:, :, None, :].expand(n, eval_chunks, n_bins, crop_frames),
        )  # (n, C, n_bins, crop)
        out = _chunked(run, crops.reshape(n * eval_chunks, n_bins, crop_frames), batch=batch_size)
        out = out.reshape(n, eval_chunks, -1)  # (n, C, D)
        if embed:
            return out.mean(dim=1)
        p = torch.sigmoid(out.double()).mean(dim=1).clamp(1e-15, 1 - 1e-15)  # (n, n_tags)
        return torch.logit(p).float()


def sequence_steps(*, n_frames: int, pool_frames: int, max_windows: int) -> int:
    """Typical sequence length a sequence model is built for (its ``n_frames`` argument)."""
    return max(1, -(-n_frames // pool_frames) * max_windows)


# --------------------------------------------------------------------------------------------
# The network tagger
# --------------------------------------------------------------------------------------------


class NetworkTagger:
    """A trained network from a ``kind="network"`` checkpoint.

    Window models score each window (or ``eval_chunks`` crops of it); sequence models read
    the track's windows (the middle ``max_windows``, as in validation) as one sequence.
    ``predict_windows`` of a sequence model scores each window as a one-window track (a
    taggram), while its song prediction is the model's own summary (``aggregation="model"``).

    Parameters
    ----------
    checkpoint : dict
        From :func:`pipeline.io.checkpoint.load_checkpoint`.
    device : str
    batch_size : int
        Model inputs per forward pass.
    """

    kind: ClassVar[str] = "network"

    def __init__(self, checkpoint: Mapping[str, Any], *, device: str = "cpu", batch_size: int = 16):
        self.checkpoint = checkpoint
        self.tags = list(checkpoint["tags"])
        self.features = FeatureSettings.from_dict(checkpoint["features"])
        self.n_bins = len(checkpoint["stats"]["mean"])
        self.n_frames = self.features.n_frames
        self.input_kind = checkpoint["input_kind"]
        self.crop_frames = checkpoint["crop_frames"]
        self.pool_frames = int(checkpoint["pool_frames"])
        self.eval_chunks = int(checkpoint["eval_chunks"])
        self.max_windows = int(checkpoint["max_windows"])
        self.aggregation = "model" if self.input_kind == "sequence" else "mean"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._mean, self._inv_std = normaliser(checkpoint["stats"], n_bins=self.n_bins)
        if self.input_kind == "sequence":
            model_frames = sequence_steps(
                n_frames=self.n_frames, pool_frames=self.pool_frames, max_windows=self.max_windows
            )
        else:
            model_frames = self.crop_frames or self.n_frames
        self.model = build_model(
            checkpoint["architecture"],
            n_tags=len(self.tags),
            n_bins=self.n_bins,
            n_frames=model_frames,
            hparams=checkpoint["hparams"],
        )
        if getattr(self.model, "input_kind", None) != self.input_kind:
            raise PipelineError(
                f"checkpoint says input_kind {self.input_kind!r} but architecture "
                f"{checkpoint['architecture']!r} takes {self.model.input_kind!r}"
            )
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.to(self.device).eval()

    # -- helpers -------------------------------------------------------------------------------

    def _prepare(
        self, windows: np.ndarray, valid_frames: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Check shapes; normalised float32 windows and valid frames per window."""
        windows = np.asarray(windows)
        if windows.ndim != 3 or windows.shape[1:] != (self.n_bins, self.n_frames):
            raise PipelineError(
                f"windows of shape {windows.shape} are not (n, {self.n_bins}, {self.n_frames}) "
                f"of feature set {self.features.name!r}"
            )
        if len(windows) == 0:
            raise PipelineError("no windows to tag (shape (0, ...))")
        if valid_frames is None:
            valid = np.full(len(windows), self.n_frames, dtype=np.int64)
        else:
            valid = np.clip(np.asarray(valid_frames, dtype=np.int64), 1, self.n_frames)
            if valid.shape != (len(windows),):
                raise PipelineError(
                    f"valid_frames of shape {valid.shape} does not match {len(windows)} windows"
                )
        x = (windows.astype(np.float32) - self._mean) * self._inv_std  # (n, n_bins, n_frames)
        if valid_frames is not None:  # end padding -> the band mean, as in training
            padding = np.arange(self.n_frames)[None, :] >= valid[:, None]  # (n, n_frames)
            x *= ~padding[:, None, :]
        return x, valid

    def _window_outputs(
        self, windows: np.ndarray, valid_frames: np.ndarray | None, *, embed: bool
    ) -> np.ndarray:
        x, valid = self._prepare(windows, valid_frames)
        if self.input_kind == "sequence":
            seqs = [
                pool_sequence(
                    w[None],
                    valid_frames=v[None],
                    hop_frames=self.n_frames,
                    pool_frames=self.pool_frames,
                )
                for w, v in zip(x, valid, strict=True)
            ]
            return np.concatenate(
                [
                    self._run_sequences(seqs[i : i + self.batch_size], embed=embed)
                    for i in range(0, len(seqs), self.batch_size)
                ]
            )
        out = window_logits(
            self.model,
            torch.from_numpy(x).to(self.device),
            valid_frames=valid,
            crop_frames=self.crop_frames,
            eval_chunks=self.eval_chunks,
            embed=embed,
            batch_size=self.batch_size,
        )
        return out.cpu().numpy()

    def _run_sequences(self, seqs: list[np.ndarray], *, embed: bool) -> np.ndarray:
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first=True)
        fn = self.model.embed if embed else self.model
        with torch.no_grad():
            return fn(x.to(self.device), lengths).float().cpu().numpy()

    def _track_sequence(self, windows: np.ndarray, valid_frames: np.ndarray | None) -> np.ndarray:
        x, valid = self._prepare(windows, valid_frames)
        lo, hi = middle_block(len(x), max_windows=self.max_windows)  # as in validation
        x, valid = x[lo:hi], valid[lo:hi]
        return pool_sequence(
            x,
            valid_frames=valid,
            hop_frames=hop_frames(self.features),
            pool_frames=self.pool_frames,
        )  # (time, n_bins)

    # -- the Tagger interface ------------------------------------------------------------------

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits per window.

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_bins, n_frames)
            Stored (raw dB) features.
        valid_frames : np.ndarray, shape (n_windows,), optional

        Returns
        -------
        np.ndarray, shape (n_windows, n_tags), float32
            For crop models, the logit of the mean probability over ``eval_chunks`` crops.
        """
        return self._window_outputs(windows, valid_frames, embed=False)

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Window and song probabilities of one track.

        Returns
        -------
        window_probs : np.ndarray, shape (n_windows, n_tags), or None (sequence models)
        song_probs : np.ndarray, shape (n_tags,)
            Mean of the window probabilities, or the sequence model's own prediction.
        """
        if self.input_kind == "sequence":
            logits = self._run_sequences([self._track_sequence(windows, valid_frames)], embed=False)
            return None, sigmoid(logits[0])
        probs = sigmoid(self.predict_windows(windows, valid_frames=valid_frames))
        return probs, probs.mean(axis=0)

    @property
    def chunk_frames(self) -> int | None:
        """The model's own time resolution in frames: the crop length of a window model
        trained on crops shorter than a window; None when it scores whole windows only."""
        if self.input_kind != "window" or not self.crop_frames:
            return None
        return int(self.crop_frames) if self.crop_frames < self.n_frames else None

    def predict_chunks(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits of consecutive chunks of ``chunk_frames`` (the taggram at the model's
        resolution; :func:`pipeline.features.windows.chunk_grid` places them).

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_bins, n_frames)
            Stored (raw dB) features.
        valid_frames : np.ndarray, shape (n_windows,), optional

        Returns
        -------
        logits : np.ndarray, shape (n_chunks, n_tags), float32
        window : np.ndarray, shape (n_chunks,), int64
            The window of each chunk.
        start_frame : np.ndarray, shape (n_chunks,), int64
            The chunk's first frame in its window.

        Raises
        ------
        PipelineError
            The model has no resolution finer than a window (``chunk_frames`` is None).
        """
        chunk = self.chunk_frames
        if chunk is None:
            raise PipelineError(
                f"architecture {self.checkpoint['architecture']!r} scores whole windows only; "
                "it has no chunks"
            )
        x, valid = self._prepare(windows, valid_frames)
        window, start = chunk_grid(valid_frames=valid, chunk_frames=chunk)
        frames = start[:, None] + np.arange(chunk)[None, :]  # (m, chunk)
        crops = x[window[:, None], :, frames].transpose(0, 2, 1)  # (m, n_bins, chunk)
        with torch.no_grad():
            logits = _chunked(
                self.model,
                torch.from_numpy(np.ascontiguousarray(crops)).to(self.device),
                batch=self.batch_size,
            )
        return logits.float().cpu().numpy(), window, start

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Embeddings per window (crop models: mean over crops), shape (n_windows, D)."""
        return self._window_outputs(windows, valid_frames, embed=True)

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The track's embedding, shape (D,): the mean over windows, or the sequence's own."""
        if self.input_kind == "sequence":
            return self._run_sequences([self._track_sequence(windows, valid_frames)], embed=True)[0]
        return self.embed_windows(windows, valid_frames=valid_frames).mean(axis=0)


@register_tagger("network")
def _network_tagger(checkpoint: dict[str, Any], device: str) -> Tagger:
    return NetworkTagger(checkpoint, device=device)
