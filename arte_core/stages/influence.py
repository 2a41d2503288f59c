"""Step 2, alternative signal: Montessori-Instruct's local data influence of each draft on the student.

From a (optionally warmed-up) student state, one optimizer step (batch 1) on a single draft — its
question and rationale as a student training example — changes the student's mean loss on a reference
set; `influence = loss_after - loss_before`, so negative = the draft helps, and the pair score is
`-influence`. The original code reloads weights and optimizer state from disk for every probe; the
`InfluenceProbe` here clones the trainable parameters and optimizer state once and restores them in
place after each probe, bit-identically.

Choices the paper leaves open (documented in the config help):
- a draft's training example is `prompts.sft_example` (what the student SFT stage trains on);
- a reference item is the zero-shot prompt `few_shot_prompt(task, input, [])` with the completion
  " So the answer is {target}." — the answer sentence every worked example ends with, since preference
  items carry no rationale;
- loss = mean cross-entropy over completion tokens (prompt masked, EOS appended, as TRL's SFT does);
  the reference loss is the mean of per-item losses, so it does not depend on the batch size;
- the model stays in eval mode (no dropout; LoRA dropout 0), so probes are deterministic;
- AdamW without weight decay and without gradient clipping: a probe measures the draft's gradient only;
- the probes run on a CUDA GPU when torch sees one (`influence.device`), else on the CPU.

Each probe also stores every reference item's loss before and after (`influence_items`, in the
same transaction as its score), so the signal's split-half reliability can be computed.

Resumable: rows commit in small batches; drafts already scored for (run, student) are skipped.
"""

from __future__ import annotations

import random
import time

import torch

from dataclasses import dataclass

from arte_core.config import InfluenceConfig, check_section
from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import few_shot_prompt, sft_example
from arte_core.store import signals, utcnow


ROWS_PER_COMMIT = 8  # a killed run loses at most this many probes
IGNORE = -100  # label of a token that carries no loss (prompt, padding)


def check_config(cfg: InfluenceConfig) -> None:
    """Refuse settings the probe cannot run with, naming the field (the config's generic check)."""
    check_section("influence", cfg)


# -- examples ---------------------------------------------------------------------------------------


def draft_example(task, draft: dict) -> dict:
    """A draft as the student would be trained on it: prompt and worked-answer completion."""
    return sft_example(task, draft["question"], draft["text"], draft.get("answer") or draft["target"])


def reference_example(task, item: dict) -> dict:
    """A preference item as a reference example (it has no rationale: the answer sentence only)."""
    return {"prompt": few_shot_prompt(task, item["input"], []), "completion": f" So the answer is {item['target']}."}


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: token ids and labels (IGNORE on the prompt)."""

    input_ids: list[int]
    labels: list[int]


def encode(tokenizer, prompt: str, completion: str, max_length: int) -> Encoded:
    """Token ids of prompt + completion + EOS with the prompt masked, as TRL's SFT tokenizes them."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token or ""
    text = prompt + completion
    full_ids = tokenizer(text if text.endswith(eos) else text + eos, add_special_tokens=True)["input_ids"]
    n_prompt = _common_prefix(prompt_ids, full_ids)
    labels = [IGNORE] * n_prompt + full_ids[n_prompt:]
    # Cut from the start: the completion is what carries the loss, the far prompt matters least.
    return Encoded(full_ids[-max_length:], labels[-max_length:])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def batch_tensors(rows: list[Encoded], pad_id: int) -> dict:
    """Left-padded tensors, so every completion ends at the last position and the logits of the
    final `keep` positions cover all supervised tokens; positions count real tokens only."""
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, width - n:] = torch.tensor(row.input_ids)
        labels[i, width - n:] = torch.tensor(row.labels)
        mask[i, width - n:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    supervised = (labels != IGNORE).long()
    first = torch.where(supervised.any(-1), supervised.argmax(-1), torch.full((len(rows),), width - 1))
    keep = int(width - first.min().item() + 1)  # logits from the token before the first label on
    return dict(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels, keep=min(keep, width))


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on `device` (a no-op where they already are)."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def per_item_loss(model, batch: dict) -> torch.Tensor:
    """Mean cross-entropy over each row's supervised tokens: shape (rows,)."""
    batch = to_device(batch, model_device(model))
    keep = batch["keep"]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=keep).logits
    targets = batch["labels"][:, -keep + 1:] if keep > 1 else batch["labels"][:, :0]
    logits = logits[:, :-1].float()
    token_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(targets.shape)
    counts = (targets != IGNORE).sum(-1).clamp(min=1)
    return token_loss.sum(-1) / counts


def reference_batches(reference: list[Encoded], pad_id: int, batch_size: int) -> list[dict]:
    """The reference set as padded batches, built once and reused by every probe."""
    return [batch_tensors(reference[i:i + batch_size], pad_id) for i in range(0, len(reference), batch_size)]


