"""Linear layers on MKL-packed weights: same products as the plain layers at any row count, plain
again after the block, bounded by their memory budget, and made afresh for every generate call."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from arte_core.models import SamplingParams
from arte_core.models.fast import FastICLGenerator
from arte_core.models.hf import HFGenerator
from arte_core.models.packed import PackedLinears, packing_works


def tiny_llama(dtype=torch.float32, bias: bool = True) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=300, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attention_bias=bias, mlp_bias=bias)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval().to(dtype)


def linear_layers(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def test_packing_is_available_on_the_projects_torch_build():
    # the pinned CPU build of torch has MKL; if an upgrade drops the operators, scoring gets slower
    # without failing, and this says so
    assert packing_works()


@pytest.mark.parametrize("rows", [1, 5, 40, 300])
def test_packed_layers_compute_what_the_plain_layers_compute(rows):
    model = tiny_llama()
    ids = torch.randint(0, 300, (rows, 3), generator=torch.Generator().manual_seed(rows))
    linears = PackedLinears(model)
    assert len(linears.packed) == len(linear_layers(model))  # every projection, biases, the LM head
    with torch.inference_mode():
        plain = model(input_ids=ids).logits
        with linears.installed():
            packed = model(input_ids=ids).logits
    torch.testing.assert_close(packed, plain, rtol=1e-5, atol=1e-5)


def test_layers_are_plain_again_after_the_block_even_when_it_fails():
    model = tiny_llama()
    layer = linear_layers(model)[0]
    x = torch.randn(6, layer.in_features)
    with pytest.raises(RuntimeError, match="stopped"):
        with PackedLinears(model).installed():
            assert "forward" in layer.__dict__
            raise RuntimeError("stopped")
    assert all("forward" not in m.__dict__ for m in linear_layers(model))
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_the_budget_bounds_how_many_layers_are_packed():
    model = tiny_llama()
    first, second = linear_layers(model)[:2]
    two_layers = (first.weight.numel() + second.weight.numel()) * 4
    assert [m for m, _ in PackedLinears(model, budget_bytes=two_layers).packed] == [first, second]
    assert PackedLinears(model, budget_bytes=0).packed == []


class ScaledLinear(torch.nn.Linear):
    """A subclass with a forward of its own, like a quantised or adapter layer."""

    def forward(self, x):
        return 2 * super().forward(x)


def test_only_plain_float32_linears_are_packed():
    assert PackedLinears(tiny_llama(dtype=torch.bfloat16)).packed == []
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), ScaledLinear(8, 8))
    assert [m for m, _ in PackedLinears(model).packed] == [model[0]]


def test_each_generate_call_packs_the_weights_it_finds(tiny_model_dir):
    """A model changed between calls (an adapter merged, a checkpoint loaded in place) is scored with
    its new weights, not with a packed copy of the old ones."""
    loaded = HFGenerator.load(tiny_model_dir)
    plain = HFGenerator(loaded.model, loaded.tokenizer, "tiny", pack_weights=False)
    fast = FastICLGenerator(loaded.model, loaded.tokenizer, "tiny")
    prompts = ["The answer is", "Hello there", "True and False is"]
    params = SamplingParams(max_new_tokens=8)
    before = [g.text for g in fast.generate(prompts, params)]
    with torch.no_grad():
        for layer in loaded.model.model.layers:
            layer.mlp.down_proj.weight.mul_(-3.0)
    after = [g.text for g in fast.generate(prompts, params)]
    assert after != before  # the change matters to the answers
    assert after == [plain.generate([p], params, batch_size=1)[0].text for p in prompts]
    # the HFGenerator fallback packs per call too, so only the fast path answering both calls shows
    # that the engine's own calls repack
    assert (fast.counts.fast_prompts, fast.counts.fallback_prompts) == (2 * len(prompts), 0)


def test_hf_generate_computes_on_packed_weights_with_transformers_answers(tiny_model_dir):
    packed = HFGenerator.load(tiny_model_dir)
    shipped = HFGenerator(packed.model, packed.tokenizer, "tiny", pack_weights=False)
    layer = linear_layers(packed.model)[0]
    seen = []  # whether the layer computed on a packed copy, at each of its calls
    layer.register_forward_pre_hook(lambda module, args: seen.append("forward" in module.__dict__))
    prompts = ["The answer is", "Hello there", "True and False is", "Q: not True"]
    for params in (SamplingParams(max_new_tokens=10), SamplingParams(max_new_tokens=10, temperature=0.9, seed=3)):
        seen.clear()
        with_packed = [g.text for g in packed.generate(prompts, params, batch_size=2)]
        assert seen and all(seen)
        seen.clear()
        assert with_packed == [g.text for g in shipped.generate(prompts, params, batch_size=2)]
        assert seen and not any(seen)


def test_between_batches_the_caller_sees_plain_layers(tiny_model_dir):
    generator = HFGenerator.load(tiny_model_dir)
    batches = generator.generate_each(["a", "b", "c"], SamplingParams(max_new_tokens=4), batch_size=1)
    for _ in batches:
        assert all("forward" not in m.__dict__ for m in linear_layers(generator.model))
