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
from typing import Sequence

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

# Refill only once this share of the rows has finished: every refill copies the batch's cache, so
# refilling one row at a time would spend more on copies and small prefills than it wins back.
REFILL_SHARE = 0.25

# Spare token columns a row cache allocates at a time (one reallocation every this many steps).
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
class PrefixSegments:
    """Which consecutive rows of the batch (start, end) continue which shared prefix; rows outside
    every segment have no prefix. Passed to the model as a keyword, read by `shared_prefix_attention`."""

    segments: list[tuple[int, int, SharedPrefix]]
    calls: int = 0  # attention calls seen, to detect a model that bypasses our attention

    @classmethod
    def of_rows(cls, prefixes: list[SharedPrefix | None]) -> "PrefixSegments":
        """Segments from each row's prefix (rows of one prefix are consecutive in the batch)."""
        segments, start = [], 0
        for end in range(1, len(prefixes) + 1):
            if end == len(prefixes) or prefixes[end] is not prefixes[start]:
                if prefixes[start] is not None:
                    segments.append((start, end, prefixes[start]))
                start = end
        return cls(segments)


def shared_prefix_attention(module, query, key, value, attention_mask, scaling=None, prefix_segments=None,
                            **kwargs):
    """Attention of each row's queries over its shared prefix and its own cached tokens.

    query (batch, heads, q_len, dim); key/value (batch, kv_heads, own_len, dim): only the row's own
    tokens; attention_mask (batch, 1, q_len, own_len) bool, True where a query may look. The prefix
    part is one matrix product per segment against a single copy of the prefix (instead of reading a
    copy per row); the two parts are merged by their log-sum-exp, which is exact softmax algebra.
    """
    prefix_segments.calls += 1
    if any(kwargs.get(name) is not None for name in _UNSUPPORTED_ATTENTION_OPTIONS):
        raise AttentionNotDispatched(f"{type(module).__name__} uses attention options this engine lacks")
    batch, heads, q_len, dim = query.shape
    scaling = scaling if scaling is not None else dim**-0.5
    kv_heads = key.shape[1]
    group = heads // kv_heads  # query head h reads kv head h // group, as in transformers' repeat_kv
    queries = query.float().reshape(batch, kv_heads, group * q_len, dim)
    mask = attention_mask[:, :, None].expand(batch, 1, group, q_len, -1).reshape(batch, 1, group * q_len, -1)
    out, lse = _attend(queries, key.float(), value.float(), mask, scaling)
    for start, end, prefix in prefix_segments.segments:
        prefix_keys, prefix_values = prefix.layers[module.layer_idx]
        rows = end - start
        grouped = queries[start:end].transpose(0, 1).reshape(kv_heads, rows * group * q_len, dim)
        prefix_out, prefix_lse = _attend(grouped, prefix_keys[0].float(), prefix_values[0].float(), None, scaling)
        prefix_out = prefix_out.reshape(kv_heads, rows, group * q_len, dim).transpose(0, 1)
        prefix_lse = prefix_lse.reshape(kv_heads, rows, group * q_len, 1).transpose(0, 1)
        out[start:end], lse[start:end] = _merge(out[start:end], lse[start:end], prefix_out, prefix_lse)
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


def _pad_left(mask: torch.Tensor, width: int) -> torch.Tensor:
    """A (rows, columns) mask padded with False on the left to `width` columns."""
    return torch.nn.functional.pad(mask, (max(0, width - mask.shape[-1]), 0))


