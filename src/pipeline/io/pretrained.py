"""Pretrained audio encoders loaded offline: a local directory, or a Hugging Face model id
found in the local cache (never a download).

Two families, chosen by ``model_type`` of the model's ``config.json``:

- ``clap`` (e.g. ``laion/larger_clap_music``): :class:`transformers.ClapModel` with its
  :class:`~transformers.ClapFeatureExtractor` (48 kHz, 10 s inputs) and tokenizer; an audio
  chunk gives one projected, L2-normalised embedding (one "layer").
- ``hubert`` / ``mert_model`` (MERT, ``m-a-p/MERT-v1-95M``, ``-330M``, 24 kHz): the hidden
  states of every transformer layer (``output_hidden_states``). A ``hubert`` config loads
  with :class:`transformers.HubertModel`; so does a ``mert_model`` config that uses none of
  MERT's additions (no CQT front end, no DeepNorm: MERT-v1-95M and -330M), with
  ``conv_pos_batch_norm`` set (transformers >= 4.48 reads it;
  huggingface/transformers#35656); other MERT variants load through MERT's remote code
  (``trust_remote_code``, from the local files only).

When the weights are not there, :func:`load_encoder` raises one
:class:`~pipeline.errors.PipelineError` line naming the model and the command that downloads
it (:func:`download_command`). ``transformers`` is the optional extra ``encoders``
(``pip install 'music-tagging-pipeline[encoders]'``); it is imported only here, when a model
is loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import PipelineError

__all__ = [
    "PretrainedEncoder",
    "load_encoder",
    "resolve_model_dir",
    "download_command",
    "model_licence",
    "KNOWN_LICENCES",
    "HIDDEN_STATE_TYPES",
    "clap_text_embeddings",
]

#: ``model_type`` values loaded as hidden-state encoders (HuBERT-like: MERT).
HIDDEN_STATE_TYPES = ("hubert", "mert_model")

#: Licences of well-known weights (prefix of the model id -> licence), used when the model
#: card in the local files does not say.
KNOWN_LICENCES = {
    "m-a-p/MERT": "cc-by-nc-4.0",
    "m-a-p/MuQ": "cc-by-nc-4.0",
    "OpenMuQ/MuQ": "cc-by-nc-4.0",
    "laion/larger_clap": "apache-2.0",
    "laion/clap-htsat": "apache-2.0",
}


@dataclass
class PretrainedEncoder:
    """A loaded encoder, ready for inference.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode, on ``device``.
    family : {"clap", "hidden_states"}
    sample_rate : int
        The rate the model expects.
    n_layers : int
        Hidden states it outputs (a HuBERT/MERT model: transformer layers + 1; CLAP: 1).
    dim : int
        Width of one hidden state (CLAP: the projection size).
    normalize : bool
        (hidden states) Inputs are standardised per chunk, as its feature extractor does.
    feature_extractor : object or None
        (CLAP) its :class:`~transformers.ClapFeatureExtractor`.
    model_dir : Path
        Where the files are.
    model_id, revision, licence : str
    """

    model: Any  # a transformers model (torch.nn.Module)
    family: str
    sample_rate: int
    n_layers: int
    dim: int
    normalize: bool
    feature_extractor: Any
    model_dir: Path
    model_id: str
    revision: str
    licence: str
    device: torch.device


def download_command(model: str, *, revision: str) -> str:
    """The shell command that puts ``model`` at ``revision`` into the local Hugging Face cache."""
    return f"hf download {model} --revision {revision}"


def _missing(model: str, *, revision: str, why: str) -> PipelineError:
    return PipelineError(
        f"pretrained model {model!r} (revision {revision!r}) is not available offline ({why}); "
        f"download it once with: {download_command(model, revision=revision)}"
    )


def resolve_model_dir(model: str, *, revision: str) -> Path:
    """The local directory of a model: ``model`` itself when it is a directory, else its
    snapshot in the Hugging Face cache (``local_files_only``; nothing is downloaded).

    Raises
    ------
    PipelineError
        Neither exists: one line with the download command.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PipelineError(f"pretrained model directory {str(path)!r} has no config.json")
        return path
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise PipelineError(f"pretrained model directory {model!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # the optional extra is not installed
        raise _not_installed() from exc
    try:
        return Path(snapshot_download(repo_id=model, revision=revision, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - every flavour of "not in the cache" is one line
        why = f"not in the local cache: {type(exc).__name__}"
        raise _missing(model, revision=revision, why=why) from None


def _not_installed() -> PipelineError:
    return PipelineError(
        "pretrained encoders need the optional dependencies: "
        "pip install 'music-tagging-pipeline[encoders]' (transformers)"
    )


def model_licence(model_dir: Path, *, model: str) -> str:
    """The weights' licence: ``license:`` of the model card's front matter, else
    :data:`KNOWN_LICENCES`, else ``"unknown (see the model card)"``."""
    readme = Path(model_dir) / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        front = re.match(r"---\s*\n(.*?)\n---", text, flags=re.S)
        if front:
            found = re.search(r"^licen[cs]e:\s*['\"]?([^'\"\n]+)", front.group(1), flags=re.M)
            if found:
                return found.group(1).strip()
    for prefix, licence in KNOWN_LICENCES.items():
        if model.startswith(prefix):
            return licence
    return "unknown (see the model card)"


def _quiet_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise _not_installed() from exc
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def load_encoder(
    *, model: str, revision: str = "main", device: torch.device | str = "cpu"
) -> PretrainedEncoder:
    """Load a pretrained encoder from local files only.

    Parameters
    ----------
    model : str
        A local directory, or a Hugging Face id in the local cache.
    revision : str
        The cached revision of a Hub model (a commit hash, tag or branch).
    device : torch.device or str

    Returns
    -------
    PretrainedEncoder

    Raises
    ------
    PipelineError
        Weights missing (with the download command), an unsupported ``model_type``, or
        ``transformers`` not installed.
    """
    model_dir = resolve_model_dir(model, revision=revision)
    transformers = _quiet_transformers()
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(
            f"{str(model_dir / 'config.json')!r}: not readable JSON ({exc})"
        ) from exc
    model_type = str(config.get("model_type", ""))
    dev = torch.device(device)
    common: dict[str, Any] = {
        "model_dir": model_dir,
        "model_id": model,
        "revision": revision,
        "device": dev,
    }
    licence = model_licence(model_dir, model=model)
    try:
        if model_type == "clap":
            net = transformers.ClapModel.from_pretrained(model_dir, local_files_only=True)
            extractor = transformers.ClapFeatureExtractor.from_pretrained(
                model_dir, local_files_only=True
            )
            net = net.eval().to(dev)
            return PretrainedEncoder(
                model=net,
                family="clap",
                sample_rate=int(extractor.sampling_rate),
                n_layers=1,
                dim=int(net.config.projection_dim),
                normalize=False,
                feature_extractor=extractor,
                licence=licence,
                **common,
            )
        if model_type in HIDDEN_STATE_TYPES:
            net = _hidden_state_model(transformers, model_dir, model_type=model_type)
            pre = model_dir / "preprocessor_config.json"
            pre_config = json.loads(pre.read_text(encoding="utf-8")) if pre.is_file() else {}
            net = net.eval().to(dev)
            return PretrainedEncoder(
                model=net,
                family="hidden_states",
                sample_rate=int(pre_config.get("sampling_rate", config.get("sample_rate", 16000))),
                n_layers=int(net.config.num_hidden_layers) + 1,
                dim=int(net.config.hidden_size),
                normalize=bool(pre_config.get("do_normalize", False)),
                feature_extractor=None,
                licence=licence,
                **common,
            )
    except OSError as exc:  # weights or other files missing from the directory
        raise _missing(model, revision=revision, why=f"{type(exc).__name__}: {exc}") from exc
    raise PipelineError(
        f"pretrained model {model!r}: model_type {model_type!r} is not supported; supported: "
        f"clap, {', '.join(HIDDEN_STATE_TYPES)}"
    )


#: MERT config settings that HubertModel does not have; with these values a MERT checkpoint
#: is a HuBERT one (MERT-v1-95M and -330M: no CQT front end, no DeepNorm, plain attention).
_MERT_AS_HUBERT = {"feature_extractor_cqt": False, "deepnorm": False}


def _hidden_state_model(transformers: Any, model_dir: Path, *, model_type: str) -> Any:
    """A HuBERT-like model.

    ``hubert``: :class:`transformers.HubertModel`. ``mert_model``: when its config uses none of
    MERT's additions (:data:`_MERT_AS_HUBERT`, ``attention_relax <= 0``) the weights are those
    of a HuBERT model with MERT's sizes and load into ``HubertModel`` (no remote code runs);
    otherwise MERT's own remote code loads them (``trust_remote_code``, local files only, with
    ``conv_pos_batch_norm`` set when its config lacks it). Every weight must be found in the
    checkpoint: a model left partly at random initialisation is refused.
    """
    if model_type == "hubert":
        return _complete(transformers.HubertModel, model_dir)
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    plain = all(raw.get(k, v) == v for k, v in _MERT_AS_HUBERT.items())
    if plain and float(raw.get("attention_relax", -1.0) or -1.0) <= 0:
        known = set(transformers.HubertConfig().to_dict())
        settings = {k: v for k, v in raw.items() if k in known and k != "model_type"}
        settings.setdefault("conv_pos_batch_norm", False)  # huggingface/transformers#35656
        config = transformers.HubertConfig(**settings)
        return _complete(transformers.HubertModel, model_dir, config=config)
    config = transformers.AutoConfig.from_pretrained(
        model_dir, trust_remote_code=True, local_files_only=True
    )
    if not hasattr(config, "conv_pos_batch_norm"):  # huggingface/transformers#35656
        config.conv_pos_batch_norm = False
    return transformers.AutoModel.from_pretrained(
        model_dir, config=config, trust_remote_code=True, local_files_only=True
    )


def _complete(model_class: Any, model_dir: Path, **kwargs: Any) -> Any:
    """``model_class.from_pretrained`` (local files only), refusing missing weights."""
    model, info = model_class.from_pretrained(
        model_dir, local_files_only=True, output_loading_info=True, **kwargs
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise PipelineError(
            f"{str(model_dir)!r}: {len(missing)} weights of {model_class.__name__} are not in "
            f"the checkpoint (e.g. {missing[0]!r}); it is not a model of this architecture"
        )
    return model


def clap_text_embeddings(encoder: PretrainedEncoder, texts: list[str]) -> torch.Tensor:
    """L2-normalised CLAP text embeddings of ``texts``, shape (n_texts, dim), float32 on the CPU.

    Raises
    ------
    PipelineError
        The encoder is not a CLAP model, or its tokenizer is missing.
    """
    if encoder.family != "clap":
        raise PipelineError(
            f"pretrained model {encoder.model_id!r} is not a CLAP model: no text embeddings"
        )
    transformers = _quiet_transformers()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            encoder.model_dir, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise _missing(
            encoder.model_id, revision=encoder.revision, why=f"no tokenizer: {exc}"
        ) from exc
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = encoder.model.get_text_features(
            input_ids=tokens["input_ids"].to(encoder.device),
            attention_mask=tokens["attention_mask"].to(encoder.device),
        ).pooler_output
    return torch.nn.functional.normalize(out.float(), dim=-1).cpu()
