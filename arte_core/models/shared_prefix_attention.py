"""Attention over a shared prefix plus each row's own tokens, registered with transformers.

Rows that continue the same prefix read one stored copy of its keys/values (a matrix product over the
group's queries) and merge it with attention over their own tokens by log-sum-exp. `RowLayout` tells
the attention, per forward pass, which rows continue which prefix; a model that does not route its
attention through transformers' registry raises `AttentionNotDispatched`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from transformers import AttentionInterface

_ATTENTION = "arte_shared_prefix"  # our attention, registered with transformers below

# Attention variants `shared_prefix_attention` does not implement; a model passing them falls back.
_UNSUPPORTED_ATTENTION_OPTIONS = ("softcap", "sliding_window", "s_aux", "position_bias")


class AttentionNotDispatched(RuntimeError):
    """The model computes attention itself, so the engine cannot add the shared prefix."""


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
def our_attention(model):
    """Route the model's attention through `shared_prefix_attention` for the calls inside."""
    previous = model.config._attn_implementation
    model.config._attn_implementation = _ATTENTION
    try:
        yield
    finally:
        model.config._attn_implementation = previous
