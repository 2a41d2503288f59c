"""Step 2: collect preferences. Each (question, rationale) draft is the student's only demo; its
scores are the student's accuracy and balanced accuracy on the preference split, and every per-item
answer is kept with how it was read (arte_core/tasks/answers.py).

With `score.selection: irt` the preference items are chosen here first: a seeded pilot of drafts answers
every candidate item (open_run stored n_candidates of them), a 2PL model is fitted over pilot drafts ×
items (arte_core/irt.py), the n_pref most informative candidates are kept, and the pilot drafts are scored
on those from their stored answers; every other draft then answers only the selected items.

With `score.metric: answer_logprob` the stage also measures, per draft and preference item, the student's
teacher-forced log-probability of the item's target after the one-shot prompt and the answer cue
(`answer_context`), after the answers are generated: health compares the two metrics' reliability on the
same drafts, and pairs may rank on either. A run scored with accuracy alone gets only the
log-probabilities when asked again with the metric (no answer is regenerated); an accuracy-only run
computes none.

Resumable: a draft's score and items commit together, and so do its log-probabilities; scored drafts are never recomputed. A pilot
draft's answers commit together too, and the selection with the pilot's scores in one transaction, so a
kill after the pilot keeps its answers and a kill after the fit keeps the fit.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np

from arte_core.context import RunContext, seeded
from arte_core.irt import fit_2pl, most_informative
from arte_core.models import SamplingParams
from arte_core.models.logprob import answer_logprobs
from arte_core.prompts import STUDENT_STOP, answer_budget, icl_prompt
from arte_core.store import items as item_store
from arte_core.store import signals
from arte_core.store import utcnow
from arte_core.tasks import Task
from arte_core.tasks.answers import ParseMode, is_label_task, read_answer


# Prompts per generate call (whole drafts). The fast engine decodes up to 256 rows together, so a
# call of that many admits them all at once and then drains; one call of all prompts keeps the rows
# full by refilling them but pads each new row to the oldest row's width. The two measured the same
# within noise (docs/benchmarks.md), and smaller calls lose less to a kill; fewer prompts than rows would leave rows empty. A call
# streams its answers (`generate_each`): a draft's score commits as soon as its last answer is in,
# so a kill loses only the drafts in flight, which matters most for the slow plain engine.
PROMPTS_PER_CALL = 256


def student_prompt(generator, text: str, icl_format: str) -> str:
    return generator.chat_prompt(text) if icl_format == "chat" else text


def student_max_new_tokens(configured: int, task: Task, generator) -> int:
    """The configured answer budget, or (0) the task's own in this student's tokens."""
    if configured:
        return configured
    return answer_budget(task, lambda text: len(generator.tokenizer(text, add_special_tokens=False)["input_ids"]))


def balanced_accuracy(targets: list[str], correct: list[bool]) -> float:
    """The mean recall per label over the labels present in `targets`. Summed as exact fractions, so
    drafts with equal per-label counts get equal scores (and tie in the pairs) whatever the item order."""
    by_label: dict[str, list[int]] = {}
    for target, ok in zip(targets, correct):
        counts = by_label.setdefault(target, [0, 0])
        counts[0] += bool(ok)
        counts[1] += 1
    return float(sum(Fraction(hits, n) for hits, n in by_label.values()) / len(by_label))


def label_copy_rate(answers: list[str | None], demo_answer: str | None) -> float:
    """The share of items answered with the demo's own answer (unparsed answers are no copies)."""
    return sum(a is not None and a == demo_answer for a in answers) / len(answers)


def score_drafts(ctx: RunContext, student: str | None = None) -> int:
    """Score every unscored draft for `student` (default: the config's); returns how many were scored now
    (with an `irt` selection still to make, the pilot drafts count once their scores are stored)."""
    cfg = ctx.config.score
    student = student or ctx.config.student
    store = ctx.store
    drafts = store.rationales(ctx.run_id, "draft")
    n_pilot_scored = 0
    if cfg.selection == "irt" and drafts and not item_store.item_selection_made(store, ctx.run_id):
        n_pilot_scored = _select_items(ctx, student, drafts)
    items = ctx.pref_items
    done = store.scored_rationale_ids(ctx.run_id, student)
    todo = [r for r in drafts if r["rationale_id"] not in done]
    if todo:
        answer_drafts(ctx, student, todo, items, f"ICL scores ({student})",
                       lambda draft, answers: _store_draft_score(ctx, draft, student, items, answers))
    if cfg.metric == "answer_logprob":
        add_answer_logprobs(ctx, student)
    return n_pilot_scored + len(todo)


