"""Small music21 scores for the rendering tests."""

from __future__ import annotations

from music21 import meter, note, stream

__all__ = ["simple_score"]


def simple_score(pitches: list[str], *, ql: float = 1.0, ts: str = "4/4", parts: int = 1):
    """A score of ``parts`` identical parts: the notes ``pitches``, ``ql`` quarter notes each,
    in time signature ``ts``."""
    score = stream.Score()
    for _ in range(parts):
        part = stream.Part()
        part.append(meter.TimeSignature(ts))
        for name in pitches:
            part.append(note.Note(name, quarterLength=ql))
        score.insert(0, part)
    return score
