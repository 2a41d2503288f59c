"""The fast greedy engine for ICL scoring: shared-prefix KV reuse and continuously refilled batches.

Scoring sends many prompts that differ only in their last few tokens (one long demo, then a short
question). `FastICLGenerator` computes each distinct prompt once and the key/value cache of every
shared token prefix once; the rows of a prefix group attend to that one copy (a matrix product over
the group's queries, merged with each row's own suffix by log-sum-exp), and the batch of rows is
refilled as rows finish. Greedy answers match the plain per-prompt loop up to float rounding (see
docs/benchmarks.md). Sampling, and models whose cache or attention the engine cannot drive, use
`HFGenerator`.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from arte_core.models.base import Generation, ProgressCallback, SamplingParams, has_stop
from arte_core.models.hf import HFGenerator
from arte_core.models.prefix_groups import shared_prefix_groups
from arte_core.models.row_slots import GROW_COLUMNS, RowSlots, rows_within_memory, slots_cache
from arte_core.models.shared_prefix_attention import AttentionNotDispatched, RowLayout, SharedPrefix, our_attention

# Rows decoded together when the caller asks for fewer: at few rows a small model's decode-step
# matrix products run far below the machine's matmul speed, so wider batches add tokens for little
# extra time (measured in docs/benchmarks.md). KV_CACHE_BYTES caps it for larger models.
MIN_ROWS_IN_FLIGHT = 256

# Memory the rows' own key/value caches may take (shared prefixes are stored once and not counted).
KV_CACHE_BYTES = 4 * 2**30

# Refill only once this share of the rows has finished: a refill is a prefill forward pass of its
# own, and refilling one row at a time would spend more on small prefills than it wins back.
REFILL_SHARE = 0.25

# generation_config settings that change greedy choices; the fast path does not apply them.
_GREEDY_CHANGING_SETTINGS = (
    "min_new_tokens", "min_length", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
    "no_repeat_ngram_size", "forced_bos_token_id", "forced_eos_token_id", "sequence_bias",
)


def cache_keyword(model) -> str:
    """The forward argument that takes a cache: `cache` since transformers 5.2x, `past_key_values` before.

    The old name still works in between but warns, and goes in 5.40; our pin admits both sides.
    """
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@dataclass
class EngineCounts:
    """What a FastICLGenerator did, summed over its calls: the prompts it answered on the fast path and
    those it handed to HFGenerator (sampling, or a model whose attention it cannot drive), which give
    the same greedy answers, only slower; and the rows its latest fast call could decode together."""

    fast_prompts: int = 0
    fallback_prompts: int = 0
    rows: int = 0


class FastICLGenerator(HFGenerator):
    """HFGenerator whose greedy `generate` shares prefix caches and refills its batch as rows finish.

    `rows_in_flight` (default: the caller's batch_size, at least MIN_ROWS_IN_FLIGHT) bounds how many
    prompts decode together. Like HFGenerator, it computes on packed weights unless `pack_weights=False`.
    `counts` says which path the prompts took.
    """

    def __init__(self, model, tokenizer, name: str, rows_in_flight: int | None = None, pack_weights: bool = True):
        super().__init__(model, tokenizer, name, pack_weights=pack_weights)
        self.rows_in_flight = rows_in_flight
        self.counts = EngineCounts()
        self._attention_dispatched = True  # until a model shows otherwise
        self._cache_keyword = cache_keyword(model)

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Complete every prompt; greedy decoding takes the fast path, sampling the HFGenerator one."""
        results: list[Generation | None] = [None] * len(prompts)
        for index, generation in self.generate_each(prompts, params, batch_size=batch_size):
            results[index] = generation
            if progress is not None:
                progress(1)
        return results  # type: ignore[return-value]

    def generate_each(
        self, prompts: Sequence[str], params: SamplingParams, batch_size: int = 8
    ) -> Iterator[tuple[int, Generation]]:
        """(prompt index, generation) pairs as rows finish; the batch is refilled from later prompts."""
        if not self._fast_path_applies(params):
            yield from self._fallback_each(prompts, params, batch_size)
            return
        try:
            yield from self._greedy_each(prompts, params, batch_size)
        except AttentionNotDispatched:
            self._attention_dispatched = False  # found on the first forward pass, before any yield
            yield from self._fallback_each(prompts, params, batch_size)

    def _fallback_each(self, prompts, params, batch_size) -> Iterator[tuple[int, Generation]]:
        for index, generation in super().generate_each(prompts, params, batch_size=batch_size):
            self.counts.fallback_prompts += 1
            yield index, generation

    def _greedy_each(self, prompts, params, batch_size) -> Iterator[tuple[int, Generation]]:
        """(prompt index, generation) for every prompt with the text of each distinct prompt that finishes."""
        encoded = [self._prompt_ids(p) for p in prompts]
        distinct, sequence_of = _deduplicate(encoded)
        indices_of: list[list[int]] = [[] for _ in distinct]
        for i, s in enumerate(sequence_of):
            indices_of[s].append(i)
        run = _GreedyRun(self, distinct, params, self.rows_in_flight or max(batch_size, MIN_ROWS_IN_FLIGHT))
        for s, generation in run.finished():
            self.counts.rows = run.capacity  # once an answer came from this path
            for i in indices_of[s]:
                self.counts.fast_prompts += 1
                yield i, _own_copy(generation)

    def _fast_path_applies(self, params: SamplingParams) -> bool:
        """Greedy decoding on a model whose cache layers are plain key/value tensors."""
        if params.temperature > 0 or params.max_new_tokens <= 0 or not self._attention_dispatched:
            return False
        config = self.model.generation_config
        if any(getattr(config, name, None) for name in _GREEDY_CHANGING_SETTINGS):
            return False
        layers = DynamicCache(config=self.model.config).layers
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    # ---- model calls -------------------------------------------------------------------------

    def prefill_prefix(self, tokens: list[int]) -> SharedPrefix:
        """The keys/values of one shared prefix (batch of one, no padding, the model's own attention)."""
        cache = DynamicCache(config=self.model.config)
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
        self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_keyword: cache})
        return SharedPrefix(len(tokens), [(layer.keys, layer.values) for layer in cache.layers])

    def prefill_suffixes(self, prefix: SharedPrefix | None, suffixes: list[list[int]]
                         ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, list[int]]:
        """Run the suffixes (left-padded) after a shared prefix: their own per-layer keys/values, their
        mask (True on real tokens) and each one's first generated token."""
        ids, mask = self._left_pad(suffixes)
        mask = mask.bool()
        offset = prefix.length if prefix is not None else 0
        positions = offset + (mask.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones((ids.shape[1], ids.shape[1]), dtype=torch.bool, device=self.device).tril()
        layout = RowLayout([(slice(0, len(suffixes)), len(suffixes), prefix)] if prefix is not None else [])
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(ids, causal[None, None] & mask[:, None, None, :], positions, cache, layout)
        return [(layer.keys, layer.values) for layer in cache.layers], mask, logits.argmax(dim=-1).tolist()

    def decode_step(self, slots: RowSlots, cache: DynamicCache, prefixes: list[SharedPrefix | None],
                    tokens: list[int], positions: list[int]) -> list[int]:
        """Feed one token per row; returns each row's greedy next token; `cache` (over `slots`) grows by
        one column."""
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device).unsqueeze(1)
        position_ids = torch.tensor(positions, dtype=torch.long, device=self.device).unsqueeze(1)
        slots.open_column()
        layout = RowLayout(RowLayout.prefix_segments(prefixes), slots.windows(), slots.window_mask())
        # the mask travels in the layout; this one only tells transformers a 4D mask is already made
        placeholder_mask = torch.ones((len(tokens), 1, 1, 1), dtype=torch.bool, device=self.device)
        logits = self._forward(ids, placeholder_mask, position_ids, cache, layout)
        return logits.argmax(dim=-1).tolist()

    def _forward(self, ids, mask4d, positions, cache, layout: RowLayout) -> torch.Tensor:
        """The last position's logits, with attention through `shared_prefix_attention`."""
        try:
            with our_attention(self.model):
                logits = self.model(
                    input_ids=ids, attention_mask=mask4d, position_ids=positions, use_cache=True,
                    logits_to_keep=1, row_layout=layout, **{self._cache_keyword: cache},
                ).logits[:, -1]
        except TypeError as error:  # a forward without **kwargs cannot pass the layout on
            if "row_layout" not in str(error):
                raise
            raise AttentionNotDispatched(type(self.model).__name__) from error
        if layout.calls == 0:
            raise AttentionNotDispatched(type(self.model).__name__)
        return logits