# The cue every demo rationale ends with before its answer (prompts.demo_block: "… So the answer is X.").
ANSWER_CUE = "So the answer is"


def answer_context(prompt: str, icl_format: str) -> str:
    """The text a preference item's target is scored after: the one-shot prompt exactly as the student
    gets it for generation (`student_prompt(icl_prompt(...))`, ending "A: Let's think step by step."),
    then the demo's answer cue, so the student states its answer at once, with no chain of its own. In
    the completion format the cue continues that line after a space; in the chat format it opens the
    assistant's turn. The target follows as " X" (answer_target), the demo's own "So the answer is X"."""
    return f"{prompt}{'' if icl_format == 'chat' else ' '}{ANSWER_CUE}"


def answer_target(target: str) -> str:
    return " " + str(target).strip()


def add_answer_logprobs(ctx: RunContext, student: str) -> int:
    """Measure the answer log-probability of every scored draft that has none yet, one draft's items per
    call (they share the draft as prefix, whose key/value cache is computed once); returns how many."""
    store, fmt = ctx.store, ctx.config.score.icl_format
    missing = signals.drafts_missing_answer_logprob(store, ctx.run_id, student)
    drafts = [r for r in store.rationales(ctx.run_id, "draft") if r["rationale_id"] in missing]
    if not drafts:
        return 0
    generator = ctx.models.student(student)
    items = ctx.pref_items
    targets = [answer_target(item["target"]) for item in items]
    with ctx.reporter.bar(f"answer log-probabilities ({student})", len(drafts)) as bar:
        for draft in drafts:
            contexts = [answer_context(student_prompt(generator, icl_prompt(draft["question"], draft["text"],
                                                                           demo_answer(draft), item["input"]), fmt), fmt)
                        for item in items]
            found = answer_logprobs(generator, contexts, targets)
            signals.add_answer_logprobs(store, student, draft["rationale_id"],
                                        {item["item_index"]: (lp.total, lp.per_token) for item, lp in zip(items, found)})
            bar.update(1)
    return len(drafts)


