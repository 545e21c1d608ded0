"""Evaluation: per-tag metrics (:mod:`~pipeline.evaluation.metrics`), predictions of a
checkpoint on stored windows (:mod:`~pipeline.evaluation.predict`), one model's evaluation
(:mod:`~pipeline.evaluation.evaluate`), results tables and plots (``tables``, ``plots``,
``taggram``) and the leaderboard (:mod:`~pipeline.evaluation.leaderboard`).

May import: :mod:`pipeline.inference` and below (training imports this layer to validate).
"""
