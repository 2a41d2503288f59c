"""Loading language models behind one Generator interface (transformers on CPU, vLLM on GPU)."""

from __future__ import annotations

from arte_core.config import BACKENDS  # the config field `backend` declares the choices
from arte_core.errors import ArteError
from arte_core.models.base import Generation, Generator, SamplingParams, truncate_at_stop
from arte_core.models.registry import registry_names, resolve_model_path

__all__ = [
    "BACKENDS",
    "Generation",
    "Generator",
    "SamplingParams",
    "load_causal_lm",
    "load_generator",
    "registry_names",
    "resolve_model_path",
    "truncate_at_stop",
    "wrap_model",
]


def load_generator(
    name: str, backend: str = "transformers", dtype: str = "float32", trust_remote_code: bool = False
) -> Generator:
    """A ready Generator for a registry name, local folder or Hub id on the chosen backend."""
    if backend == "transformers":
        from arte_core.models.hf import HFGenerator

        return HFGenerator.load(name, dtype=dtype, trust_remote_code=trust_remote_code)
    if backend == "vllm":
        return _load_vllm(name, dtype, trust_remote_code)
    raise ArteError(f"Unknown backend {backend!r}: use one of {', '.join(BACKENDS)}.")


def _load_vllm(name: str, dtype: str, trust_remote_code: bool) -> Generator:
    try:
        from arte_core.models import vllm_backend
    except ImportError as error:
        raise ArteError(
            "the vLLM backend needs a GPU machine and `pip install arte-studio[vllm]` "
            f"({error}); use --backend transformers otherwise."
        ) from error
    return vllm_backend.VLLMGenerator.load(name, dtype=dtype, trust_remote_code=trust_remote_code)


def load_causal_lm(name: str, dtype: str = "float32", trust_remote_code: bool = False):
    """(model, tokenizer) for training code; the tokenizer gets the EOS token as pad when it has none."""
    from arte_core.models.hf import load_causal_lm as _load

    return _load(name, dtype=dtype, trust_remote_code=trust_remote_code)


def wrap_model(model, tokenizer, name: str, engine: str = "batched") -> Generator:
    """A Generator over an in-memory model (e.g. a base with a fine-tuned adapter merged in)."""
    if engine == "fast":
        try:
            from arte_core.models.fast import FastICLGenerator
        except ImportError:
            pass
        else:
            return FastICLGenerator(model, tokenizer, name)
    from arte_core.models.hf import HFGenerator

    return HFGenerator(model, tokenizer, name)