def _own_copy(generation: Generation) -> Generation:
    """Each prompt gets its own Generation, so a caller editing one cannot change its duplicates."""
    return replace(generation, extra=dict(generation.extra))


def _deduplicate(encoded: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The distinct token sequences, and for each input the index of its distinct sequence."""
    index: dict[tuple[int, ...], int] = {}
    distinct: list[list[int]] = []
    sequence_of = []
    for ids in encoded:
        key = tuple(ids)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(ids)
        sequence_of.append(index[key])
    return distinct, sequence_of


@dataclass
class _Row:
    """One distinct prompt in flight: its tokens so far and when a stop string appeared."""

    sequence: int  # index into the distinct prompts
    prompt: list[int]
    prefix: SharedPrefix | None
    new: list[int] = field(default_factory=list)
    stop_at: int | None = None

    @property
    def next_position(self) -> int:
        """Position id of the newest token, which is the next input."""
        return len(self.prompt) + len(self.new) - 1


class _GreedyRun:
    """One greedy `generate` call: admits waiting prompts group by group into free row slots, decodes,
    retires rows as they finish (a retired row's slot takes the last row, so a prefix group's rows need
    not stay consecutive: RowLayout finds each group's rows per step)."""

    def __init__(self, engine: FastICLGenerator, sequences: list[list[int]], params: SamplingParams,
                 rows_in_flight: int):
        self.engine = engine
        self.sequences = sequences
        self.params = params
        self.end_ids = set(engine._eos_ids) | set(engine._special_stop_ids(params))
        self.stops = [s for s in params.stop if s]
        self.waiting = deque(
            (group.prefix_len, member)
            for group in shared_prefix_groups(sequences)
            for member in sorted(group.members, key=lambda m: -len(sequences[m]))
        )
        # a row caches its own suffix and new tokens (plus one growth block); shared prefixes are stored once
        row_tokens = max((len(sequences[m]) - p for p, m in self.waiting), default=0) + params.max_new_tokens
        fit = rows_within_memory(engine.model.config, engine.model.dtype, row_tokens + GROW_COLUMNS, KV_CACHE_BYTES)
        self.capacity = max(1, min(rows_in_flight, fit, len(sequences)))
        self.slots = RowSlots(self.capacity, row_tokens + GROW_COLUMNS)
        self.cache: DynamicCache | None = None  # made on the first admission, when the slots exist
        self.prefixes: dict[tuple[int, ...], SharedPrefix] = {}
        self.rows: list[_Row] = []
        self.just_finished: list[tuple[int, Generation]] = []

    def finished(self) -> Iterator[tuple[int, Generation]]:
        """(sequence index, generation) of each sequence as its row finishes, until all are done."""
        linears = self.engine.packed_linears()
        while self.waiting or self.rows:
            # neither is held across a yield: the caller's code runs with the model as it was
            with torch.inference_mode(), linears.installed():
                if self._should_refill():
                    self._admit()
                if self.rows:
                    self._step()
            yield from self.just_finished
            self.just_finished = []

    def _should_refill(self) -> bool:
        free = self.capacity - len(self.rows)
        return bool(self.waiting) and (not self.rows or free >= max(1, int(self.capacity * REFILL_SHARE)))

    # ---- admitting -------------------------------------------------------------------------

    def _admit(self) -> None:
        """Prefill as many waiting prompts as there are free rows, one prefix group at a time."""
        free = self.capacity - len(self.rows)
        while free > 0 and self.waiting:
            prefix = self._front_prefix()
            members = self._pop_members(prefix, free)
            free -= len(members)
            self._admit_members(prefix, members)

    def _front_prefix(self) -> tuple[int, ...]:
        prefix_len, member = self.waiting[0]
        return tuple(self.sequences[member][:prefix_len])

    def _pop_members(self, prefix: tuple[int, ...], limit: int) -> list[int]:
        """Up to `limit` waiting prompts at the front of the queue that share `prefix`."""
        members = []
        while self.waiting and len(members) < limit and self._front_prefix() == prefix:
            members.append(self.waiting.popleft()[1])
        return members

    def _admit_members(self, prefix_tokens: tuple[int, ...], members: list[int]) -> None:
        prefix = self._shared_prefix(prefix_tokens)
        suffixes = [self.sequences[m][len(prefix_tokens):] for m in members]
        keys_values, mask, first_tokens = self.engine.prefill_suffixes(prefix, suffixes)
        if not (self.waiting and self._front_prefix() == prefix_tokens):
            self.prefixes.pop(prefix_tokens, None)  # rows in flight keep it alive; the run needs it no more
        self.slots.admit(keys_values, mask)
        if self.cache is None:
            self.cache = slots_cache(self.engine.model.config, self.slots)
        self.rows += [_Row(m, self.sequences[m], prefix) for m in members]
        self._take(list(range(len(self.rows) - len(members), len(self.rows))), first_tokens)

    def _shared_prefix(self, tokens: tuple[int, ...]) -> SharedPrefix | None:
        if not tokens:
            return None
        if tokens not in self.prefixes:
            self.prefixes[tokens] = self.engine.prefill_prefix(list(tokens))
        return self.prefixes[tokens]

    # ---- decoding ----------------------------------------------------------------------------

    def _step(self) -> None:
        next_tokens = self.engine.decode_step(
            self.slots,
            self.cache,
            [row.prefix for row in self.rows],
            [row.new[-1] for row in self.rows],
            [row.next_position for row in self.rows],
        )
        self._take(list(range(len(self.rows))), next_tokens)

    def _take(self, row_indices: list[int], tokens: list[int]) -> None:
        """Append each row's new token, then retire the rows that finished."""
        for r, token in zip(row_indices, tokens):
            self.rows[r].new.append(token)
        finished = {r for r in row_indices if self._finished(self.rows[r])}
        if finished:
            self._retire(finished)

    def _finished(self, row: _Row) -> bool:
        """True once EOS, a stop string or the token limit ends the row (the plain loop's rules)."""
        if row.new[-1] in self.end_ids or len(row.new) >= self.params.max_new_tokens:
            return True
        if self.stops and self._has_stop(row.new):
            row.stop_at = len(row.new)
            return True
        return False

    def _has_stop(self, new: list[int]) -> bool:
        return has_stop(self.engine.tokenizer.decode(new, skip_special_tokens=True), self.stops)

    def _retire(self, finished: set[int]) -> None:
        for r in sorted(finished):
            row = self.rows[r]
            generation = self.engine._finish(row.prompt, row.new, row.stop_at, self.end_ids, self.params)
            self.just_finished.append((row.sequence, generation))
        self.rows = [self.rows[r] for r in self.slots.remove(finished)]