def reference_item_losses(model, batches: list[dict]) -> list[float]:
    """The loss of each reference item, in reference order."""
    losses: list[float] = []
    with torch.no_grad():
        for batch in batches:
            losses += per_item_loss(model, batch).double().tolist()
    return losses


def reference_loss(model, batches: list[dict]) -> float:
    """Mean per-item loss over the reference set (every item weighs the same, whatever the batching)."""
    losses = reference_item_losses(model, batches)
    return sum(losses) / len(losses)


# -- the student ------------------------------------------------------------------------------------


def probe_device(cfg: InfluenceConfig) -> torch.device:
    """The device `cfg.device` names; 'auto' takes a CUDA GPU when torch sees one."""
    if cfg.device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if cfg.device == "cuda":
        raise ArteError("config field 'influence.device' is 'cuda' but torch sees no CUDA device here; "
                        "use 'auto' or 'cpu'.")
    return torch.device("cpu")


def prepare_student(model, cfg: InfluenceConfig):
    """The model on the probe's device with only the probe's parameters trainable (LoRA adapters, or
    everything)."""
    model = model.to(probe_device(cfg))
    if cfg.mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r, lora_dropout=0.0,
                          target_modules="all-linear", task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    return model.eval()  # no dropout anywhere: the same draft always gives the same influence


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(params: list[torch.nn.Parameter], cfg: InfluenceConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)


def train_step(model, optimizer: torch.optim.Optimizer, example: Encoded, pad_id: int) -> float:
    """One optimizer step at batch 1 on `example`; returns its loss before the step."""
    optimizer.zero_grad(set_to_none=False)  # reuse the gradient buffers: no allocation per probe
    loss = per_item_loss(model, batch_tensors([example], pad_id))[0]
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def warm_up(model, optimizer: torch.optim.Optimizer, examples: list[Encoded], steps: int, pad_id: int,
            bar=None) -> list[float]:
    """Fine-tune at batch 1 over `examples` (cycling) for `steps` steps (0 = one pass); returns losses."""
    n_steps = steps or len(examples)
    losses = []
    for step in range(n_steps if examples else 0):
        losses.append(train_step(model, optimizer, examples[step % len(examples)], pad_id))
        if bar:
            bar.update(1)
    return losses


# -- the probe --------------------------------------------------------------------------------------


class InfluenceProbe:
    """One student state kept in memory: probe a draft, then put the state back exactly.

    The snapshot (trainable parameters and optimizer state) is cloned once at construction; after
    every probe the parameters and optimizer tensors are copied back in place, so any number of
    probes leaves them bit-identical to the snapshot. Optimizer entries absent from the snapshot
    (a fresh Adam creates its moments on the first step) are dropped again, which is exactly the
    fresh state.
    """

    def __init__(self, model, optimizer: torch.optim.Optimizer, reference: list[Encoded], pad_id: int,
                 reference_batch_size: int = 8):
        if not reference:
            raise ArteError("the influence probe needs at least one reference item.")
        self.model, self.optimizer, self.pad_id = model, optimizer, pad_id
        self.params = trainable_parameters(model)
        device = model_device(model)  # the reference batches move there once, not per probe
        self.reference = [to_device(b, device) for b in reference_batches(reference, pad_id, reference_batch_size)]
        self.n_reference = len(reference)
        self.saved_params = [p.detach().clone() for p in self.params]
        self.saved_state = _clone_state(optimizer)
        # The same for every probe from this state.
        self.item_losses_before = reference_item_losses(model, self.reference)
        self.loss_before = sum(self.item_losses_before) / self.n_reference

    def reference_loss(self) -> float:
        return reference_loss(self.model, self.reference)

    def probe(self, example: Encoded) -> tuple[float, float]:
        """(loss_before, loss_after) of one step on `example`; the state is restored afterwards."""
        _, after = self.probe_items(example)
        return self.loss_before, sum(after) / len(after)

    def probe_items(self, example: Encoded) -> tuple[list[float], list[float]]:
        """Each reference item's loss before and after one step on `example` (state restored after)."""
        try:
            train_step(self.model, self.optimizer, example, self.pad_id)
            after = reference_item_losses(self.model, self.reference)
        finally:
            self.restore()
        return self.item_losses_before, after

    def restore(self) -> None:
        """Copy the snapshot back into the live tensors (no reallocation of parameters or moments)."""
        with torch.no_grad():
            for param, saved in zip(self.params, self.saved_params):
                param.copy_(saved)
        _restore_state(self.optimizer, self.saved_state)
        self.optimizer.zero_grad(set_to_none=False)


def _clone_state(optimizer: torch.optim.Optimizer) -> dict:
    return {param: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in state.items()}
            for param, state in optimizer.state.items() if state}


def _restore_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    for param in list(optimizer.state):
        if param not in saved:
            del optimizer.state[param]  # created by the probe step: a fresh optimizer has none
            continue
        state, snap = optimizer.state[param], saved[param]
        for key in [k for k in state if k not in snap]:
            del state[key]
        for key, value in snap.items():
            if torch.is_tensor(value) and torch.is_tensor(state.get(key)) and state[key].shape == value.shape:
                state[key].copy_(value)  # Adam's step counter, exp_avg, exp_avg_sq: in place
            else:
                state[key] = value.clone() if torch.is_tensor(value) else value


