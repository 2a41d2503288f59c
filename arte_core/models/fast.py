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

import contextlib
import inspect
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer

from arte_core.models.base import Generation, ProgressCallback, SamplingParams, has_stop
from arte_core.models.hf import HFGenerator

# Rows decoded together when the caller asks for fewer: a small model's decode-step matrix products
# run far below the machine's speed at few rows (SmolLM2-135M, float32, 2 cores: 141 GFLOP/s at 64
# rows, 200 at 256, vs 290 for a large matmul), so wider batches are nearly free tokens; 256 rows
# scored a chunk 1.5x faster than 64 (docs/benchmarks.md). KV_CACHE_BYTES caps it for larger models.
MIN_ROWS_IN_FLIGHT = 256

# Memory the rows' own key/value caches may take (shared prefixes are stored once and not counted).
KV_CACHE_BYTES = 4 * 2**30

# Refill only once this share of the rows has finished: a refill is a prefill forward pass of its
# own, and refilling one row at a time would spend more on small prefills than it wins back.
REFILL_SHARE = 0.25

# Row slots' token columns beyond the longest row a call can have: the cache window is copied back
# to column 0 at most once per this many decode steps.
GROW_COLUMNS = 64

# A separate prefix forward pass costs about as much fixed overhead as prefilling this many tokens.
PREFIX_CALL_COST_TOKENS = 32

# Deeper prefix trees are cut here (their runs share the enclosing prefix) to bound the recursion.
_MAX_PREFIX_NESTING = 200

# generation_config settings that change greedy choices; the fast path does not apply them.
_GREEDY_CHANGING_SETTINGS = (
    "min_new_tokens", "min_length", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
    "no_repeat_ngram_size", "forced_bos_token_id", "forced_eos_token_id", "sequence_bias",
)

_ATTENTION = "arte_shared_prefix"  # our attention, registered with transformers below

# Attention variants `shared_prefix_attention` does not implement; a model passing them falls back.
_UNSUPPORTED_ATTENTION_OPTIONS = ("softcap", "sliding_window", "s_aux", "position_bias")


# ---- grouping prompts by shared token prefix ------------------------------------------------


@dataclass
class PrefixGroup:
    """Sequences (indices into the list grouped) that share their first `prefix_len` tokens."""

    prefix_len: int
    members: list[int]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens two sequences share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_prefix_groups(sequences: Sequence[Sequence[int]]) -> list[PrefixGroup]:
    """Group distinct sequences so that each group's shared prefix is computed once.

    Sorted sequences form a tree of shared prefixes (runs of neighbours sharing more tokens than
    their parent run). A run gets its own prefix only when that saves more prefill than it costs;
    otherwise its members use the parent's shorter prefix. Every member keeps at least one token
    after its prefix, because the model needs an input to produce the first new token.
    """
    if not sequences:
        return []
    order = sorted(range(len(sequences)), key=lambda i: list(sequences[i]))
    neighbour_lcp = [common_prefix_len(sequences[a], sequences[b]) for a, b in zip(order, order[1:])]
    groups: list[tuple[int, list[int]]] = []
    root_depth = min(neighbour_lcp, default=len(sequences[order[0]]))
    leftovers = _place_run(order, neighbour_lcp, 0, len(order), root_depth, groups, nesting=0)
    groups.append((root_depth, leftovers))
    return [
        PrefixGroup(min(depth, min(len(sequences[m]) for m in members) - 1), members)
        for depth, members in groups
        if members
    ]


def _place_run(order, neighbour_lcp, lo: int, hi: int, depth: int, groups: list, nesting: int) -> list[int]:
    """Give the sub-runs of order[lo:hi] (which share `depth` tokens) their own groups where worth it;
    return the members left to use a prefix of `depth` tokens or shorter."""
    if hi - lo == 1 or nesting >= _MAX_PREFIX_NESTING:
        return list(order[lo:hi])
    leftovers: list[int] = []
    for child_lo, child_hi in _sub_runs(neighbour_lcp, lo, hi, depth):
        if child_hi - child_lo == 1:
            leftovers.append(order[child_lo])
            continue
        child_depth = min(neighbour_lcp[child_lo : child_hi - 1])
        members = _place_run(order, neighbour_lcp, child_lo, child_hi, child_depth, groups, nesting + 1)
        if _own_prefix_pays(len(members), child_depth, depth):
            groups.append((child_depth, members))
        else:
            leftovers += members
    return leftovers


