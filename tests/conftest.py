"""Shared test fixtures: one model cache for the whole run, offline Hub, a tiny random Llama."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("ARTE_CACHE_DIR", str(REPO / ".arte_cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tests run tiny models whose matrix products are too small to gain from threads, and a busy machine
# makes OpenMP threads spin: one thread was 13x faster for the tiny model under load.
torch.set_num_threads(1)

SMOLLM2 = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """The converted SmolLM2 folder (converted once into ARTE_CACHE_DIR)."""
    from arte_core.models import resolve_model_path

    return resolve_model_path(SMOLLM2)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_path) -> str:
    """A tiny random Llama (2 layers, hidden 32) with the real SmolLM2 tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.5,  # peaked logits: greedy choices are not decided by rounding noise
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def second_student_dir(tmp_path_factory, tiny_model_dir) -> str:
    """Another tiny random student: the same shape and tokenizer, other weights."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig.from_pretrained(tiny_model_dir)).eval()
    folder = tmp_path_factory.mktemp("tiny-llama-b")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return str(folder)
