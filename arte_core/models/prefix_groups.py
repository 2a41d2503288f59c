"""Grouping prompts by shared token prefix: which prompts share a demo prefix that is worth computing once.

Scoring prompts differ mostly in their last tokens (a long demo, then a short question). The groups
say which prefix each prompt's rows will attend to; a group gets its own prefix only when computing
it once saves more prefill than the extra forward pass costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# A separate prefix forward pass costs about as much fixed overhead as prefilling this many tokens.
PREFIX_CALL_COST_TOKENS = 32

# Deeper prefix trees are cut here (their runs share the enclosing prefix) to bound the recursion.
_MAX_PREFIX_NESTING = 200


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