def _sub_runs(neighbour_lcp: list[int], lo: int, hi: int, depth: int) -> list[tuple[int, int]]:
    """Split order[lo:hi] where neighbours share only `depth` tokens."""
    runs, start = [], lo
    for k in range(lo, hi - 1):
        if neighbour_lcp[k] == depth:
            runs.append((start, k + 1))
            start = k + 1
    runs.append((start, hi))
    return runs


def _own_prefix_pays(n_members: int, depth: int, parent_depth: int) -> bool:
    """A prefix of `depth` tokens computed once instead of the parent's saves this much prefill."""
    saved = n_members * (depth - parent_depth) - depth
    return saved > PREFIX_CALL_COST_TOKENS


# ---- attention over a shared prefix plus each row's own tokens -----------------------------------


@dataclass
class SharedPrefix:
    """One prefix's per-layer (keys, values), each (1, kv_heads, prefix_len, head_dim)."""

    length: int
    layers: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class RowLayout:
    """How the batch's rows are laid out, passed to the model as a keyword and read by
    `shared_prefix_attention`: which rows (a slice or an index tensor, and how many) continue which
    shared prefix (rows outside every segment have none) and, when decoding, this step's windows of
    the rows' own caches in the row slots and their mask (None in a prefill: the rows' keys/values
    then come to the attention as its arguments)."""

    segments: list[tuple[slice | torch.Tensor, int, SharedPrefix]]
    own: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer (keys, values) windows
    own_mask: torch.Tensor | None = None  # (rows, window width) bool
    calls: int = 0  # attention calls seen, to detect a model that bypasses our attention

    @staticmethod
    def prefix_segments(prefixes: list[SharedPrefix | None]) -> list[tuple[slice | torch.Tensor, int, SharedPrefix]]:
        """Segments from each row's prefix: a slice where a prefix's rows are consecutive, else their indices."""
        groups: dict[int, tuple[SharedPrefix, list[int]]] = {}
        for row, prefix in enumerate(prefixes):
            if prefix is not None:
                groups.setdefault(id(prefix), (prefix, []))[1].append(row)
        segments = []
        for prefix, rows in groups.values():
            consecutive = rows[-1] - rows[0] + 1 == len(rows)
            selection = slice(rows[0], rows[-1] + 1) if consecutive else torch.tensor(rows)
            segments.append((selection, len(rows), prefix))
        return segments


def shared_prefix_attention(module, query, key, value, attention_mask, scaling=None, row_layout=None, **kwargs):
    """Attention of each row's queries over its shared prefix and its own cached tokens.

    query (batch, heads, q_len, dim). In a prefill, key/value (batch, kv_heads, own_len, dim) are the
    rows' own tokens and attention_mask (batch, 1, q_len, own_len) bool is True where a query may look;
    in a decode step both come from `row_layout.own` and `own_mask`. The
    prefix part is one matrix product per segment against a single copy of the prefix (instead of
    reading a copy per row); the two parts are merged by their log-sum-exp, which is exact softmax algebra.
    """
    row_layout.calls += 1
    if any(kwargs.get(name) is not None for name in _UNSUPPORTED_ATTENTION_OPTIONS):
        raise AttentionNotDispatched(f"{type(module).__name__} uses attention options this engine lacks")
    batch, heads, q_len, dim = query.shape
    scaling = scaling if scaling is not None else dim**-0.5
    kv_heads = key.shape[1]
    group = heads // kv_heads  # query head h reads kv head h // group, as in transformers' repeat_kv
    queries = query.float().reshape(batch, kv_heads, group * q_len, dim)
    if row_layout.own is None:
        mask = attention_mask[:, :, None].expand(batch, 1, group, q_len, -1).reshape(batch, 1, group * q_len, -1)
        out, lse = _attend(queries, key.float(), value.float(), mask, scaling)
    else:  # a decode step: one query per row, so a row's mask is the same for all its query heads
        own_keys, own_values = row_layout.own[module.layer_idx]
        out, lse = _attend(queries, own_keys.float(), own_values.float(), row_layout.own_mask[:, None, None, :],
                           scaling)
    for selection, rows, prefix in row_layout.segments:
        prefix_keys, prefix_values = prefix.layers[module.layer_idx]
        grouped = queries[selection].transpose(0, 1).reshape(kv_heads, rows * group * q_len, dim)
        prefix_out, prefix_lse = _attend(grouped, prefix_keys[0].float(), prefix_values[0].float(), None, scaling)
        prefix_out = prefix_out.reshape(kv_heads, rows, group * q_len, dim).transpose(0, 1)
        prefix_lse = prefix_lse.reshape(kv_heads, rows, group * q_len, 1).transpose(0, 1)
        out[selection], lse[selection] = _merge(out[selection], lse[selection], prefix_out, prefix_lse)
    out = out.reshape(batch, heads, q_len, dim).transpose(1, 2).contiguous()
    return out.to(query.dtype), None


