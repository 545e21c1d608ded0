"""The workflow's configuration: validation against the schema, and what each rule reads.

:mod:`pipeline.config.validation` checks a config against ``workflow/schemas/config.schema.yaml``
(the one source of defaults) and gives typed views of it; :mod:`pipeline.config.workflow_inputs`
turns the validated config into the default target and the inputs and params of each rule,
for the named input functions of ``workflow/rules/common.smk``.
"""

from __future__ import annotations

from pipeline.config.validation import (
    check_config_files,
    check_sources,
    collection_model,
    dataset_feature_sets,
    feature_settings,
    load_yaml,
    model_datasets,
    validate_config,
)
from pipeline.config.workflow_inputs import manifest_source
from pipeline.datasets.formats import ManifestSource

__all__ = [
    "load_yaml",
    "check_config_files",
    "check_sources",
    "validate_config",
    "feature_settings",
    "dataset_feature_sets",
    "model_datasets",
    "collection_model",
    "ManifestSource",
    "manifest_source",
]
