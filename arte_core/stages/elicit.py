"""Step 1: elicit drafts. The teacher writes questions from the seed exemplars (or, with
`elicit.question_source: pool`, they are drawn from the task's labelled pool), then one rationale per
question and reasoning technique.

The same functions write the regenerated arms of one student (origins 'arte' and 'base', regenerate.py),
whose rows carry that student; the drafts' rows carry '' (every student shares them).

Resumable: each batch of teacher calls commits with its questions; rationales commit per batch.
"""

from __future__ import annotations

import random
from typing import Callable

from arte_core.context import RunContext, seeded
from arte_core.errors import ArteError
from arte_core.models import SamplingParams
from arte_core.parsing import Deduplicator, parse_question_blocks, word_count
from arte_core.prompts import QUESTION_PREFILL
from arte_core.store import utcnow
from arte_core.tasks import Example
from arte_core.tasks.base import input_key

# The `teacher` of a question drawn from the task's pool, and its `call_index`: no teacher call wrote it.
POOL_TEACHER = "pool"
POOL_CALL_INDEX = -1
# How much of the teacher's last raw output an unparsable-question error shows.
RAW_OUTPUT_SHOWN = 300


def question_id(run_id: str, origin: str, idx: int, student: str = "") -> str:
    """A question's id: the run's, the origin's and its index; a student's arm names the student too."""
    return f"{run_id}:{origin}:{student}:q{idx:05d}" if student else f"{run_id}:{origin}:q{idx:05d}"


def rationale_id(qid: str, technique: str) -> str:
    return f"{qid}:{technique}"


