"""The fast ICL engine: prefix grouping, greedy answers equal to the plain per-prompt loop, order,
stops, EOS, the sampling fallback, rows bounded by cache memory; the vLLM backend's error without
vLLM; SmolLM2 fast vs batched."""

import importlib.util
from dataclasses import replace

import pytest
import torch
from transformers import LlamaConfig

from arte_core.errors import ArteError
from arte_core.models import SamplingParams, fast as fast_module, load_generator
from arte_core.models.fast import EngineCounts, FastICLGenerator
from arte_core.models.hf import HFGenerator
from arte_core.models.prefix_groups import shared_prefix_groups
from arte_core.models.row_slots import RowSlots, kv_bytes_per_token, rows_within_memory
from arte_core.models.shared_prefix_attention import AttentionNotDispatched
from arte_core.prompts import STUDENT_STOP, icl_prompt
from arte_core.tasks.builtin import BUILTIN_TASKS

# ---- grouping ------------------------------------------------------------------------------------


def _grouped(sequences):
    return sorted((g.prefix_len, sorted(g.members)) for g in shared_prefix_groups(sequences))


def test_each_long_demo_becomes_one_group_despite_similar_questions():
    demo_a, demo_b = [1] * 100, [1, 2] + [3] * 98
    questions = [[7, 8, 9], [7, 8, 5, 5], [6]]  # questions share tokens with one another too
    sequences = [demo_a + q for q in questions] + [demo_b + q for q in questions]
    assert _grouped(sequences) == [(100, [0, 1, 2]), (100, [3, 4, 5])]


def test_a_prompt_that_is_a_prefix_of_another_keeps_one_token_to_feed():
    demo = list(range(10, 60))
    groups = shared_prefix_groups([demo, demo + [1, 2], demo + [3]])
    assert [(g.prefix_len, sorted(g.members)) for g in groups] == [(49, [0, 1, 2])]


def test_unrelated_prompts_share_nothing():
    assert _grouped([[1, 2], [3, 4], [5]]) == [(0, [0, 1, 2])]
    assert shared_prefix_groups([]) == []


# ---- greedy answers on the tiny model ----------------------------------------------------------


def transformers_as_shipped(generator: HFGenerator) -> HFGenerator:
    """The reference: the same model through transformers' own linear layers (no packed weights)."""
    return HFGenerator(generator.model, generator.tokenizer, generator.name, pack_weights=False)


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    """(plain, fast) generators sharing one tiny model; the plain one is transformers as shipped."""
    plain = transformers_as_shipped(HFGenerator.load(tiny_model_dir))
    return plain, FastICLGenerator(plain.model, plain.tokenizer, "tiny")


@pytest.fixture(scope="module")
def icl_prompts() -> list[str]:
    """ICL-shaped prompts: three demos x questions of different lengths, a duplicate, a prompt that
    is a prefix of another and one unrelated prompt, interleaved so order matters."""
    task = BUILTIN_TASKS["boolean_expressions"](0)
    questions = [task.examples[0].input, task.examples[1].input, "True is"]
    prompts = [icl_prompt(e.input, e.rationale, e.answer, q) for q in questions for e in task.exemplars]
    prompts.append(prompts[4])  # duplicate
    prompts.append(prompts[0][:-12])  # a prefix of another prompt
    prompts.append("Hello there")
    return prompts


def plain_loop(plain: HFGenerator, prompts, params):
    return [plain.generate([p], params, batch_size=1)[0] for p in prompts]


def fast_answers(fast: FastICLGenerator, prompts, params, **kwargs):
    """`fast.generate`'s answers, having checked that the fast path gave every one: its HFGenerator
    fallback gives the plain loop's answers too, so equal answers alone would not show the engine ran."""
    before = replace(fast.counts)
    outputs = fast.generate(prompts, params, **kwargs)
    assert (fast.counts.fast_prompts - before.fast_prompts, fast.counts.fallback_prompts - before.fallback_prompts) == (
        len(prompts), 0), "prompts went to the HFGenerator fallback"
    return outputs


def assert_same(fast_outputs, plain_outputs):
    assert len(fast_outputs) == len(plain_outputs)
    for i, (f, p) in enumerate(zip(fast_outputs, plain_outputs)):
        assert (f.text, f.n_prompt_tokens, f.n_generated_tokens, f.stopped, f.extra) == (
            p.text, p.n_prompt_tokens, p.n_generated_tokens, p.stopped, p.extra), f"prompt {i}"