def _attend(queries, keys, values, mask, scaling):
    """Softmax attention and its log-sum-exp; a query with nothing to look at gets 0 and -inf."""
    scores = torch.matmul(queries, keys.transpose(-1, -2)) * scaling
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    peak = scores.amax(dim=-1, keepdim=True).nan_to_num(neginf=0.0)  # 0 where all is masked: exp gives 0s
    weights = torch.exp(scores - peak)
    total = weights.sum(dim=-1, keepdim=True)
    out = torch.matmul(weights, values) / total.clamp_min(torch.finfo(total.dtype).tiny)
    return out, peak + torch.log(total)


def _merge(out_a, lse_a, out_b, lse_b):
    """Combine two attention results over disjoint key sets by their log-sum-exps."""
    lse = torch.logaddexp(lse_a, lse_b)
    return out_a * torch.exp(lse_a - lse) + out_b * torch.exp(lse_b - lse), lse


AttentionInterface.register(_ATTENTION, shared_prefix_attention)


@contextlib.contextmanager
def _our_attention(model):
    """Route the model's attention through `shared_prefix_attention` for the calls inside."""
    previous = model.config._attn_implementation
    model.config._attn_implementation = _ATTENTION
    try:
        yield
    finally:
        model.config._attn_implementation = previous


class AttentionNotDispatched(RuntimeError):
    """The model computes attention itself, so the engine cannot add the shared prefix."""


# ---- the rows' own key/value cache -------------------------------------------------------------


