"""Helpers more than one test module uses: a free port and waiting for an app or a condition, a small
run config, hand-made drafts and decisions in a store, and stopping jobs a test left running.

Test modules import these from here, never from one another, so a test file can change alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from arte_core.config import EvalConfig, RunConfig, ScoreConfig
from arte_core.stages.elicit import question_id, rationale_id
from arte_core.store import Store, utcnow

# A child process imports torch and transformers: seconds on an idle machine, more on a busy one.
JOB_TIMEOUT_S = 120

# How long an app started in a subprocess may take to answer.
START_TIMEOUT_S = 90

TECHNIQUES = ("expert_procedure", "common_sense")


def free_port() -> int:
    """A TCP port nobody listens on right now (for an app under test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Until `url` answers 200; fails the test with the end of `log` if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer on {url} within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def wait_until(predicate, timeout: float = JOB_TIMEOUT_S, what: str = "condition"):
    """`predicate()`'s first truthy value, polled every 0.2 s; an AssertionError after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_config(model_dir: str, root) -> RunConfig:
    """A boolean_expressions run on one model folder as teacher and student, 4 preference, 4 test and 4 check
    items (too few for any pair to pass a paired test at 0.05: pairs keep every candidate with its p)."""
    config = RunConfig(task="boolean_expressions", teacher=model_dir, student=model_dir,
                       runs_dir=str(root / "elsewhere"), score=ScoreConfig(n_pref=4), eval=EvalConfig(n_test=4))
    config.pairs.max_p = 1.0
    config.check.n_items = 4
    return config


def stop_leftovers(jobs) -> None:
    """Never leave a child behind, whatever a test did (`jobs` is a JobManager)."""
    from arte_core.jobs import kill_process_tree

    for row in jobs.jobs():
        if row["status"] == "running":
            kill_process_tree(jobs._identity(row), grace_s=1.0)


def populate_drafts(store: Store, run_id: str, student: str, n_questions: int = 4, n_items: int = 3) -> None:
    """Hand-made drafts and one-shot scores shaped as elicit.py and preferences/icl.py write them.

    Question q's rationale t scores (q + t) / (n_questions + 1), so questions and rationales differ."""
    now = utcnow()
    questions, rationales, scores, items = [], [], [], []
    for q in range(n_questions):
        qid = f"{run_id}:draft:q{q:05d}"
        questions.append(dict(question_id=qid, run_id=run_id, origin="draft", idx=q, input=f"True and {q % 2 == 0}",
                              target=str(q % 2 == 0), solver_target=str(q % 2 == 0), solver_agrees=True,
                              teacher="teacher-a", call_index=0, created_at=now))
        for t, technique in enumerate(TECHNIQUES):
            rid = f"{qid}:{technique}"
            rationales.append(dict(rationale_id=rid, question_id=qid, run_id=run_id, origin="draft",
                                   technique=technique, prompt=f"prompt {technique}", text=f"rationale {q} {t}",
                                   answer=str(q % 2 == 0), answer_parsed=True, matches_target=True, word_count=3,
                                   n_tokens=5, teacher="teacher-a", temperature=0.7, seed=q, created_at=now))
            n_correct = min(n_items, q + t)
            scores.append(dict(rationale_id=rid, student=student, run_id=run_id, accuracy=n_correct / n_items,
                               n_items=n_items, n_correct=n_correct, n_unparsed=0, icl_format="completion",
                               created_at=now, balanced_accuracy=n_correct / n_items,
                               label_copy_rate=float(q % 2 == 0), n_truncated=0, n_lenient=0))
            items += [dict(rationale_id=rid, student=student, item_index=i, output=f"out {i}", answer="True",
                           correct=i < n_correct, parse_mode="strict", truncated=False) for i in range(n_items)]
    call = dict(run_id=run_id, origin="draft", call_index=0, model="teacher-a", prompt="p", output="o",
                temperature=1.0, seed=0, n_parsed=n_questions, n_unparsed=0, n_duplicates=0,
                n_kept=n_questions, created_at=now)
    with store.transaction():
        store.add_generation_call(call, questions)
        store.add_rationales(rationales)
        for score in scores:
            store.add_icl_result(score, [i for i in items if i["rationale_id"] == score["rationale_id"]])
    store.mark_done(run_id, "elicit")
    store.mark_done(run_id, "score", student)


def decision_row(decision_id: int, pair_id: str, action: str = "exclude") -> dict:
    """A pair_decisions row by 'ann'."""
    return dict(decision_id=decision_id, pair_id=pair_id, action=action, who="ann", why="bad", undoes=None,
                decided_at=utcnow())


def open_scoring_run(root: Path, model_dir: str, run_name: str, max_new_tokens: int,
                     pref_items: list[tuple[str, str]], questions: list[tuple[str, str]]):
    """A run of `model_dir` as teacher and student whose preference items are exactly `pref_items` and whose
    drafts are `questions` with one rationale per technique (seed_drafts): what the scoring tests score."""
    from arte_core.context import open_run
    from arte_core.progress import Reporter

    config = RunConfig(task="boolean_expressions", teacher=model_dir, student=model_dir,
                       runs_dir=str(root / "runs"), run_name=run_name)
    config.elicit.techniques = list(TECHNIQUES)
    config.score.n_pref = len(pref_items)
    config.score.max_new_tokens = max_new_tokens
    store = Store(root / "store.duckdb")
    context = open_run(config, store, Reporter(root / "events.jsonl", show_bar=False))
    with store.transaction():
        store.execute("DELETE FROM pref_items WHERE run_id = ?", [context.run_id])
        store.insert("pref_items", [dict(run_id=context.run_id, item_index=i, input=q, target=t)
                                    for i, (q, t) in enumerate(pref_items)])
    seed_drafts(context, questions)
    return context


def seed_drafts(ctx, questions: list[tuple[str, str]]) -> None:
    """Hand-written draft questions with one short rationale per technique, as elicit would store them."""
    rows_q, rows_r = [], []
    for idx, (text, target) in enumerate(questions):
        qid = question_id(ctx.run_id, "draft", idx)
        rows_q.append(dict(question_id=qid, run_id=ctx.run_id, origin="draft", idx=idx, input=text, target=target,
                           solver_target=ctx.task.solve(text), solver_agrees=ctx.task.solve(text) == target,
                           teacher="hand", call_index=0, created_at=utcnow()))
        for t_index, technique in enumerate(TECHNIQUES):
            text_r = f"We evaluate it{' carefully, step by step' * t_index}. So the answer is {target}."
            rows_r.append(dict(rationale_id=rationale_id(qid, technique), question_id=qid, run_id=ctx.run_id,
                               origin="draft", technique=technique, prompt="p", text=text_r, answer=target,
                               answer_parsed=True, matches_target=True, word_count=len(text_r.split()), n_tokens=5,
                               teacher="hand", temperature=0.7, seed=0, created_at=utcnow()))
    with ctx.store.transaction():
        ctx.store.insert("questions", rows_q)
        ctx.store.insert("rationales", rows_r)


def stop_app(process: subprocess.Popen) -> None:
    """Stop a launched app: politely first, then for good."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def served_app(env: dict, log: Path) -> Iterator[str]:
    """`python app.py` from the repository root with `env` (which names the port in GRADIO_SERVER_PORT),
    its output in `log`; yields the app's URL once it answers and stops the app afterwards."""
    repo = Path(__file__).resolve().parents[1]
    with open(log, "wb") as out:  # a file, not a pipe: a full pipe would stall the app
        process = subprocess.Popen([sys.executable, "app.py"], cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    try:
        wait_for_http(url, process, log)
        yield url
    finally:
        stop_app(process)
