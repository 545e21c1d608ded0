"""Render note events (and scores) to audio with a General MIDI SoundFont, in-process.

:class:`SoundFontRenderer` synthesises the note events of
:mod:`pipeline.datasets.rendering.score_events` through ``tinysoundfont``: one channel and
program per part, every note switched off, all notes off at the end, and always exactly
``round(duration_s * sample_rate)`` samples. :func:`render_score` goes from a score (or score
file) to audio in one call; :func:`write_flac` writes the result.

Nothing here writes MIDI or calls an external renderer: a hung note once turned such a render
into a 25 GB file. Here the length of the output is fixed before the first sample is made.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipeline.datasets.rendering.score_events import NoteEvents, score_to_events
from pipeline.errors import AudioError, ConfigError

__all__ = [
    "SoundFontRenderer",
    "default_soundfont",
    "get_renderer",
    "render_score",
    "write_flac",
]

_DRUM_CHANNEL = 9  # General MIDI percussion; never given to a pitched part
_CHANNELS = tuple(c for c in range(16) if c != _DRUM_CHANNEL)
_FLUSH_S = 0.1  # audio rendered (and thrown away) after a reset, to let voices die out


def default_soundfont() -> Path:
    """Path of the General MIDI SoundFont bundled with ``pretty_midi`` (TimGM6mb, GPL-2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise ConfigError(f"soundfont: the bundled SoundFont '{path}' is missing")
    return path


class SoundFontRenderer:
    """A General MIDI SoundFont synthesiser (tinysoundfont), loaded once and reused.

    Parameters
    ----------
    soundfont : Path or None
        ``.sf2`` file; ``None`` uses :func:`default_soundfont`.
    sample_rate : int
        Rate of the returned audio, in Hz.
    synth_rate : int or None
        Rate the synthesiser runs at; ``None`` renders at ``sample_rate`` directly
        (tinysoundfont supports any rate), otherwise the audio is resampled with soxr.
    max_voices : int
        Polyphony of the synthesiser; the oldest voices are cut beyond it.
    """

    def __init__(
        self,
        *,
        soundfont: str | Path | None = None,
        sample_rate: int = 16000,
        synth_rate: int | None = None,
        max_voices: int = 256,
    ) -> None:
        import tinysoundfont

        if not sample_rate > 0:
            raise ConfigError(f"sample_rate: {sample_rate!r} must be > 0")
        if synth_rate is not None and not synth_rate > 0:
            raise ConfigError(f"synth_rate: {synth_rate!r} must be > 0")
        self.soundfont = Path(soundfont) if soundfont is not None else default_soundfont()
        if not self.soundfont.is_file():
            raise ConfigError(f"soundfont: '{self.soundfont}' does not exist")
        self.sample_rate = int(sample_rate)
        self.synth_rate = int(synth_rate) if synth_rate is not None else self.sample_rate
        self._synth = tinysoundfont.Synth(samplerate=self.synth_rate)
        try:
            self._sfid = self._synth.sfload(str(self.soundfont), max_voices=max_voices)
        except Exception as exc:  # tinysoundfont raises plain exceptions
            raise ConfigError(f"soundfont: cannot load '{self.soundfont}': {exc}") from exc

    def _generate(self, out: np.ndarray) -> None:
        """Fill ``out``, shape (n, 2) float32 C-contiguous, with the synthesiser's output."""
        if out.shape[0]:
            self._synth.generate_simple(out.shape[0], buffer=out.data.cast("B"))

    def _reset(self) -> None:
        """Silence every voice, forget channel settings, and let the quick releases finish."""
        for channel in range(16):
            self._synth.control_change(channel, 123, 0)  # all notes off
            self._synth.control_change(channel, 120, 0)  # all sounds off
        for font in self._synth.soundfonts.values():
            font.reset()
        self._generate(np.zeros((int(_FLUSH_S * self.synth_rate), 2), dtype=np.float32))

    def render(
        self,
        events: NoteEvents,
        *,
        duration_s: float,
        programs: int | Sequence[int] = 0,
        peak: float | None = 0.9,
    ) -> np.ndarray:
        """Synthesise note events to mono audio of a fixed length.

        Parameters
        ----------
        events : NoteEvents
            The notes; part ``p`` plays on its own channel (channel 10, GM drums, is skipped;
            beyond 15 parts channels are shared) with program ``programs[p]``.
        duration_s : float
            Length of the output in seconds.
        programs : int or sequence of int
            General MIDI program (0-based: 0 piano, 40 violin, ...) for all parts, or one per
            part.
        peak : float or None
            Scale the output so its absolute peak is ``peak``; ``None`` or silent output is
            left unscaled.

        Returns
        -------
        np.ndarray, shape (round(duration_s * sample_rate),), float32
        """
        if not duration_s > 0:
            raise ConfigError(f"duration_s: {duration_s!r} must be > 0")
        n_parts = max(events.n_parts, int(events.part.max()) + 1 if events.n_notes else 0, 1)
        if isinstance(programs, int | np.integer):
            programs = [int(programs)] * n_parts
        programs = [int(p) for p in programs]
        if len(programs) < n_parts:
            raise ConfigError(f"programs: {programs!r} gives fewer programs than {n_parts} parts")
        if any(not 0 <= p <= 127 for p in programs):
            raise ConfigError(f"programs: {programs!r} must be General MIDI programs 0-127")

        rate = self.synth_rate
        n_out = int(round(duration_s * self.sample_rate))
        n_synth = int(round(duration_s * rate))
        channel_of_part = [_CHANNELS[p % len(_CHANNELS)] for p in range(n_parts)]

        # events as (sample, kind, channel, key, velocity); kind 0 = off sorts before 1 = on
        # at the same sample, so every note lasts at least one sample and its off comes
        # strictly after its on (an off sorted before its own on would leave the note hanging)
        on_at = np.rint(events.onset_s * rate).astype(np.int64)
        keep = (on_at >= 0) & (on_at < n_synth)
        on_at = on_at[keep]
        off_at = np.rint(events.offset_s[keep] * rate).astype(np.int64)
        off_at = np.minimum(np.maximum(off_at, on_at + 1), n_synth)
        channels = np.asarray(channel_of_part, dtype=np.int64)[events.part[keep].astype(np.int64)]
        pitch, velocity = events.pitch[keep], events.velocity[keep]
        table = np.concatenate(
            [
                np.stack([off_at, np.zeros_like(off_at), channels, pitch, 0 * on_at], 1),
                np.stack([on_at, np.ones_like(on_at), channels, pitch, velocity], 1),
            ]
        ).astype(np.int64)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]

        out = np.zeros((n_synth, 2), dtype=np.float32)
        synth = self._synth
        self._reset()
        try:
            for channel in sorted(set(channel_of_part)):
                part = channel_of_part.index(channel)
                synth.program_select(channel, self._sfid, 0, programs[part])
            pos = 0
            for sample, kind, channel, key, velocity in table.tolist():
                if sample > pos:
                    self._generate(out[pos:sample])
                    pos = sample
                if kind:
                    synth.noteon(channel, key, int(velocity))
                else:
                    synth.noteoff(channel, key)
            self._generate(out[pos:])
        finally:
            self._reset()

        mono = (out[:, 0] + out[:, 1]) * 0.5
        if self.synth_rate != self.sample_rate:
            import soxr

            mono = soxr.resample(mono, self.synth_rate, self.sample_rate, quality="HQ")
        audio = np.zeros(n_out, dtype=np.float32)
        audio[: min(n_out, mono.shape[0])] = mono[:n_out]
        top = float(np.max(np.abs(audio))) if n_out else 0.0
        if peak is not None and top > 1e-6:
            audio *= np.float32(peak / top)
        return audio


