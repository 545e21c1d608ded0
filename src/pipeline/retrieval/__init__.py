"""Similar tracks: retrieval metrics with tag overlap as ground truth
(:mod:`~pipeline.retrieval.metrics`), a triplet-loss projection
(:mod:`~pipeline.retrieval.metric_learning`), the similarity index and search
(:mod:`~pipeline.retrieval.similarity`), the workflow's retrieval steps
(:mod:`~pipeline.retrieval.evaluate`) and table (:mod:`~pipeline.retrieval.table`).

May import: :mod:`pipeline.training` and below; not :mod:`pipeline.fewshot` (same layer).
"""