def generate_questions(ctx: RunContext, generator, origin: str, n_questions: int, temperature: float,
                       student: str = "") -> int:
    """Call the teacher until `n_questions` are kept (or the call budget ends); returns the count kept.

    With `elicit.question_source: pool` no teacher is called: see `draw_pool_questions`. While no
    question is kept, batches are at most `elicit.max_unparsed_calls` calls, and that many calls in a
    row that keep nothing end the stage with the last raw output and the fixes. `student`: whose arm the
    questions are (ignored for drafts; '' for an arm means the run's student). The seeds depend on the
    call only, not on the teacher or the student, so two arms written with two teachers sample alike.
    """
    cfg, store, task = ctx.config.elicit, ctx.store, ctx.task
    student = store.origin_student(ctx.run_id, origin, student or None)  # '' for drafts, else (the run's) student
    if cfg.question_source == "pool":
        return draw_pool_questions(ctx, origin, n_questions, student)
    kept = store.questions(ctx.run_id, origin, student)
    calls = store.generation_calls(ctx.run_id, origin, student)
    forbidden = [e.input for e in task.exemplars] + [r["input"] for r in ctx.pref_items + ctx.test_items]
    dedup = Deduplicator(cfg.near_duplicate_threshold, seen=forbidden + [q["input"] for q in kept])
    max_calls = cfg.max_question_calls or max(4, 4 * -(-n_questions // cfg.questions_per_call))
    prompt_text = ctx.prompts.questions()
    prompt = ctx.prompts.render(prompt_text, generator.chat_prompt) + QUESTION_PREFILL
    call_index, n_kept = len(calls), len(kept)
    barren = 0  # calls of this invocation in a row that kept nothing
    with ctx.reporter.bar(f"{origin} questions", n_questions) as bar:
        bar.update(n_kept)
        while n_kept < n_questions and call_index < max_calls:
            if n_kept == 0 and barren >= cfg.max_unparsed_calls:
                break
            n_calls = min(cfg.batch_size, max_calls - call_index,
                          -(-(n_questions - n_kept) // cfg.questions_per_call))
            if n_kept == 0:  # a teacher that cannot write the task's questions must fail in seconds
                n_calls = min(n_calls, cfg.max_unparsed_calls - barren)
            seed = seeded(ctx.config.seed, call_index, 1 if origin == "draft" else 2)
            params = SamplingParams(max_new_tokens=cfg.question_max_new_tokens, temperature=temperature, seed=seed)
            outputs = generator.generate([prompt] * n_calls, params, batch_size=cfg.batch_size)
            rows_per_call = []
            for offset, out in enumerate(outputs):
                text = QUESTION_PREFILL + out.text
                new_rows, counts = _keep_questions(ctx, text, dedup, origin, n_kept, n_questions,
                                                   call_index + offset, generator.name, student)
                n_kept += len(new_rows)
                barren = 0 if new_rows else barren + 1
                rows_per_call.append((dict(
                    run_id=ctx.run_id, origin=origin, student=student, call_index=call_index + offset, model=generator.name,
                    prompt=prompt_text, output=text, temperature=temperature, seed=seed, created_at=utcnow(),
                    n_kept=len(new_rows), **counts), new_rows))
                bar.update(len(new_rows))
            with store.transaction():
                for call, rows in rows_per_call:
                    store.add_generation_call(call, rows)
            call_index += n_calls
    if n_kept == 0:
        raise _no_question_error(ctx, generator.name, origin, call_index, student)
    if n_kept < n_questions:
        ctx.reporter.log(f"kept {n_kept} of {n_questions} questions after {call_index} teacher calls.")
    return n_kept


def _no_question_error(ctx: RunContext, teacher: str, origin: str, n_calls: int, student: str = "") -> ArteError:
    """What the teacher wrote last and what to change, for a teacher that wrote no usable question."""
    cfg = ctx.config.elicit
    calls = ctx.store.generation_calls(ctx.run_id, origin, student)
    last = ""
    if calls:
        output = calls[-1]["output"]
        shown = output[:RAW_OUTPUT_SHOWN] + ("…" if len(output) > RAW_OUTPUT_SHOWN else "")
        blocks = sum(c["n_parsed"] for c in calls)
        last = (f" {blocks} <input>/<target> blocks parsed in all, none kept (a target must be a "
                f"{ctx.task.answer_format.value} answer). Its last raw output: {shown!r}.")
    other_format = "completion" if cfg.prompt_format == "chat" else "chat"
    return ArteError(
        f"the teacher '{teacher}' wrote no parsable question in {n_calls} calls (expected "
        f"<input>…</input><target>…</target> blocks).{last} Fixes: `elicit.question_source: pool` (draft "
        "questions from the task's labelled pool; the teacher writes only rationales), a stronger teacher, "
        f"`elicit.prompt_format: {other_format}`, or a larger elicit.question_max_new_tokens (now "
        f"{cfg.question_max_new_tokens}). Every raw output is in the store's generation_calls table."
    )


def pool_questions(ctx: RunContext) -> list[Example]:
    """The task's labelled examples that may become drafts, in a seeded order: distinct, not a seed
    exemplar and not a preference or test item of the run (the stored splits), with a target of the
    task's answer format."""
    in_splits = {input_key(r["input"]) for r in ctx.pref_items + ctx.test_items}
    pool = [e for e in ctx.task.pool()
            if input_key(e.input) not in in_splits and ctx.task.normalise(e.target) is not None]
    random.Random(seeded(ctx.config.seed, 4)).shuffle(pool)
    return pool


def draw_pool_questions(ctx: RunContext, origin: str, n_questions: int, student: str = "") -> int:
    """Store the first `n_questions` of `pool_questions` (fewer if the pool is short) as `origin`
    questions; returns the count stored. The order does not depend on `origin`: the regenerated
    ('arte') data has the draft questions, so the two SFT datasets differ only in their rationales."""
    task, store = ctx.task, ctx.store
    student = store.origin_student(ctx.run_id, origin, student or None)
    kept = store.questions(ctx.run_id, origin, student)
    pool = pool_questions(ctx)
    if not pool and not kept:
        raise ArteError(
            f"elicit.question_source is 'pool' but task '{task.name}' has no labelled example left outside its "
            f"seed exemplars and the run's {len(ctx.pref_items)} preference and {len(ctx.test_items)} test items "
            f"({task.source}); lower score.n_pref or eval.n_test, add examples, or use elicit.question_source: "
            "teacher.")
    if len(pool) < n_questions:
        ctx.reporter.log(f"the task's pool holds {len(pool)} questions outside the preference and test splits; "
                         f"{origin} questions: {len(pool)} of the {n_questions} asked for.")
    rows = []
    for idx, example in enumerate(pool[len(kept):n_questions], start=len(kept)):
        solver_target = task.solve(example.input)
        rows.append(dict(
            question_id=question_id(ctx.run_id, origin, idx, student), run_id=ctx.run_id, origin=origin, idx=idx,
            student=student,
            input=example.input, target=example.target, solver_target=solver_target,
            solver_agrees=None if solver_target is None else solver_target == task.normalise(example.target),
            teacher=POOL_TEACHER, call_index=POOL_CALL_INDEX, created_at=utcnow()))
    with store.transaction():
        store.insert("questions", rows)
    return len(kept) + len(rows)


def _keep_questions(ctx: RunContext, text: str, dedup: Deduplicator, origin: str, n_kept: int,
                    n_wanted: int, call_index: int, teacher: str, student: str = "") -> tuple[list[dict], dict]:
    """Parse one teacher reply into question rows, checking targets against the task's solver."""
    task = ctx.task
    parsed = parse_question_blocks(text)
    n_unparsed, n_duplicates, rows = parsed.n_unparsed, 0, []
    for question, target in parsed.questions:
        normalised = task.normalise(target)
        if normalised is None:
            n_unparsed += 1
            continue
        if n_kept + len(rows) >= n_wanted:
            break
        if not dedup.add(question):
            n_duplicates += 1
            continue
        solver_target = task.solve(question)
        rows.append(dict(
            question_id=question_id(ctx.run_id, origin, n_kept + len(rows), student), run_id=ctx.run_id,
            origin=origin, student=student,
            idx=n_kept + len(rows), input=question, target=target, solver_target=solver_target,
            solver_agrees=None if solver_target is None else solver_target == normalised,
            teacher=teacher, call_index=call_index, created_at=utcnow()))
    return rows, dict(n_parsed=len(parsed.questions), n_unparsed=n_unparsed, n_duplicates=n_duplicates)


def generate_rationales(ctx: RunContext, generator, origin: str, techniques: list[str], temperature: float,
                        prompt_for: Callable[[str, str], str], student: str = "") -> int:
    """One rationale per (question, technique) not yet stored; returns how many were written now."""
    cfg, store, task = ctx.config.elicit, ctx.store, ctx.task
    student = store.origin_student(ctx.run_id, origin, student or None)
    existing = store.rationale_ids(ctx.run_id, origin, student)
    todo = [(q, t) for q in store.questions(ctx.run_id, origin, student) for t in techniques
            if rationale_id(q["question_id"], t) not in existing]
    with ctx.reporter.bar(f"{origin} rationales", len(todo)) as bar:
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start:start + cfg.batch_size]
            prompts = [ctx.prompts.render(prompt_for(q["input"], t), generator.chat_prompt) for q, t in chunk]
            seed = seeded(ctx.config.seed, chunk[0][0]["idx"], techniques.index(chunk[0][1]), 3)
            params = SamplingParams(max_new_tokens=cfg.rationale_max_new_tokens, temperature=temperature,
                                    stop=ctx.prompts.rationale_stop, include_stop=ctx.prompts.keep_stop, seed=seed)
            outputs = generator.generate(prompts, params, batch_size=cfg.batch_size)
            rows = [_rationale_row(ctx, q, t, prompt_for(q["input"], t), out, generator.name, temperature, seed)
                    for (q, t), out in zip(chunk, outputs)]
            store.add_rationales(rows)
            bar.update(len(chunk))
    return len(todo)


def _rationale_row(ctx: RunContext, question: dict, technique: str, prompt: str, out, teacher: str,
                   temperature: float, seed: int) -> dict:
    task = ctx.task
    text = out.text.strip()
    answer = task.extract(text)
    return dict(
        rationale_id=rationale_id(question["question_id"], technique), question_id=question["question_id"],
        run_id=ctx.run_id, origin=question["origin"], student=question["student"] or "", technique=technique, prompt=prompt, text=text,
        answer=answer, answer_parsed=answer is not None,
        matches_target=answer is not None and answer == task.normalise(question["target"]),
        word_count=word_count(text), n_tokens=out.n_generated_tokens, teacher=teacher,
        temperature=temperature, seed=seed, created_at=utcnow())


def run_elicit(ctx: RunContext, student: str) -> dict:
    """Draft questions, then draft rationales with every configured technique (for every student).
    Returns the stage's info: where the questions came from and how many there are."""
    cfg = ctx.config.elicit
    teacher = ctx.models.teacher()
    if cfg.question_source == "pool":
        ctx.reporter.log("draft questions come from the task's labelled pool (elicit.question_source: pool); "
                         f"the teacher '{teacher.name}' writes only the rationales.")
    n_questions = generate_questions(ctx, teacher, "draft", cfg.n_questions, cfg.question_temperature)
    generate_rationales(ctx, teacher, "draft", list(cfg.techniques), cfg.rationale_temperature,
                        lambda q, t: ctx.prompts.rationale(t, q))
    return {"question_source": cfg.question_source, "n_questions": n_questions}


def regenerate_rationales(ctx: RunContext, generator, origin: str, student: str) -> int:
    """Final data of one arm: one rationale per regenerated question with the plain step-by-step prompt."""
    return generate_rationales(ctx, generator, origin, ["step_by_step"], ctx.config.regenerate.rationale_temperature,
                               lambda q, _t: ctx.prompts.plain_rationale(q), student)