@pytest.fixture(scope="module")
def stopped_params(engines, icl_prompts) -> SamplingParams:
    """Greedy params whose stops include short strings this model does write in some answers."""
    plain, _ = engines
    free = SamplingParams(max_new_tokens=20)
    seen = [o.text[6:9] for o in plain.generate(icl_prompts, free, batch_size=len(icl_prompts))[::4]]
    return replace(free, stop=tuple(s for s in seen if len(s) == 3)[:3] + STUDENT_STOP)


@pytest.fixture(scope="module")
def plain_answers(engines, icl_prompts, stopped_params):
    """The plain loop's answers without and with include_stop."""
    plain, _ = engines
    included = replace(stopped_params, include_stop=True)
    return plain_loop(plain, icl_prompts, stopped_params), plain_loop(plain, icl_prompts, included)


@pytest.mark.parametrize("rows_in_flight", [None, 3])
def test_fast_greedy_matches_plain_loop(engines, icl_prompts, stopped_params, plain_answers, rows_in_flight):
    _, fast = engines
    fast = FastICLGenerator(fast.model, fast.tokenizer, "tiny", rows_in_flight=rows_in_flight)
    expected, expected_included = plain_answers
    assert {"stop", "length"} <= {o.extra["finish"] for o in expected}  # both endings are exercised
    assert_same(fast_answers(fast, icl_prompts, stopped_params), expected)
    distinct = len(set(icl_prompts))
    assert fast.counts.rows == (rows_in_flight or distinct)  # all distinct prompts at once, or the rows asked for
    included = replace(stopped_params, include_stop=True)
    assert_same(fast_answers(fast, icl_prompts, included), expected_included)


# ---- the rows' own caches ----------------------------------------------------------------------


def _prefilled(rows: list[list[float]]) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """One layer's keys (= values) of left-padded rows, one head of size one: token values as given."""
    width = max(map(len, rows))
    keys = torch.zeros((len(rows), 1, width, 1))
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, tokens in enumerate(rows):
        keys[r, 0, width - len(tokens):, 0] = torch.tensor(tokens)
        mask[r, width - len(tokens):] = True
    return [(keys, keys.clone())], mask


def _decode(slots: RowSlots, new: list[float]) -> None:
    slots.open_column()
    column = torch.tensor(new).reshape(-1, 1, 1, 1)
    slots.write_last_column(0, column, column.clone())


def _window_rows(slots: RowSlots) -> list[list[float]]:
    (keys, values), = slots.windows()
    assert torch.equal(keys, values)
    assert torch.isfinite(keys).all(), "a masked column holds NaN or inf: the weighted sum would be poisoned"
    mask = slots.window_mask()
    return [keys[r, 0, :, 0][mask[r]].tolist() for r in range(slots.rows)]


def _poison_unwritten(slots: RowSlots) -> None:
    """Fresh memory may hold anything: make it NaN wherever no row's window has been written."""
    mask = slots.window_mask()
    for store in slots.stores[0]:
        window = store[: slots.rows, :, slots.first : slots.end]
        window[~mask[:, None, :, None].expand_as(window)] = float("nan")
        store[slots.rows:] = float("nan")
        store[:, :, : slots.first] = float("nan")
        store[:, :, slots.end:] = float("nan")


def _step(slots: RowSlots, rows: list[list[float]]) -> None:
    new = [row[-1] + 1 for row in rows]
    _decode(slots, new)
    for row, token in zip(rows, new):
        row.append(token)


