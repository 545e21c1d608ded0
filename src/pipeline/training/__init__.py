"""Training: the one training loop (:mod:`~pipeline.training.loop`), its settings
(:mod:`~pipeline.training.config`), the torch datasets and label budget
(:mod:`~pipeline.training.loaders`), end-to-end networks (:mod:`~pipeline.training.window`),
the two-stage trainers (:mod:`~pipeline.training.bag_of_frames`,
:mod:`~pipeline.training.embedding`, :mod:`~pipeline.training.sequence`, sharing
:mod:`~pipeline.training.two_stage` and :mod:`~pipeline.training.linear`), and the dispatch
the workflow calls (:mod:`~pipeline.training.run`)."""