def _cache_from_tensors(config, keys_values: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A DynamicCache holding the given per-layer (keys, values), growing in place as tokens are added."""
    return _cache_from_stores(config, [(_with_room(k), _with_room(v), k.shape[-2]) for k, v in keys_values])


def _cache_from_stores(config, stores: list[tuple[torch.Tensor, torch.Tensor, int]]) -> DynamicCache:
    """A DynamicCache over per-layer (key store, value store, used columns) buffers, taken as they are."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(keys, values, used) for keys, values, used in stores]
    return cache


class GrowingLayer(DynamicLayer):
    """A DynamicLayer that writes new columns into spare room of a larger buffer.

    DynamicLayer concatenates a new tensor at every step, which copies the whole batch cache once
    per decoded token. `keys`/`values` are views of the first `used` columns of the stores.
    """

    def __init__(self, key_store: torch.Tensor, value_store: torch.Tensor, used: int):
        super().__init__()
        self.lazy_initialization(key_store[:, :, :used], value_store[:, :, :used])
        self._used = used
        self._key_store, self._value_store = key_store, value_store
        self._expose()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        added = key_states.shape[-2]
        if self._used + added > self._key_store.shape[-2]:
            self._key_store, self._value_store = _with_room(self.keys, added), _with_room(self.values, added)
        self._key_store[:, :, self._used : self._used + added] = key_states
        self._value_store[:, :, self._used : self._used + added] = value_states
        self._used += added
        self._expose()
        return self.keys, self.values

    def _expose(self) -> None:
        self.keys = self._key_store[:, :, : self._used]
        self.values = self._value_store[:, :, : self._used]


def _with_room(tensor: torch.Tensor, needed: int = 0) -> torch.Tensor:
    """A copy of a (batch, heads, tokens, dim) tensor with room for `needed` + GROW_COLUMNS more tokens.

    The room is left uninitialised: a column is exposed only after `update` writes it."""
    batch, heads, tokens, dim = tensor.shape
    store = tensor.new_empty((batch, heads, tokens + needed + GROW_COLUMNS, dim))
    store[:, :, :tokens] = tensor
    return store


def _right_aligned(parts: list[torch.Tensor], width: int) -> torch.Tensor:
    """(rows, heads, width + GROW_COLUMNS, dim) holding the parts' rows one after another, each part's
    tokens ending at column `width`, zeros on their left: one copy of each part, nothing else."""
    first = parts[0]
    rows = sum(part.shape[0] for part in parts)
    store = first.new_empty((rows, first.shape[1], width + GROW_COLUMNS, first.shape[3]))
    start = 0
    for part in parts:
        end, pad = start + part.shape[0], width - part.shape[2]
        store[start:end, :, :pad] = 0
        store[start:end, :, pad:width] = part
        start = end
    return store


class KVBatch:
    """The rows' own tokens' keys/values (after any shared prefix), right-aligned: each row's tokens
    end at the last column; `mask` (rows, columns) is True on real tokens, False on left padding."""

    def __init__(self, config, keys_values: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor):
        self.config = config
        self.cache = _cache_from_tensors(config, keys_values)
        self.mask = mask

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    def layer_tensors(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in self.cache.layers]

    def extend(self, other: "KVBatch") -> None:
        """Append `other`'s rows, padding whichever side is narrower on the left."""
        width = max(self.width, other.width)
        stores = [
            (_right_aligned([k, k2], width), _right_aligned([v, v2], width), width)
            for (k, v), (k2, v2) in zip(self.layer_tensors(), other.layer_tensors())
        ]
        self.cache = _cache_from_stores(self.config, stores)
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(other.mask, width)])

    def keep(self, rows: list[int]) -> None:
        """Drop every row not listed, then the leading columns no remaining row uses."""
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        used = self.mask[index].any(dim=0).nonzero()
        first = int(used[0]) if len(used) else self.width
        # index the whole stores, spare room included: one copy per tensor, and the room comes along
        stores = [(layer._key_store[index, :, first:], layer._value_store[index, :, first:], layer._used - first)
                  for layer in self.cache.layers]
        self.cache = _cache_from_stores(self.config, stores)
        self.mask = self.mask[index, first:]


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