def test_row_slots_keep_each_rows_tokens_through_admissions_moves_and_removals():
    slots = RowSlots(capacity=4, columns=8)
    rows = [[10.0], [20.0]]
    slots.admit(*_prefilled(rows))
    _step(slots, rows)
    _poison_unwritten(slots)  # from here on a masked column read before it is zeroed fails the test
    rows.append([30.0, 31.0, 32.0])  # longer than the window: it widens to the left
    slots.admit(*_prefilled(rows[-1:]))
    assert _window_rows(slots) == rows and slots.width == 3
    for _ in range(3):
        _step(slots, rows)
    assert slots.remove({0}) == [2, 1]  # the last row moves into the freed slot
    rows = [rows[2], rows[1]]
    assert _window_rows(slots) == rows
    rows.append([40.0])  # shorter than the window: zeros on its left
    slots.admit(*_prefilled(rows[-1:]))
    assert _window_rows(slots) == rows
    assert slots.remove({0, 1}) == [2]
    rows = rows[2:]
    assert _window_rows(slots) == rows and slots.width == 1  # the window starts at the oldest row left
    stores = slots.stores
    for _ in range(3):  # the window reaches the right edge and moves back to column 0
        _step(slots, rows)
    assert slots.stores is not stores and slots.first == 0
    assert _window_rows(slots) == rows


def test_row_slots_refuse_a_row_longer_than_their_columns():
    slots = RowSlots(capacity=1, columns=2)
    slots.admit(*_prefilled([[1.0]]))
    _decode(slots, [2.0])
    with pytest.raises(ValueError, match="columns"):
        _decode(slots, [3.0])


def test_rows_in_flight_are_bounded_by_cache_memory():
    smollm2_shape = LlamaConfig(num_hidden_layers=30, hidden_size=576, num_attention_heads=9, num_key_value_heads=3)
    assert kv_bytes_per_token(smollm2_shape, torch.float32) == 2 * 30 * 3 * 64 * 4 == 46080
    assert kv_bytes_per_token(smollm2_shape, torch.bfloat16) == 23040
    assert rows_within_memory(smollm2_shape, torch.float32, 400, 7 * 46080 * 400 + 5) == 7
    assert rows_within_memory(smollm2_shape, torch.float32, 400, 1) == 1  # always at least one row


def test_a_tight_memory_budget_decodes_one_row_at_a_time_with_the_same_answers(
        engines, icl_prompts, stopped_params, plain_answers, monkeypatch):
    _, fast = engines
    monkeypatch.setattr(fast_module, "KV_CACHE_BYTES", 1)
    expected, _ = plain_answers
    assert_same(fast_answers(fast, icl_prompts, stopped_params), expected)
    assert fast.counts.rows == 1  # no room for a second row's cache: one row in flight


def test_eos_ends_a_row_like_the_plain_loop(tiny_model_dir, icl_prompts):
    plain = HFGenerator.load(tiny_model_dir)
    free = SamplingParams(max_new_tokens=12)
    frequent = plain.generate([icl_prompts[0]], free, batch_size=1)[0]
    token = plain.encode(frequent.text)[-1]  # a token this model writes: make it an end token
    plain.model.generation_config.eos_token_id = [plain.tokenizer.eos_token_id, token]
    plain = transformers_as_shipped(plain)  # a new generator reads the changed end tokens
    fast = FastICLGenerator(plain.model, plain.tokenizer, "tiny")
    expected = plain_loop(plain, icl_prompts, free)
    assert "eos" in {o.extra["finish"] for o in expected}
    assert_same(fast_answers(fast, icl_prompts, free, batch_size=4), expected)


def test_progress_counts_every_prompt_and_results_are_independent(engines, icl_prompts):
    _, fast = engines
    seen = []
    outputs = fast.generate(icl_prompts, SamplingParams(max_new_tokens=4), progress=seen.append)
    assert sum(seen) == len(icl_prompts)
    duplicate, original = outputs[-3], outputs[4]
    assert duplicate.text == original.text and duplicate is not original
    assert duplicate.extra is not original.extra


@pytest.mark.parametrize("rows_in_flight", [None, 3])
def test_generate_each_streams_every_prompt_once_with_the_answers_of_generate(
        engines, icl_prompts, stopped_params, plain_answers, rows_in_flight, monkeypatch):
    _, fast = engines
    fast = FastICLGenerator(fast.model, fast.tokenizer, "tiny", rows_in_flight=rows_in_flight)
    prefilled = []
    real_prefill = fast.prefill_suffixes
    monkeypatch.setattr(fast, "prefill_suffixes", lambda prefix, suffixes: (
        prefilled.extend(suffixes), real_prefill(prefix, suffixes))[1])
    streamed, prefilled_at_first = {}, None
    for index, output in fast.generate_each(icl_prompts, stopped_params):
        assert index not in streamed
        streamed[index] = output
        prefilled_at_first = len(prefilled) if prefilled_at_first is None else prefilled_at_first
    expected, _ = plain_answers
    assert_same([streamed[i] for i in range(len(icl_prompts))], expected)
    assert fast.counts == EngineCounts(fast_prompts=len(icl_prompts), fallback_prompts=0,
                                       rows=rows_in_flight or len(set(icl_prompts)))
    distinct = len({tuple(fast._prompt_ids(p)) for p in icl_prompts})
    if rows_in_flight == 3:  # the first answers came while later prompts still waited for a row
        assert prefilled_at_first < distinct == len(prefilled)


