"""Few-shot tagging of a new vocabulary from a few labelled tracks per tag: the protocol
(:mod:`~pipeline.fewshot.episodes`), prototypes on frozen embeddings
(:mod:`~pipeline.fewshot.prototypes`) and fine-tuning of a trained network
(:mod:`~pipeline.fewshot.finetune`)."""
