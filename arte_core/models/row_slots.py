"""The rows in flight's own key/value cache: preallocated row slots, the transformers cache layer that
writes into them, and how many rows' caches fit a memory budget."""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# Row slots' token columns beyond the longest row a call can have: the cache window is copied back
# to column 0 at most once per this many decode steps.
GROW_COLUMNS = 64


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
                raise ValueError(f"a row outgrew its {self.columns} cache columns")  # the caller sizes the columns
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
