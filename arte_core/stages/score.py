"""Step 2: collect preferences. Each (question, rationale) draft is the student's only demo; its
scores are the student's accuracy and balanced accuracy on the preference split, and every per-item
answer is kept with how it was read (arte_core/tasks/answers.py).

Resumable: a draft's score and items commit together; scored drafts are never recomputed.
"""

from __future__ import annotations

from fractions import Fraction

from arte_core.context import RunContext
from arte_core.models import SamplingParams
from arte_core.prompts import STUDENT_STOP, answer_budget, icl_prompt
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
    params = SamplingParams(max_new_tokens=student_max_new_tokens(cfg.max_new_tokens, ctx.task, generator),
                            temperature=0.0, stop=STUDENT_STOP)
    drafts_per_call = max(1, PROMPTS_PER_CALL // len(items))
    with ctx.reporter.bar(f"ICL scores ({student})", len(todo)) as bar:
        for start in range(0, len(todo), drafts_per_call):
            drafts = todo[start:start + drafts_per_call]
            prompts = [student_prompt(generator, icl_prompt(r["question"], r["text"], demo_answer(r),
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


def demo_answer(draft: dict) -> str:
    """The answer the demo shows: the teacher's own, else the question's target."""
    return draft["answer"] or draft["target"]


def _store_draft_score(ctx: RunContext, draft: dict, student: str, items: list[dict], answers) -> None:
    task = ctx.task
    item_rows = []
    for item, out in zip(items, answers):
        reading = read_answer(task.answer_format, out.text, task.labels, finished=out.stopped)
        item_rows.append(dict(rationale_id=draft["rationale_id"], student=student, item_index=item["item_index"],
                              output=out.text, answer=reading.answer,
                              correct=task.is_correct(reading.answer, item["target"]),
                              parse_mode=reading.parse_mode, truncated=reading.truncated))
    n_correct = sum(r["correct"] for r in item_rows)
    correct = [r["correct"] for r in item_rows]
    balanced = (balanced_accuracy([task.normalise(i["target"]) for i in items], correct)
                if is_label_task(task.answer_format, task.labels) else None)
    score = dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id,
                 accuracy=n_correct / len(items), n_items=len(items), n_correct=n_correct,
                 n_unparsed=sum(r["answer"] is None for r in item_rows),
                 icl_format=ctx.config.score.icl_format, created_at=utcnow(), balanced_accuracy=balanced,
                 label_copy_rate=label_copy_rate([r["answer"] for r in item_rows], task.normalise(demo_answer(draft))),
                 n_truncated=sum(r["truncated"] for r in item_rows),
                 n_lenient=sum(r["parse_mode"] == ParseMode.LENIENT.value for r in item_rows))
    ctx.store.add_icl_result(score, item_rows)


def run_score(ctx: RunContext, student: str) -> dict:
    return {"n_scored_now": score_drafts(ctx, student)}