class FastICLGenerator(HFGenerator):
    """HFGenerator whose greedy `generate` shares prefix caches and refills its batch as rows finish.

    `rows_in_flight` (default: the caller's batch_size, at least MIN_ROWS_IN_FLIGHT) bounds how many
    prompts decode together.
    """

    def __init__(self, model, tokenizer, name: str, rows_in_flight: int | None = None):
        super().__init__(model, tokenizer, name)
        self.rows_in_flight = rows_in_flight
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
        if not self._fast_path_applies(params):
            return super().generate(prompts, params, batch_size=batch_size, progress=progress)
        try:
            return self._generate_greedy(prompts, params, batch_size, progress)
        except AttentionNotDispatched:
            self._attention_dispatched = False  # found on the first forward pass, before any progress
            return super().generate(prompts, params, batch_size=batch_size, progress=progress)

    def _generate_greedy(self, prompts, params, batch_size, progress) -> list[Generation]:
        encoded = [self._prompt_ids(p) for p in prompts]
        distinct, sequence_of = _deduplicate(encoded)
        copies = [0] * len(distinct)
        for s in sequence_of:
            copies[s] += 1
        report = (lambda s: progress(copies[s])) if progress is not None else None
        rows = self.rows_in_flight or max(batch_size, MIN_ROWS_IN_FLIGHT)
        with torch.inference_mode():
            outputs = _GreedyRun(self, distinct, params, rows, report).complete()
        # each prompt gets its own Generation, so a caller editing one cannot change its duplicates
        return [replace(outputs[s], extra=dict(outputs[s].extra)) for s in sequence_of]

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

    def prefill_suffixes(self, prefix: SharedPrefix | None, suffixes: list[list[int]]) -> tuple[KVBatch, list[int]]:
        """Run the suffixes (left-padded) after a shared prefix; their own cache rows and first tokens."""
        ids, mask = self._left_pad(suffixes)
        mask = mask.bool()
        offset = prefix.length if prefix is not None else 0
        positions = offset + (mask.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones((ids.shape[1], ids.shape[1]), dtype=torch.bool, device=self.device).tril()
        segments = PrefixSegments([(0, len(suffixes), prefix)] if prefix is not None else [])
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(ids, causal[None, None] & mask[:, None, None, :], positions, cache, segments)
        tensors = [(layer.keys, layer.values) for layer in cache.layers]
        return KVBatch(self.model.config, tensors, mask), logits.argmax(dim=-1).tolist()

    def decode_step(self, batch: KVBatch, prefixes: list[SharedPrefix | None], tokens: list[int],
                    positions: list[int]) -> list[int]:
        """Feed one token per row; returns each row's greedy next token and grows the cache by one column."""
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device).unsqueeze(1)
        position_ids = torch.tensor(positions, dtype=torch.long, device=self.device).unsqueeze(1)
        batch.mask = torch.nn.functional.pad(batch.mask, (0, 1), value=True)
        logits = self._forward(ids, batch.mask[:, None, None, :], position_ids, batch.cache,
                               PrefixSegments.of_rows(prefixes))
        return logits.argmax(dim=-1).tolist()

    def _forward(self, ids, mask4d, positions, cache, segments: PrefixSegments) -> torch.Tensor:
        """The last position's logits, with attention through `shared_prefix_attention`."""
        try:
            with _our_attention(self.model):
                logits = self.model(
                    input_ids=ids, attention_mask=mask4d, position_ids=positions, use_cache=True,
                    logits_to_keep=1, prefix_segments=segments, **{self._cache_keyword: cache},
                ).logits[:, -1]
        except TypeError as error:  # a forward without **kwargs cannot pass the segments on
            if "prefix_segments" not in str(error):
                raise
            raise AttentionNotDispatched(type(self.model).__name__) from error
        if segments.calls == 0:
            raise AttentionNotDispatched(type(self.model).__name__)
        return logits


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
    """One greedy `generate` call: admits waiting prompts group by group, decodes, retires rows.

    Rows of one prefix group are admitted together and appended at the end of the batch, and
    retiring rows keeps the order, so each group's rows stay consecutive (what PrefixSegments needs).
    """

    def __init__(self, engine: FastICLGenerator, sequences: list[list[int]], params: SamplingParams,
                 rows_in_flight: int, report):
        self.engine = engine
        self.sequences = sequences
        self.params = params
        self.report = report
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
        self.capacity = max(1, min(rows_in_flight, fit))
        self.prefixes: dict[tuple[int, ...], SharedPrefix] = {}
        self.rows: list[_Row] = []
        self.batch: KVBatch | None = None
        self.results: list[Generation | None] = [None] * len(sequences)

    def complete(self) -> list[Generation]:
        while self.waiting or self.rows:
            if self._should_refill():
                self._admit()
            if self.rows:
                self._step()
        return self.results  # type: ignore[return-value]

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
        joined, first_tokens = self.engine.prefill_suffixes(prefix, suffixes)
        if not (self.waiting and self._front_prefix() == prefix_tokens):
            self.prefixes.pop(prefix_tokens, None)  # rows in flight keep it alive; the run needs it no more
        if self.batch is None:
            self.batch = joined
        else:
            self.batch.extend(joined)
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
            self.batch,
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
            self.results[row.sequence] = self.engine._finish(
                row.prompt, row.new, row.stop_at, self.end_ids, self.params
            )
            if self.report is not None:
                self.report(row.sequence)
        keep = [r for r in range(len(self.rows)) if r not in finished]
        self.rows = [self.rows[r] for r in keep]
        if keep:
            self.batch.keep(keep)
        else:
            self.batch = None