@pytest.mark.parametrize("method", ["generate", "generate_each"])
def test_a_model_that_bypasses_our_attention_gets_the_batched_paths_answers(
        engines, icl_prompts, stopped_params, plain_answers, method, monkeypatch):
    _, fast = engines
    fast = FastICLGenerator(fast.model, fast.tokenizer, "tiny")

    def bypassed(*args, **kwargs):
        raise AttentionNotDispatched("found on the first forward pass")

    monkeypatch.setattr(fast, "_forward", bypassed)
    if method == "generate":
        outputs = fast.generate(icl_prompts, stopped_params)
    else:
        streamed = dict(fast.generate_each(icl_prompts, stopped_params))
        outputs = [streamed[i] for i in range(len(icl_prompts))]
    expected, _ = plain_answers
    assert_same(outputs, expected)
    assert (fast.counts.fast_prompts, fast.counts.fallback_prompts) == (0, len(icl_prompts))
    assert not fast._fast_path_applies(stopped_params)  # later calls go straight to the batched path


def test_the_batched_path_streams_too(engines, icl_prompts):
    plain, _ = engines
    params = SamplingParams(max_new_tokens=4)
    streamed = dict(plain.generate_each(icl_prompts, params, batch_size=4))
    assert sorted(streamed) == list(range(len(icl_prompts)))
    assert [streamed[i].text for i in range(len(icl_prompts))] == [o.text for o in plain.generate(icl_prompts, params)]


def test_sampling_and_zero_tokens_fall_back_to_the_batched_path(engines, icl_prompts):
    plain, fast = engines
    before = replace(fast.counts)
    sampled = SamplingParams(max_new_tokens=8, temperature=0.9, seed=3)
    assert [o.text for o in fast.generate(icl_prompts, sampled, batch_size=4)] == [
        o.text for o in plain.generate(icl_prompts, sampled, batch_size=4)
    ]
    empty = fast.generate(icl_prompts[:2], SamplingParams(max_new_tokens=0))
    assert [(o.text, o.n_generated_tokens) for o in empty] == [("", 0), ("", 0)]
    assert fast.counts == replace(before, fallback_prompts=before.fallback_prompts + len(icl_prompts) + 2)


def test_bfloat16_runs_and_matches_its_plain_loop(tiny_model_dir, icl_prompts):
    fast = FastICLGenerator.load(tiny_model_dir, dtype="bfloat16")
    plain = HFGenerator(fast.model, fast.tokenizer, "tiny")
    params = SamplingParams(max_new_tokens=12, stop=STUDENT_STOP)
    assert_same(fast_answers(fast, icl_prompts[:6], params), plain_loop(plain, icl_prompts[:6], params))


# ---- the vLLM backend without vLLM -------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install(tiny_model_dir):
    import arte_core.models.vllm_backend  # noqa: F401  (the module itself imports without vLLM)

    with pytest.raises(ArteError, match=r"pip install .*vllm.*--backend transformers"):
        load_generator(tiny_model_dir, backend="vllm")


# ---- SmolLM2 ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_fast_engine_matches_batched_generate(smollm2_path):
    task = BUILTIN_TASKS["boolean_expressions"](0)
    prompts = [icl_prompt(e.input, e.rationale, e.answer, q.input)
               for e in task.exemplars[:2] for q in task.examples[:6]]
    batched = transformers_as_shipped(HFGenerator.load(smollm2_path))
    fast = FastICLGenerator(batched.model, batched.tokenizer, "smollm2")
    params = SamplingParams(max_new_tokens=96, stop=STUDENT_STOP)
    assert_same(fast_answers(fast, prompts, params), batched.generate(prompts, params, batch_size=8))
