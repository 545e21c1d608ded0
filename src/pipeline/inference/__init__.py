"""Inference: the tagger protocol and its registry of checkpoint kinds
(:mod:`~pipeline.inference.registry`, :func:`~pipeline.inference.loading.load_tagger`), one
module per kind (``network``, ``bag_of_frames``, ``embedding``, ``sequence``), song-level
aggregation of window predictions (:mod:`~pipeline.inference.aggregate`), and tagging audio
files as a stream (``streaming``, ``aggregators``, ``file_tagger``, ``outputs``).

May import: :mod:`pipeline.models`, :mod:`pipeline.features` and below.
"""
