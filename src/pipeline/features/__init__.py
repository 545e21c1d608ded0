"""Features: a feature set's settings (:mod:`~pipeline.features.settings`), the extractors
(:mod:`~pipeline.features.extractors`), the extraction of one shard into a store
(:mod:`~pipeline.features.extract`), window geometry on stored windows
(:mod:`~pipeline.features.windows`), the index over a feature set's stores
(:mod:`~pipeline.features.index`), band statistics (:mod:`~pipeline.features.stats`) and
bag-of-frames codebooks (:mod:`~pipeline.features.codebook`).

May import: :mod:`pipeline.io`, :mod:`pipeline.datasets` and below.
"""
