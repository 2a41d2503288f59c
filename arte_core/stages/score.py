"""Step 2: collect preferences. Each (question, rationale) draft is the student's only demo; its
score is the student's accuracy on the preference split, and every per-item answer is kept.

Resumable: a draft's score and items commit together; scored drafts are never recomputed.
"""

from __future__ import annotations

from arte_core.context import RunContext
from arte_core.models import SamplingParams
from arte_core.prompts import STUDENT_STOP, icl_prompt
from arte_core.store import utcnow


# Prompts per generate call (whole drafts). The fast engine decodes up to 256 rows together, so a
# call of that many admits them all at once and then drains; one call of all prompts keeps the rows
# full by refilling them but pads each new row to the oldest row's width. The two measured the same
# within noise (docs/benchmarks.md), and smaller calls lose less to a kill; fewer prompts than rows would leave rows empty. A call
# streams its answers (`generate_each`): a draft's score commits as soon as its last answer is in,
# so a kill loses only the drafts in flight, which matters most for the slow plain engine.
PROMPTS_PER_CALL = 256


def student_prompt(generator, text: str, icl_format: str) -> str:
    return generator.chat_prompt(text) if icl_format == "chat" else text


def score_drafts(ctx: RunContext, student: str | None = None) -> int:
    """Score every unscored draft for `student` (default: the config's); returns how many were scored now."""
    cfg = ctx.config.score
    student = student or ctx.config.student
    store = ctx.store
    items = ctx.pref_items
    done = store.scored_rationale_ids(ctx.run_id, student)
    todo = [r for r in store.rationales(ctx.run_id, "draft") if r["rationale_id"] not in done]
    if not todo:
        return 0
    generator = ctx.models.student(student)
    batch_size = 1 if cfg.engine == "plain" else cfg.batch_size
    params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=0.0, stop=STUDENT_STOP)
    drafts_per_call = max(1, PROMPTS_PER_CALL // len(items))
    with ctx.reporter.bar(f"ICL scores ({student})", len(todo)) as bar:
        for start in range(0, len(todo), drafts_per_call):
            drafts = todo[start:start + drafts_per_call]
            prompts = [student_prompt(generator, icl_prompt(r["question"], r["text"], r["answer"] or r["target"],
                                                            item["input"]), cfg.icl_format)
                       for r in drafts for item in items]
            answers: dict[int, list] = {}
            for index, output in generator.generate_each(prompts, params, batch_size=batch_size):
                d, item = divmod(index, len(items))
                answers.setdefault(d, [None] * len(items))[item] = output
                if all(answer is not None for answer in answers[d]):
                    _store_draft_score(ctx, drafts[d], student, items, answers.pop(d))
                    bar.update(1)
    return len(todo)


def _store_draft_score(ctx: RunContext, draft: dict, student: str, items: list[dict], answers) -> None:
    task = ctx.task
    item_rows = []
    for item, out in zip(items, answers):
        answer = task.extract(out.text)
        item_rows.append(dict(rationale_id=draft["rationale_id"], student=student, item_index=item["item_index"],
                              output=out.text, answer=answer, correct=task.is_correct(answer, item["target"])))
    n_correct = sum(r["correct"] for r in item_rows)
    score = dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id,
                 accuracy=n_correct / len(items), n_items=len(items), n_correct=n_correct,
                 n_unparsed=sum(r["answer"] is None for r in item_rows),
                 icl_format=ctx.config.score.icl_format, created_at=utcnow())
    ctx.store.add_icl_result(score, item_rows)


def run_score(ctx: RunContext, student: str) -> dict:
    return {"n_scored_now": score_drafts(ctx, student)}
