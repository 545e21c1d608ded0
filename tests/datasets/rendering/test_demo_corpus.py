"""The demo dataset's tunes: tag rules on known answers, ABC headers, a tune's analysis."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.datasets.rendering import demo_corpus
from pipeline.datasets.rendering.demo_corpus import (
    is_anhemitonic,
    meter_tag,
    mode_tag,
    split_abc_tunes,
)
from pipeline.datasets.rendering.score_events import ScoreNotes


@pytest.mark.parametrize(
    ("ts", "tag"),
    [
        ("2/4", "duple"),
        ("C", "duple"),
        ("C|", "duple"),
        (" 4/4", "duple"),
        ("3/4", "triple"),
        ("3/8", "triple"),
        ("6/8", "compound"),
        ("12/8", "compound"),
        ("5/4", None),
        ("4/2", None),
        ("none", None),
    ],
)
def test_meter_tag(ts: str, tag: str | None) -> None:
    assert meter_tag(ts) == tag


def test_mode_tag_needs_declared_key_estimate_and_final_note_to_agree() -> None:
    g_major = {"estimate_tonic": 7, "estimate_mode": "major", "estimate_sharps": 1}
    e_minor = {"estimate_tonic": 4, "estimate_mode": "minor", "estimate_sharps": 1}
    # declared mode (ABC K:G / K:Em)
    assert mode_tag(**g_major, final_pitch_class=7, declared_mode="major", declared_tonic=7) == (
        "major"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode="minor", declared_tonic=4) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode="major", declared_tonic=7) is None
    assert mode_tag(**g_major, final_pitch_class=2, declared_mode="major", declared_tonic=7) is None
    assert mode_tag(**g_major, final_pitch_class=7, declared_mode="modal") is None
    # tonic only (Essen K: field): the estimate's tonic must match
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_tonic=4) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_tonic=7) is None
    # signature only (MusicXML key without mode): the estimate's signature must match
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_sharps=1) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_sharps=0) is None
    assert (
        mode_tag(**e_minor, final_pitch_class=None, declared_mode=None, declared_sharps=1) is None
    )
    # nothing declared, or a pentatonic melody: no tag
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None) is None
    kwargs = {"final_pitch_class": 7, "declared_mode": "major", "declared_tonic": 7}
    assert mode_tag(**g_major, **kwargs, anhemitonic=True) is None


def test_pentatonic_melodies_are_anhemitonic() -> None:
    def notes(midis, durations=None):
        n = len(midis)
        return ScoreNotes(
            onset_ql=np.arange(n, dtype=float),
            duration_ql=np.ones(n) if durations is None else np.asarray(durations, float),
            pitch=np.asarray(midis, np.int16),
            beat_strength=np.ones(n, np.float32),
            part=np.zeros(n, np.int16),
            n_parts=1,
            length_ql=float(n),
        )

    assert is_anhemitonic(notes([60, 62, 64, 67, 69, 72]))  # C D E G A
    assert not is_anhemitonic(notes([60, 62, 64, 65, 67]))  # C D E F G
    # a short passing F (1 % of the time) does not make a pentatonic tune diatonic
    assert is_anhemitonic(notes([60, 62, 64, 65, 67], [30, 30, 20, 1, 19]))


def test_split_abc_tunes_reads_headers_and_meter_changes() -> None:
    text = (
        "% a comment\n"
        "X: 7\nT: One\nM: 3/4\nL: 1/8\nK:Gm\nGABc d2 | [M:2/4] d2 c2 |]\n\n"
        "X:8\nT: Two\nO: China, Shaanxi\nM: 6/8\nK: D\nM: 3/8\ndef |]\n"
        "X:9\nT: Three\nM: 2/4\nK: F\nFA c2 | f4 |]\n"
    )
    tunes = split_abc_tunes(text)
    assert [t.number for t in tunes] == [7, 8, 9]
    assert [t.index for t in tunes] == [1, 2, 3]
    assert tunes[0].fields["K"] == "Gm" and tunes[0].fields["M"] == "3/4"
    assert tunes[1].fields["O"] == "China, Shaanxi"
    assert [t.meter_changes for t in tunes] == [True, True, False]
    assert tunes[2].text.startswith("X:9") and "f4" in tunes[2].text


def test_abc_key_field() -> None:
    assert demo_corpus._abc_key("Gm") == (7, "minor", -2)
    assert demo_corpus._abc_key("D") == (2, "major", 2)
    assert demo_corpus._abc_key("F#m") == (6, "minor", 3)
    assert demo_corpus._abc_key("Dmix")[1] == "modal"


def test_a_three_four_tune_is_tagged_triple_and_major() -> None:
    abc = (
        "X:1\nT:Waltz\nM:3/4\nL:1/4\nK:C\n"
        "C E G | c G E | F A c | G3 | E G c | B d G | C E G | C3 |]\n"
    )
    tune = split_abc_tunes(abc)[0]
    cand = demo_corpus._abc_candidate(
        source="german",
        tune=tune,
        origin="test",
        track_id="german-test-0001",
        artist="essen-test",
        tonic_only=True,
    )
    analysis = demo_corpus.analyse(cand)
    assert not isinstance(analysis, str), analysis
    assert analysis.meter == "triple"
    assert analysis.mode == "major"
    assert analysis.n_parts == 1
