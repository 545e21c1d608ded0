"""Input and output (the lowest layer above :mod:`pipeline.errors`): audio decoding as a
bounded-memory stream (:mod:`~pipeline.io.audio`), the Zarr feature store
(:mod:`~pipeline.io.store`), the one checkpoint format (:mod:`~pipeline.io.checkpoint`), rule
logs and JSON files (:mod:`~pipeline.io.files`), Dask and torch resources
(:mod:`~pipeline.io.parallel`, :mod:`~pipeline.io.device`).

May import: :mod:`pipeline.errors`, :mod:`pipeline.numeric`.
"""
