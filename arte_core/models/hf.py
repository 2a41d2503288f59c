"""The transformers backend: batched left-padded generation, stop strings and log-likelihoods.

On CPU, each generate call computes the float32 linear layers on MKL-packed copies of their weights
(`models/packed.py`): the same answers, faster (docs/benchmarks.md has the measurements).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from arte_core.config import DTYPES
from arte_core.errors import ArteError
from arte_core.models.base import Generation, ProgressCallback, SamplingParams, has_stop, truncate_at_stop
from arte_core.models.packed import PACKED_WEIGHT_BYTES, PackedLinears
from arte_core.models.registry import registry_names, resolve_model_path

_DTYPES = {name: getattr(torch, name) for name in DTYPES}  # the config fields' dtype choices


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for a dtype name the user may pass."""
    if name not in _DTYPES:
        raise ArteError(f"Unknown dtype {name!r}: use one of {', '.join(_DTYPES)}.")
    return _DTYPES[name]


def load_causal_lm(name: str, dtype: str = "float32", trust_remote_code: bool = False):
    """(model, tokenizer) for a registry name, local folder or Hub id; the tokenizer always has a pad token."""
    torch_type = torch_dtype(dtype)
    path = resolve_model_path(name)
    local = Path(path).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_type, trust_remote_code=trust_remote_code
        )
    except ArteError:
        raise
    except Exception as error:
        if local and not isinstance(error, (OSError, ValueError)):
            raise
        raise _load_error(name, path, local, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load_error(name: str, path: str, local: bool, error: Exception) -> ArteError:
    if local:
        return ArteError(f"Could not load the model folder {path}: {error}")
    return ArteError(
        f"Could not load model {name!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
        f"Pass a local model folder (with config.json) or a registry name ({', '.join(registry_names())})."
    )


def chat_prompt(tokenizer, user: str, system: str | None = None) -> str:
    """One user turn through the chat template (with the generation prompt), or plain text."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n\n{user}\n\n" if system else f"{user}\n\n"


class _StopStrings(StoppingCriteria):
    """Marks a row finished once its decoded new text contains a stop string; remembers when."""

    def __init__(self, tokenizer, stop: Sequence[str], prompt_len: int):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.prompt_len = prompt_len
        self.ended_at: dict[int, int] = {}  # row -> number of new tokens when its stop string appeared

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        n_new = input_ids.shape[1] - self.prompt_len
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        for row in range(input_ids.shape[0]):
            if row not in self.ended_at and self._has_stop(input_ids[row, self.prompt_len :]):
                self.ended_at[row] = n_new
            done[row] = row in self.ended_at
        return done.to(input_ids.device)

    def _has_stop(self, new_ids: torch.Tensor) -> bool:
        text = self.tokenizer.decode(new_ids.tolist(), skip_special_tokens=True)
        return has_stop(text, self.stop)


class HFGenerator:
    """A transformers causal LM behind the Generator protocol.

    `pack_weights=False` keeps transformers' plain linear layers (the benchmarks' baseline).
    """

    def __init__(self, model, tokenizer, name: str, pack_weights: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.pack_weights = pack_weights
        self._eos_ids = self._collect_eos_ids()
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else self._eos_ids[0] if self._eos_ids else 0

    @classmethod
    def load(cls, name: str, dtype: str = "float32", trust_remote_code: bool = False) -> "HFGenerator":
        """Load a registry name, local folder or Hub id."""
        model, tokenizer = load_causal_lm(name, dtype=dtype, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, name)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _collect_eos_ids(self) -> list[int]:
        ids: list[int] = []
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (configured, self.tokenizer.eos_token_id):
            for i in value if isinstance(value, (list, tuple)) else [value]:
                if i is not None and i not in ids:
                    ids.append(int(i))
        return ids

    # ---- prompts -------------------------------------------------------------------------

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        return chat_prompt(self.tokenizer, user, system)

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt; BOS is added only when the text does not already start with it."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special)["input_ids"]

    def _prompt_ids(self, text: str) -> list[int]:
        ids = self.encode(text)
        if not ids:  # a model needs at least one token to condition on
            start = self.tokenizer.bos_token_id
            ids = [start if start is not None else self._pad_id]
        return ids

    def _left_pad(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                input_ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
                mask[i, width - len(r) :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    # ---- generation ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Complete every prompt, longest first in batches; results are in prompt order."""
        results: list[Generation | None] = [None] * len(prompts)
        for rows, generations in self._batches(prompts, params, batch_size):
            for i, gen in zip(rows, generations):
                results[i] = gen
            if progress is not None:
                progress(len(rows))
        return results  # type: ignore[return-value]

    def generate_each(
        self, prompts: Sequence[str], params: SamplingParams, batch_size: int = 8
    ) -> Iterator[tuple[int, Generation]]:
        """(prompt index, generation) pairs, a batch at a time, longest prompts first."""
        for rows, generations in self._batches(prompts, params, batch_size):
            yield from zip(rows, generations)

    def packed_linears(self, needed: bool = True) -> PackedLinears:
        """Packed copies of the model's linear weights as they are now, for one call's forward passes
        (none with `pack_weights=False`, or when the call will not run the model). Packing costs about
        what one plain forward pass spends repacking, so any call of two or more passes gains."""
        return PackedLinears(self.model, PACKED_WEIGHT_BYTES if self.pack_weights and needed else 0)

    def _batches(self, prompts: Sequence[str], params: SamplingParams, batch_size: int
                 ) -> Iterator[tuple[list[int], list[Generation]]]:
        encoded = [self._prompt_ids(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        linears = self.packed_linears(needed=params.max_new_tokens > 0 and bool(order))
        for batch_index, start in enumerate(range(0, len(order), max(1, batch_size))):
            rows = order[start : start + max(1, batch_size)]
            yield rows, self._generate_batch([encoded[i] for i in rows], params, batch_index, linears)

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, batch_index: int,
                        linears: PackedLinears) -> list[Generation]:
        if params.max_new_tokens <= 0:
            return [Generation("", len(p), 0, False, {"finish": "length"}) for p in prompts]
        input_ids, mask = self._left_pad(prompts)
        stopper = _StopStrings(self.tokenizer, params.stop, input_ids.shape[1])
        criteria = StoppingCriteriaList([stopper]) if stopper.stop else None
        # the packed layers are installed per batch, not across the caller's code between batches
        with torch.inference_mode(), linears.installed(), self._seeded(params, batch_index):
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                stopping_criteria=criteria,
                **self._decode_kwargs(params),
            )
        new = out[:, input_ids.shape[1] :].tolist()
        end_ids = set(self._eos_ids) | set(self._special_stop_ids(params))
        return [
            self._finish(prompts[r], new[r], stopper.ended_at.get(r), end_ids, params)
            for r in range(len(prompts))
        ]

    def _decode_kwargs(self, params: SamplingParams) -> dict:
        """Explicit decoding settings, so the model's own generation_config cannot change them."""
        kwargs = dict(
            max_new_tokens=params.max_new_tokens,
            num_beams=1,
            repetition_penalty=1.0,
            pad_token_id=self._pad_id,
            eos_token_id=self._eos_ids + self._special_stop_ids(params) or None,
        )
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        return kwargs

    def _special_stop_ids(self, params: SamplingParams) -> list[int]:
        """Stop strings that are whole added/special tokens (skipped when decoding) end like EOS."""
        added = self.tokenizer.get_added_vocab()
        return [added[s] for s in params.stop if s in added and added[s] not in self._eos_ids]

    @contextlib.contextmanager
    def _seeded(self, params: SamplingParams, batch_index: int):
        """Seed sampling per batch (seed + batch index) without touching the caller's RNG state."""
        if params.temperature <= 0 or params.seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(params.seed + batch_index)
            yield

    def _finish(
        self, prompt: list[int], new: list[int], stop_at: int | None, end_ids: set[int], params: SamplingParams
    ) -> Generation:
        """Turn one row of new tokens into a Generation: cut at the stop/EOS, drop padding."""
        n = len(new) if stop_at is None else min(stop_at, len(new))
        eos_at = next((k for k, t in enumerate(new[:n]) if t in end_ids), None)
        if eos_at is not None:
            n = eos_at + 1
        text = self.tokenizer.decode(new[: eos_at if eos_at is not None else n], skip_special_tokens=True)
        text, found = truncate_at_stop(text, params.stop, params.include_stop)
        if eos_at is not None and not found:
            token = self.tokenizer.convert_ids_to_tokens(new[eos_at])
            if params.include_stop and token in params.stop:
                text += token
        finish = "stop" if found else "eos" if eos_at is not None else "length"
        return Generation(text, len(prompt), n, finish != "length", {"finish": finish})

    # ---- scoring -------------------------------------------------------------------------

    def loglikelihood(
        self, contexts: Sequence[str], continuations: Sequence[str], batch_size: int = 8
    ) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens given its context, batched."""
        if len(contexts) != len(continuations):
            raise ArteError("loglikelihood needs as many continuations as contexts.")
        pairs = [
            (self._prompt_ids(c), self.tokenizer(x, add_special_tokens=False)["input_ids"])
            for c, x in zip(contexts, continuations)
        ]
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        scores = [0.0] * len(pairs)
        for start in range(0, len(order), max(1, batch_size)):
            rows = [i for i in order[start : start + max(1, batch_size)] if pairs[i][1]]
            if rows:
                for i, s in zip(rows, self._loglikelihood_batch([pairs[i] for i in rows])):
                    scores[i] = s
        return scores

    def _loglikelihood_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        input_ids, mask = self._left_pad([ctx + cont for ctx, cont in pairs])
        keep = max(len(cont) for _, cont in pairs) + 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
            ).logits[:, -keep:]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for row, (_, cont) in enumerate(pairs):
            predicted = logprobs[row, keep - 1 - len(cont) : keep - 1]
            target = torch.tensor(cont, device=predicted.device).unsqueeze(-1)
            out.append(float(predicted.gather(-1, target).sum()))
        return out