@functools.lru_cache(maxsize=4)
def get_renderer(
    *, soundfont: str | Path | None = None, sample_rate: int = 16000
) -> SoundFontRenderer:
    """The process-wide :class:`SoundFontRenderer` for a SoundFont and rate (loaded once)."""
    return SoundFontRenderer(soundfont=soundfont, sample_rate=sample_rate)


def render_score(
    score: Any,
    *,
    duration_s: float,
    sample_rate: int = 16000,
    tempo_qpm: float | None = None,
    programs: int | Sequence[int] = 0,
    loop: bool = False,
    soundfont: str | Path | None = None,
) -> np.ndarray:
    """Render the first ``duration_s`` seconds of a score or score file to mono audio.

    Parameters
    ----------
    score : music21.stream.Stream or str or Path
        A parsed score, or a file for :func:`load_score`.
    duration_s : float
        Length of the output in seconds.
    sample_rate : int
        Rate of the output in Hz.
    tempo_qpm : float or None
        Quarter notes per minute; ``None`` follows the score (``DEFAULT_TEMPO_QPM`` if unmarked).
    programs : int or sequence of int
        General MIDI program for all parts, or one per part.
    loop : bool
        Repeat the score until ``duration_s`` is filled.
    soundfont : str or Path or None
        ``.sf2`` file; ``None`` uses the bundled TimGM6mb.

    Returns
    -------
    np.ndarray, shape (round(duration_s * sample_rate),), float32
        Peak-normalised to 0.9 unless silent.
    """
    events = score_to_events(score, duration_s=duration_s, tempo_qpm=tempo_qpm, loop=loop)
    renderer = get_renderer(
        soundfont=str(soundfont) if soundfont is not None else None, sample_rate=sample_rate
    )
    return renderer.render(events, duration_s=duration_s, programs=programs)


def write_flac(*, path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio, shape (n_samples,), to a 16-bit FLAC file (parents created).

    The file is written under a temporary name and renamed, so a crash leaves no partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise AudioError(f"cannot write '{path}': {exc}") from exc
    return path