def pad_token_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def build_probe(model, tokenizer, cfg: InfluenceConfig, reference: list[dict],
                warmup: list[dict] = (), bar=None) -> InfluenceProbe:
    """Prepare the student, warm it up on `warmup` examples, and snapshot that state."""
    check_config(cfg)
    model = prepare_student(model, cfg)
    optimizer = build_optimizer(trainable_parameters(model), cfg)
    pad_id = pad_token_id(tokenizer)
    encoded = [encode(tokenizer, e["prompt"], e["completion"], cfg.max_length) for e in warmup]
    warm_up(model, optimizer, encoded, cfg.warmup_steps, pad_id, bar)
    ref = [encode(tokenizer, e["prompt"], e["completion"], cfg.max_length) for e in reference]
    return InfluenceProbe(model, optimizer, ref, pad_id, cfg.reference_batch_size)


# -- the stage --------------------------------------------------------------------------------------


def warmup_drafts(drafts: list[dict], fraction: float, seed: int) -> list[dict]:
    """A seeded sample of `fraction` of all drafts (independent of which are already probed, so a
    resumed run warms up to the same state)."""
    k = round(fraction * len(drafts))
    return random.Random(seed).sample(drafts, k) if k else []


def reference_items(ctx: RunContext, n_reference: int) -> list[dict]:
    items = ctx.pref_items
    return items[:n_reference] if n_reference else items


def run_influence(ctx: RunContext, student: str) -> dict:
    """Probe every draft not yet scored for `student`; returns what the stage records (`n_probed` now)."""
    cfg = ctx.config.influence
    check_config(cfg)
    probe_device(cfg)  # a missing GPU fails here, before the student loads
    drafts = ctx.store.rationales(ctx.run_id, "draft")
    done = signals.influenced_rationale_ids(ctx.store, ctx.run_id, student)
    todo = [d for d in drafts if d["rationale_id"] not in done]
    info: dict = {"n_probed": 0}
    if todo:
        info = _probe_drafts(ctx, student, cfg, drafts, todo)
    return info


def _probe_drafts(ctx: RunContext, student: str, cfg: InfluenceConfig, drafts: list[dict],
                  todo: list[dict]) -> dict:
    from arte_core.models import load_causal_lm

    ctx.models.clear()  # the probe trains its own copy of the student
    torch.manual_seed(ctx.config.seed)  # LoRA initialisation: a resumed run rebuilds the same state
    model, tokenizer = load_causal_lm(student, trust_remote_code=ctx.config.trust_remote_code)
    items = reference_items(ctx, cfg.n_reference)
    reference = [reference_example(ctx.task, item) for item in items]
    warm = [draft_example(ctx.task, d) for d in warmup_drafts(drafts, cfg.warmup_fraction, ctx.config.seed)]
    if warm:
        with ctx.reporter.bar(f"influence warm-up ({student})", cfg.warmup_steps or len(warm)) as bar:
            probe = build_probe(model, tokenizer, cfg, reference, warm, bar)
    else:
        probe = build_probe(model, tokenizer, cfg, reference)
    start = time.perf_counter()
    pending: list[dict] = []
    pending_items: list[dict] = []
    with ctx.reporter.bar(f"influence ({student})", len(todo)) as bar:
        for draft in todo:
            example = draft_example(ctx.task, draft)
            before, after = probe.probe_items(encode(tokenizer, example["prompt"], example["completion"], cfg.max_length))
            pending.append(_score_row(ctx, draft, student, cfg, probe.n_reference, before, after))
            pending_items += [dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id,
                                   item_index=item["item_index"], loss_before=b, loss_after=a)
                              for item, b, a in zip(items, before, after)]
            if len(pending) >= ROWS_PER_COMMIT:
                signals.add_influence_scores(ctx.store, pending, pending_items)
                pending, pending_items = [], []
            bar.update(1)
        signals.add_influence_scores(ctx.store, pending, pending_items)
    seconds = time.perf_counter() - start
    return {"n_probed": len(todo), "mode": cfg.mode, "n_reference": probe.n_reference, "n_warmup": len(warm),
            "loss_before": probe.loss_before, "seconds_per_probe": seconds / len(todo)}


def _score_row(ctx: RunContext, draft: dict, student: str, cfg: InfluenceConfig, n_reference: int,
               item_before: list[float], item_after: list[float]) -> dict:
    # Means of the per-item losses: the same numbers `probe` gives, and the mean of the stored items.
    before, after = sum(item_before) / len(item_before), sum(item_after) / len(item_after)
    return dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id, loss_before=before,
                loss_after=after, influence=after - before, mode=cfg.mode, learning_rate=cfg.learning_rate,
                n_reference=n_reference, created_at=utcnow())
