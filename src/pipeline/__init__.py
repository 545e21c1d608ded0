"""Music auto-tagging pipeline: manifests, features, models and evaluation.

Everything here is importable and unit-tested; nothing imports ``snakemake``.
"""

from pipeline.errors import AudioError, ConfigError, PipelineError

__all__ = ["AudioError", "ConfigError", "PipelineError", "__version__"]
__version__ = "0.1.0"