class RowSlots:
    """The rows in flight's own keys/values (after any shared prefix): per layer one key and one value
    buffer of `capacity` row slots × `columns` token columns, (slots, kv_heads, columns, head_dim).

    Rows live in slots [0, rows). Every row's tokens end at column `end` (right-aligned) and row r's
    begin at `starts[r]`, so attention reads the window [first, end) with a mask from `starts`. A
    finished row's slot takes the last row (only that row is copied), admitted rows are written into
    free slots, and a decode step writes one column: no step copies the whole cache, except a move of
    the window when it reaches the right edge (once per GROW_COLUMNS steps at most).
    """

    def __init__(self, capacity: int, columns: int):
        self.capacity, self.columns = capacity, columns
        self.stores: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.starts = torch.zeros(capacity, dtype=torch.long)
        self.rows = 0
        self.end = 0

    @property
    def first(self) -> int:
        return int(self.starts[: self.rows].min()) if self.rows else self.end

    @property
    def width(self) -> int:
        return self.end - self.first

    def windows(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, views of the rows' (keys, values) in the window [first, end)."""
        first = self.first
        return [(keys[: self.rows, :, first : self.end], values[: self.rows, :, first : self.end])
                for keys, values in self.stores]

    def window_mask(self) -> torch.Tensor:
        """(rows, width) bool: True on each row's own tokens, False left of them."""
        columns = torch.arange(self.first, self.end, device=self.starts.device)
        return columns[None, :] >= self.starts[: self.rows, None]

    def admit(self, keys_values: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor) -> None:
        """Write prefilled rows into free slots: per layer (added, kv_heads, width, head_dim) keys and
        values, left-padded as `mask` (added, width) says."""
        added, width = mask.shape
        if not self.stores:
            self.stores = [(k.new_empty(self._shape(k)), v.new_empty(self._shape(v))) for k, v in keys_values]
            self.starts = self.starts.to(mask.device)
        if self.end < width:
            self._move_window(end_at=width)
        low, high = self.rows, self.rows + added
        start, first = self.end - width, self.first
        for (key_store, value_store), (keys, values) in zip(self.stores, keys_values):
            key_store[low:high, :, start : self.end] = keys
            value_store[low:high, :, start : self.end] = values
            # the window's columns left of a row's tokens are masked, but a masked NaN or inf left in
            # fresh memory would still poison the weighted sum (0 * inf), so they must hold zeros
            for store in (key_store, value_store):
                store[:low, :, start:first] = 0
                store[low:high, :, first:start] = 0
        self.starts[low:high] = self.end - mask.sum(dim=-1)
        self.rows = high

    def open_column(self) -> None:
        """Room for one more token per row at column `end - 1`, which the decode step writes per layer."""
        if self.end == self.columns:
            if self.width == self.columns:
                raise ValueError(f"a row outgrew its {self.columns} cache columns")  # sized by _GreedyRun
            self._move_window(end_at=self.width)
        self.end += 1

    def write_last_column(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        key_store, value_store = self.stores[layer]
        key_store[: self.rows, :, self.end - 1 : self.end] = keys
        value_store[: self.rows, :, self.end - 1 : self.end] = values

    def remove(self, finished: set[int]) -> list[int]:
        """Free the finished rows' slots, moving the last live rows into those below the new row count.
        Returns, for each slot now in use, the index its row had before."""
        kept = self.rows - len(finished)
        holes = [r for r in sorted(finished) if r < kept]
        movers = [r for r in range(kept, self.rows) if r not in finished]
        order = list(range(kept))
        if holes:
            first = self.first
            to, source = torch.tensor(holes), torch.tensor(movers)
            for key_store, value_store in self.stores:
                key_store[to, :, first : self.end] = key_store[source, :, first : self.end]
                value_store[to, :, first : self.end] = value_store[source, :, first : self.end]
            self.starts[to] = self.starts[source]
            for hole, mover in zip(holes, movers):
                order[hole] = mover
        self.rows = kept
        return order

    def _shape(self, tensor: torch.Tensor) -> tuple[int, int, int, int]:
        return (self.capacity, tensor.shape[1], self.columns, tensor.shape[3])

    def _move_window(self, end_at: int) -> None:
        """Copy the live window into fresh buffers so that it ends at column `end_at`."""
        first, width = self.first, self.width
        moved = []
        for key_store, value_store in self.stores:
            new_keys, new_values = key_store.new_empty(key_store.shape), value_store.new_empty(value_store.shape)
            new_keys[: self.rows, :, end_at - width : end_at] = key_store[: self.rows, :, first : self.end]
            new_values[: self.rows, :, end_at - width : end_at] = value_store[: self.rows, :, first : self.end]
            moved.append((new_keys, new_values))
        self.stores = moved
        self.starts[: self.rows] += end_at - self.end
        self.end = end_at


class SlotLayer(DynamicLayer):
    """One layer of the decode cache: writes each step's new keys/values into the row slots.

    `update` returns the new token's keys/values unchanged; `shared_prefix_attention` reads the whole
    window through the views in the RowLayout, which see the column written here.
    """

    def __init__(self, slots: RowSlots, layer: int):
        super().__init__()
        self.slots, self.layer = slots, layer
        keys, values = slots.stores[layer]
        self.lazy_initialization(keys[:, :, :0], values[:, :, :0])

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.slots.write_last_column(self.layer, key_states, value_states)
        return key_states, value_states

    def get_seq_length(self) -> int:
        return self.slots.width


def slots_cache(config, slots: RowSlots) -> DynamicCache:
    """A transformers cache whose layers write into `slots`."""
    cache = DynamicCache(config=config)
    cache.layers = [SlotLayer(slots, layer) for layer in range(len(slots.stores))]
    return cache


# ---- rows being decoded ------------------------------------------------------------------------


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


def key_value_width(config) -> int:
    """Numbers per token per layer in the keys (or the values): key/value heads × head size."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (getattr(config, "num_key_value_heads", None) or config.num_attention_heads) * head_dim


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes one token's keys and values take over all layers."""
    return 2 * config.num_hidden_layers * key_value_width(config) * torch.finfo(dtype).bits // 8


def rows_within_memory(config, dtype: torch.dtype, row_tokens: int, budget_bytes: int) -> int:
    """How many rows of `row_tokens` cached tokens each fit their keys and values in `budget_bytes`;
    at least one."""
    return max(1, budget_bytes // (kv_bytes_per_token(config, dtype) * max(1, row_tokens)))


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
            with _our_attention(self.model):
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
