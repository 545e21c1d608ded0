"""Generated datasets: audio rendered in-process from symbolic music.

:mod:`~pipeline.datasets.rendering.score_events` (scores to timed note events) and
:mod:`~pipeline.datasets.rendering.render` (SoundFont synthesis, FLAC writing) are used by the
two generated dataset formats: :mod:`~pipeline.datasets.rendering.demo` (the embedded demo,
drawn from the music21 corpus by :mod:`~pipeline.datasets.rendering.demo_corpus`) and
:mod:`~pipeline.datasets.rendering.scores` (a user's folder of scores).
"""