def answer_drafts(ctx: RunContext, student: str, drafts: list[dict], items: list[dict], title: str, keep) -> None:
    """Have the student answer every item with each draft as its demo; `keep(draft, outputs)` runs as soon
    as a draft's last answer is in."""
    cfg = ctx.config.score
    generator = ctx.models.student(student)
    batch_size = 1 if cfg.engine == "plain" else cfg.batch_size
    params = SamplingParams(max_new_tokens=student_max_new_tokens(cfg.max_new_tokens, ctx.task, generator),
                            temperature=0.0, stop=STUDENT_STOP)
    drafts_per_call = max(1, PROMPTS_PER_CALL // len(items))
    with ctx.reporter.bar(title, len(drafts)) as bar:
        for start in range(0, len(drafts), drafts_per_call):
            batch = drafts[start:start + drafts_per_call]
            prompts = [student_prompt(generator, icl_prompt(r["question"], r["text"], demo_answer(r),
                                                            item["input"]), cfg.icl_format)
                       for r in batch for item in items]
            answers: dict[int, list] = {}
            for index, output in generator.generate_each(prompts, params, batch_size=batch_size):
                d, item = divmod(index, len(items))
                answers.setdefault(d, [None] * len(items))[item] = output
                if all(answer is not None for answer in answers[d]):
                    keep(batch[d], answers.pop(d))
                    bar.update(1)


def pilot_drafts(drafts: list[dict], n: int, seed: int) -> list[dict]:
    """The `irt` pilot: `n` drafts drawn with the run's seed (all of them when there are fewer), in draft order."""
    if len(drafts) <= n:
        return list(drafts)
    chosen = set(random.Random(seeded(seed, 2)).sample(range(len(drafts)), n))
    return [draft for i, draft in enumerate(drafts) if i in chosen]


def _select_items(ctx: RunContext, student: str, drafts: list[dict]) -> int:
    """Answer the candidate items with the pilot drafts (resuming a killed pilot), fit the 2PL, keep the
    n_pref most informative candidates, and score the pilot drafts on them; returns the pilot's size."""
    cfg, store = ctx.config.score, ctx.store
    candidates = ctx.pref_items  # before the selection, the preference split is the whole candidate pool
    pilot = pilot_drafts(drafts, cfg.n_pilot_drafts, ctx.config.seed)
    answered = item_store.candidate_answered_ids(store, ctx.run_id, student)
    todo = [r for r in pilot if r["rationale_id"] not in answered]
    if todo:
        def keep(draft, outputs):
            rows = draft_item_rows(ctx, draft, student, candidates, outputs)
            item_store.add_candidate_answers(store, [dict(row, run_id=ctx.run_id) for row in rows])

        answer_drafts(ctx, student, todo, candidates, f"IRT pilot ({student}): all {len(candidates)} candidates", keep)
    by_draft: dict[str, dict[int, dict]] = {}
    for row in item_store.candidate_answers(store, ctx.run_id, student):
        by_draft.setdefault(row["rationale_id"], {})[row["item_index"]] = row
    indices = [c["item_index"] for c in candidates]
    correct = np.array([[by_draft[r["rationale_id"]][i]["correct"] for i in indices] for r in pilot], dtype=bool)
    fit = fit_2pl(correct)
    keep_positions = set(most_informative(fit.information, cfg.n_pref))
    selected = [c for k, c in enumerate(candidates) if k in keep_positions]
    now = utcnow()
    rows = [dict(run_id=ctx.run_id, item_index=c["item_index"], input=c["input"], target=c["target"],
                 selected=k in keep_positions, difficulty=_finite(fit.difficulty[k]),
                 discrimination=_finite(fit.discrimination[k]), information=float(fit.information[k]),
                 n_pilot=len(pilot), n_pilot_correct=int(correct[:, k].sum()), student=student, fit=fit.fit,
                 created_at=now)
            for k, c in enumerate(candidates)]
    scores, item_rows = [], []
    for draft in pilot:
        kept = [{key: value for key, value in by_draft[draft["rationale_id"]][c["item_index"]].items()
                 if key != "run_id"} for c in selected]
        scores.append(_score_row(ctx, draft, student, selected, kept))
        item_rows += kept
    item_store.apply_item_selection(store, ctx.run_id, rows, scores, item_rows)
    return len(pilot)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def demo_answer(draft: dict) -> str:
    """The answer the demo shows: the teacher's own, else the question's target."""
    return draft["answer"] or draft["target"]


def draft_item_rows(ctx: RunContext, draft: dict, student: str, items: list[dict], answers) -> list[dict]:
    task = ctx.task
    rows = []
    for item, out in zip(items, answers):
        reading = read_answer(task.answer_format, out.text, task.labels, finished=out.stopped)
        rows.append(dict(rationale_id=draft["rationale_id"], student=student, item_index=item["item_index"],
                         output=out.text, answer=reading.answer,
                         correct=task.is_correct(reading.answer, item["target"]),
                         parse_mode=reading.parse_mode, truncated=reading.truncated))
    return rows


def _score_row(ctx: RunContext, draft: dict, student: str, items: list[dict], item_rows: list[dict]) -> dict:
    """A draft's icl_scores row from its answers on `items` (the same order)."""
    task = ctx.task
    n_correct = sum(r["correct"] for r in item_rows)
    correct = [r["correct"] for r in item_rows]
    balanced = (balanced_accuracy([task.normalise(i["target"]) for i in items], correct)
                if is_label_task(task.answer_format, task.labels) else None)
    return dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id,
                accuracy=n_correct / len(items), n_items=len(items), n_correct=n_correct,
                n_unparsed=sum(r["answer"] is None for r in item_rows),
                icl_format=ctx.config.score.icl_format, created_at=utcnow(), balanced_accuracy=balanced,
                label_copy_rate=label_copy_rate([r["answer"] for r in item_rows], task.normalise(demo_answer(draft))),
                n_truncated=sum(bool(r["truncated"]) for r in item_rows),
                n_lenient=sum(r["parse_mode"] == ParseMode.LENIENT.value for r in item_rows))


def _store_draft_score(ctx: RunContext, draft: dict, student: str, items: list[dict], answers) -> None:
    item_rows = draft_item_rows(ctx, draft, student, items, answers)
    ctx.store.add_icl_result(_score_row(ctx, draft, student, items, item_rows), item_rows)


def run_score(ctx: RunContext, student: str) -> dict:
    info = {"n_scored_now": score_drafts(ctx, student)}  # the registry records a non-default metric
    candidates = item_store.item_candidates(ctx.store, ctx.run_id)
    if candidates:  # an 'irt' selection: what it was made from, shown with the stage
        info["item_selection"] = dict(fit=candidates[0]["fit"], fitted_on=candidates[0]["student"],
                                      n_candidates=len(candidates), n_pilot_drafts=candidates[0]["n_pilot"],
                                      n_selected=sum(c["selected"] for c in candidates),
                                      n_separating=sum(c["difficulty"] is not None for c in candidates))
    return info
