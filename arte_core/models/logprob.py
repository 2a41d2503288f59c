"""Teacher-forced log-probabilities of short answers after long shared prompts (`score.metric:
answer_logprob`).

`answer_logprobs(generator, contexts, answers)` returns, per row, the sum of the log-probabilities of
the answer's tokens given its context (and their count, so the per-token mean too). The answer is
tokenized on its own and appended to the context's tokens (as `HFGenerator.loglikelihood` and
lm-evaluation-harness do), so a leading space belongs to the answer: context "… So the answer is",
answer " True".

One forward pass scores a row: no decoding. The rows of one call usually share a long token prefix
(one draft as the demo of every preference question), so on the transformers backend that prefix is run
once and its key/value cache reused by every row: the rows then run only their own suffix (the question,
the cue and the answer), left-padded, with positions continuing after the prefix. The result equals a
plain forward pass over the whole text up to float rounding (tests/test_logprob.py checks it against a
hand-computed log_softmax sum). Other backends go through their `loglikelihood`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import DynamicCache

from arte_core.errors import ArteError
from arte_core.models.fast import cache_keyword

# Rows in one forward pass after the shared prefix: their logits are kept only over the answer tokens,
# so memory grows with the rows' suffixes (a question of a few dozen tokens), not with the vocabulary.
ROWS_PER_FORWARD = 16


@dataclass(frozen=True)
class AnswerLogprob:
    """log P(answer | context) summed over the answer's `n_tokens` tokens."""

    total: float
    n_tokens: int

    @property
    def per_token(self) -> float:
        return self.total / self.n_tokens


def answer_logprobs(generator, contexts: Sequence[str], answers: Sequence[str],
                    rows_per_forward: int = ROWS_PER_FORWARD) -> list[AnswerLogprob]:
    """Teacher-forced log P(answers[i] | contexts[i]) for every row, in row order."""
    if len(contexts) != len(answers):
        raise ArteError("answer_logprobs needs one answer per context.")
    if not contexts:
        return []
    if hasattr(generator, "model") and hasattr(generator, "tokenizer"):
        return _transformers_logprobs(generator, contexts, answers, max(1, rows_per_forward))
    # Another backend (vLLM): its own loglikelihood, with the answer's tokens counted alike.
    totals = generator.loglikelihood(list(contexts), list(answers))
    counts = [len(generator.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    return [AnswerLogprob(float(t), n) for t, n in zip(totals, counts)]


def _answer_ids(tokenizer, answer: str) -> list[int]:
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ArteError(f"the answer {answer!r} has no tokens to score.")
    return ids


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own (the position whose
    logits predict its answer's first token)."""
    shortest = min(len(r) for r in rows)
    length = 0
    while length < shortest - 1 and all(r[length] == rows[0][length] for r in rows):
        length += 1
    return length


def _transformers_logprobs(generator, contexts, answers, rows_per_forward: int) -> list[AnswerLogprob]:
    model, tokenizer = generator.model, generator.tokenizer
    encoded = [generator.encode(c) for c in contexts]
    if any(not ids for ids in encoded):
        raise ArteError("an empty context has nothing to condition an answer on.")
    answer_ids = [_answer_ids(tokenizer, a) for a in answers]
    prefix_length = common_prefix_length(encoded)
    device = next(model.parameters()).device
    out: list[AnswerLogprob] = []
    with torch.inference_mode():
        prefix_cache = None
        if prefix_length:
            prefix_cache = DynamicCache(config=model.config)
            prefix = torch.tensor([encoded[0][:prefix_length]], dtype=torch.long, device=device)
            model(input_ids=prefix, use_cache=True, logits_to_keep=1, **{cache_keyword(model): prefix_cache})
        for start in range(0, len(encoded), rows_per_forward):
            rows = range(start, min(start + rows_per_forward, len(encoded)))
            out += _score_rows(generator, prefix_cache, prefix_length,
                               [encoded[i][prefix_length:] for i in rows], [answer_ids[i] for i in rows])
    return out


def _score_rows(generator, prefix_cache, prefix_length: int, suffixes: list[list[int]],
                answers: list[list[int]]) -> list[AnswerLogprob]:
    """One forward pass of left-padded (suffix + answer) rows after the shared prefix's cache."""
    ids, mask = generator._left_pad([s + a for s, a in zip(suffixes, answers)])
    n_rows, width = ids.shape
    # Positions continue after the prefix and skip the padding, as if each row were one unpadded text.
    positions = prefix_length + (mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(len(a) for a in answers) + 1
    kwargs = {}
    if prefix_cache is not None:
        kwargs[cache_keyword(generator.model)] = _repeated(prefix_cache, n_rows, generator.model.config)
        mask = torch.cat([torch.ones((n_rows, prefix_length), dtype=mask.dtype, device=mask.device), mask], dim=1)
    logits = generator.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=prefix_cache is not None,
                             logits_to_keep=keep, **kwargs).logits[:, -keep:]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    results = []
    for row, answer in enumerate(answers):
        # the logits at a position predict the next token: the answer's tokens are the row's last ones
        predicted = logprobs[row, keep - 1 - len(answer): keep - 1]
        target = torch.tensor(answer, device=predicted.device).unsqueeze(-1)
        results.append(AnswerLogprob(float(predicted.gather(-1, target).sum()), len(answer)))
    return results


def _repeated(cache, n_rows: int, config):
    """A fresh cache holding the prefix's keys and values once per row (the forward pass appends to it,
    so every batch gets its own copy)."""
    copy = DynamicCache(config=config)
    for layer_index, layer in enumerate(cache.layers):
        copy.update(layer.keys.expand(n_rows, -1, -1, -1).contiguous(),
                    layer.values.expand(n_rows, -1, -1, -1).contiguous(), layer_index)
    return copy
