"""A hand-populated studio store: literal drafts, scores, pairs and evaluations the studio tests check against.

One run (`bool-fixture`) with 6 questions × 4 techniques, two students' ICL scores and per-item
answers over 10 preference questions, influence scores for the first student, 4 question pairs
and 5 rationale pairs (question 5's rationales tie, so it has none), three regenerated drafts,
SFT examples and an evaluation table; plus a second tiny run to prove that queries stay in their run.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from arte_core.config import TECHNIQUES
from arte_core.store import Store

RUN = "bool-fixture"
OTHER_RUN = "sort-fixture"
STUDENT = "student-s"
OTHER_STUDENT = "student-b"
TEACHER = "teacher-t"
N_PREF = 10
T0 = datetime(2026, 11, 22, 12, 0, 0)

QUESTIONS = [
    "True and not False",
    "not ( True or False )",
    "False or ( not True ) and True",
    "O'Brien said: True and True",  # a quote inside stored text, for the literal search tests
    "not not not False",
    "( True and False ) or True",
]
TARGETS = ["True", "False", "False", "True", "True", "True"]
SOLVER_AGREES = [True, True, False, True, True, None]

# ICL accuracy of each (question, technique) draft for the first student, techniques in TECHNIQUES order.
ACCURACY_S = [
    [0.9, 0.8, 0.7, 0.6],
    [0.8, 0.5, 0.6, 0.7],
    [0.5, 0.5, 0.5, 0.6],
    [0.3, 0.4, 0.2, 0.3],
    [0.2, 0.1, 0.3, 0.2],
    [0.6, 0.6, 0.6, 0.6],
]
# The second student: a different preference, so the pivot columns differ.
ACCURACY_B = [[round(1.0 - a, 1) for a in row] for row in ACCURACY_S]
# The teacher's answer disagrees with the target on these (question, technique index) drafts.
WRONG_TEACHER_ANSWERS = {(1, 1), (3, 3), (4, 0)}
TECHNIQUE_WORDS = [60, 25, 40, 80]


def rationale_id(q: int, t: int, origin: str = "draft") -> str:
    return f"{RUN}:{origin}:q{q}:{TECHNIQUES[t] if origin == 'draft' else 'plain'}"


def question_id(q: int, origin: str = "draft") -> str:
    return f"{RUN}:{origin}:q{q}"


def word_count(q: int, t: int) -> int:
    return TECHNIQUE_WORDS[t] + 5 * q


def rationale_text(q: int, t: int) -> str:
    answer = teacher_answer(q, t)
    filler = " ".join(["step"] * (word_count(q, t) - 8))
    return f"Using {TECHNIQUES[t]} on question {q}: {filler} so the answer is <ans>{answer}</ans>"


def teacher_answer(q: int, t: int) -> str:
    target = TARGETS[q]
    if (q, t) in WRONG_TEACHER_ANSWERS:
        return "False" if target == "True" else "True"
    return target


def question_block(q: int) -> str:
    return f"<input>{QUESTIONS[q]}</input>\n<target>{TARGETS[q]}</target>"


def plain_prompt(q: int) -> str:
    return f"Question: {QUESTIONS[q]}\n\nLet's think step by step."


GENERATION_PROMPT = "Task: evaluate boolean expressions.\n\nWrite 5 new questions in the same format."

# (pair_id, kind, chosen question, rejected question): question pairs from the top vs bottom quartile.
QUESTION_PAIRS = [("pq-0-3", 0, 3), ("pq-0-4", 0, 4), ("pq-1-3", 1, 3), ("pq-1-4", 1, 4)]
# rationale pairs: (pair_id, question, best technique index, worst technique index)
RATIONALE_PAIRS = [("pr-0", 0, 0, 3), ("pr-1", 1, 0, 1), ("pr-2", 2, 3, 1), ("pr-3", 3, 1, 2), ("pr-4", 4, 2, 1)]

EVALUATIONS = [  # (variant, shots, n_correct) over 50 test items
    ("untrained", 0, 15), ("original", 0, 17), ("arte", 0, 19),
    ("untrained", 3, 18), ("original", 3, 20), ("arte", 3, 22),
]
N_TEST = 50


def question_score(q: int) -> float:
    return round(sum(ACCURACY_S[q]) / len(ACCURACY_S[q]), 6)


def build_fixture_store(path: str | Path) -> Store:
    """Create (or overwrite) a store at `path` with the fixture data; returns it open read-write."""
    path = Path(path)
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    store = Store(path)
    with store.transaction():
        _insert_runs(store)
        _insert_pref_items(store)
        _insert_drafts(store)
        _insert_scores(store, STUDENT, ACCURACY_S)
        _insert_scores(store, OTHER_STUDENT, ACCURACY_B)
        _insert_influence(store)
        _insert_pairs(store)
        _insert_regenerated(store)
        _insert_sft(store)
        _insert_evaluations(store)
        _insert_other_run(store)
    return store


def copy_fixture_store(source: str | Path, target: str | Path) -> Path:
    """A private copy of a fixture store file for a test that writes or serves it."""
    target = Path(target)
    shutil.copyfile(source, target)
    return target


def _insert_runs(store: Store) -> None:
    store.insert("runs", [dict(run_id=RUN, task="boolean_expressions", task_source="builtin", teacher=TEACHER,
                               student=STUDENT, fingerprint="fixture1", config_yaml="task: boolean_expressions\n",
                               created_at=T0)])


def _insert_pref_items(store: Store) -> None:
    store.insert("pref_items", [dict(run_id=RUN, item_index=k, input=f"pref question {k}",
                                     target="True" if k % 2 == 0 else "False") for k in range(N_PREF)])


def _insert_drafts(store: Store) -> None:
    questions, rationales = [], []
    for q, text in enumerate(QUESTIONS):
        questions.append(dict(question_id=question_id(q), run_id=RUN, origin="draft", idx=q, input=text,
                              target=TARGETS[q], solver_target=None if SOLVER_AGREES[q] is None else TARGETS[q],
                              solver_agrees=SOLVER_AGREES[q], teacher=TEACHER, call_index=q // 5,
                              created_at=T0 + timedelta(seconds=q)))
        for t, technique in enumerate(TECHNIQUES):
            answer = teacher_answer(q, t)
            rationales.append(dict(rationale_id=rationale_id(q, t), question_id=question_id(q), run_id=RUN,
                                   origin="draft", technique=technique, prompt=f"Reason with {technique}: {text}",
                                   text=rationale_text(q, t), answer=answer, answer_parsed=True,
                                   matches_target=answer == TARGETS[q], word_count=word_count(q, t),
                                   n_tokens=2 * word_count(q, t), teacher=TEACHER, temperature=0.7, seed=q * 10 + t,
                                   created_at=T0 + timedelta(seconds=q)))
    store.insert("questions", questions)
    store.insert("rationales", rationales)


def _insert_scores(store: Store, student: str, accuracy: list[list[float]]) -> None:
    scores, items = [], []
    for q, row in enumerate(accuracy):
        for t, acc in enumerate(row):
            rid = rationale_id(q, t)
            n_correct = round(acc * N_PREF)
            scores.append(dict(rationale_id=rid, student=student, run_id=RUN, accuracy=acc, n_items=N_PREF,
                               n_correct=n_correct, n_unparsed=1 if (q, t) == (0, 0) else 0,
                               icl_format="completion", created_at=T0))
            items += [_icl_item(rid, student, k, k < n_correct, unparsed=(q, t) == (0, 0) and k == N_PREF - 1)
                      for k in range(N_PREF)]
    store.insert("icl_scores", scores)
    store.insert("icl_items", items)


def _icl_item(rid: str, student: str, k: int, correct: bool, unparsed: bool) -> dict:
    target = "True" if k % 2 == 0 else "False"
    wrong = "False" if target == "True" else "True"
    answer = None if unparsed else (target if correct else wrong)
    return dict(rationale_id=rid, student=student, item_index=k, output=f"So the answer is {answer}.",
                answer=answer, correct=correct)


def _insert_influence(store: Store) -> None:
    # Mostly agrees with accuracy (better draft = lower loss after the step), with two reversals.
    rows = []
    for q, row in enumerate(ACCURACY_S):
        for t, acc in enumerate(row):
            influence = round(-(acc - 0.5) / 10, 4)
            if (q, t) in {(0, 0), (4, 1)}:
                influence = -influence
            rows.append(dict(rationale_id=rationale_id(q, t), student=STUDENT, run_id=RUN, loss_before=2.0,
                             loss_after=2.0 + influence, influence=influence, mode="in_memory", learning_rate=1e-4,
                             n_reference=16, created_at=T0))
    store.insert("influence_scores", rows)


def _insert_pairs(store: Store) -> None:
    rows = []
    for pid, chosen, rejected in QUESTION_PAIRS:
        rows.append(_pair(pid, "question", GENERATION_PROMPT, question_block(chosen), question_block(rejected),
                          question_id(chosen), question_id(rejected), question_score(chosen),
                          question_score(rejected)))
    for pid, q, best, worst in RATIONALE_PAIRS:
        rows.append(_pair(pid, "rationale", plain_prompt(q), rationale_text(q, best), rationale_text(q, worst),
                          rationale_id(q, best), rationale_id(q, worst), ACCURACY_S[q][best], ACCURACY_S[q][worst]))
    store.insert("pairs", rows)


def _pair(pid: str, kind: str, prompt: str, chosen: str, rejected: str, chosen_ref: str, rejected_ref: str,
          chosen_score: float, rejected_score: float) -> dict:
    return dict(pair_id=pid, run_id=RUN, student=STUDENT, kind=kind, signal="icl", prompt=prompt, chosen=chosen,
                rejected=rejected, chosen_ref=chosen_ref, rejected_ref=rejected_ref, chosen_score=chosen_score,
                rejected_score=rejected_score, margin=round(chosen_score - rejected_score, 6), created_at=T0)


REGENERATED_ACCURACY = [0.7, 0.8, 0.6]


def _insert_regenerated(store: Store) -> None:
    questions, rationales, scores = [], [], []
    for q, acc in enumerate(REGENERATED_ACCURACY):
        qid, rid = question_id(q, "arte"), rationale_id(q, 0, "arte")
        questions.append(dict(question_id=qid, run_id=RUN, origin="arte", student=STUDENT, idx=q,
                              input=f"regenerated question {q}",
                              target="True", solver_target="True", solver_agrees=True, teacher=TEACHER + "+dpo",
                              call_index=0, created_at=T0))
        rationales.append(dict(rationale_id=rid, question_id=qid, run_id=RUN, origin="arte", student=STUDENT,
                               technique="plain",
                               prompt="Let's think step by step.", text=f"Regenerated reasoning {q}. <ans>True</ans>",
                               answer="True", answer_parsed=True, matches_target=True, word_count=30 + q,
                               n_tokens=60, teacher=TEACHER + "+dpo", temperature=0.0, seed=q, created_at=T0))
        scores.append(dict(rationale_id=rid, student=STUDENT, run_id=RUN, accuracy=acc, n_items=N_PREF,
                           n_correct=round(acc * N_PREF), n_unparsed=0, icl_format="completion", created_at=T0))
    store.insert("questions", questions)
    store.insert("rationales", rationales)
    store.insert("icl_scores", scores)


def _insert_sft(store: Store) -> None:
    rows = []
    for i in range(3):
        rows.append(dict(run_id=RUN, student=STUDENT, dataset="original", idx=i, question_id=question_id(i),
                         rationale_id=rationale_id(i, 0), input=QUESTIONS[i], rationale=rationale_text(i, 0),
                         answer=TARGETS[i]))
        rows.append(dict(run_id=RUN, student=STUDENT, dataset="arte", idx=i, question_id=question_id(i, "arte"),
                         rationale_id=rationale_id(i, 0, "arte"), input=f"regenerated question {i}",
                         rationale=f"Regenerated reasoning {i}. <ans>True</ans>", answer="True"))
    store.insert("sft_examples", rows)


def _insert_evaluations(store: Store) -> None:
    store.insert("evaluations", [dict(run_id=RUN, student=STUDENT, variant=v, shots=s, accuracy=c / N_TEST, n_items=N_TEST,
                                      n_correct=c, n_unparsed=2, model=f"{STUDENT}+{v}", created_at=T0)
                                 for v, s, c in EVALUATIONS])


def _insert_other_run(store: Store) -> None:
    store.insert("runs", [dict(run_id=OTHER_RUN, task="word_sorting", task_source="builtin", teacher=TEACHER,
                               student=STUDENT, fingerprint="fixture2", config_yaml="task: word_sorting\n",
                               created_at=T0 + timedelta(hours=1))])
    qid = f"{OTHER_RUN}:draft:q0"
    store.insert("questions", [dict(question_id=qid, run_id=OTHER_RUN, origin="draft", idx=0,
                                    input="Sort: pear apple", target="apple pear", solver_target="apple pear",
                                    solver_agrees=True, teacher=TEACHER, call_index=0, created_at=T0)])
    store.insert("rationales", [dict(rationale_id=f"{qid}:common_sense", question_id=qid, run_id=OTHER_RUN,
                                     origin="draft", technique="common_sense", prompt="Sort the words.",
                                     text="True and not False appears here only to test run isolation.",
                                     answer="apple pear", answer_parsed=True, matches_target=True, word_count=10,
                                     n_tokens=20, teacher=TEACHER, temperature=0.7, seed=0, created_at=T0)])
    store.insert("icl_scores", [dict(rationale_id=f"{qid}:common_sense", student=STUDENT, run_id=OTHER_RUN,
                                     accuracy=1.0, n_items=1, n_correct=1, n_unparsed=0, icl_format="completion",
                                     created_at=T0)])


def build_fixture_file(folder: str | Path, name: str = "fixture.duckdb") -> Path:
    """Build the fixture store in `folder` and close it, so tests can copy the file."""
    path = Path(folder) / name
    build_fixture_store(path).close()
    return path


# -- scores as ARTE Studio has kept them since schema 3 ------------------------------------------------

RESCORED_QUESTIONS = range(5)  # question 5's drafts keep their old scores (NULL in the new columns)
COPYING_DRAFT = (1, 1)  # rescored as answering "True", the demo's own (wrong) answer, on every item
TRUNCATED_ITEM = ((0, 0), N_PREF - 1)  # (draft, item): the unparsed answer was an output cut off at its cap
LENIENT_ITEMS = ((0, 1), (0, 1, 2))  # (draft, items) read by the lenient fallback


def rescore_fixture(store: Store) -> None:
    """Give STUDENT's drafts of RESCORED_QUESTIONS the scores and per-item readings a schema-3 score
    stage stores (parse modes, truncation, balanced accuracy, label-copy rate), as that stage computes
    them; OTHER_STUDENT and question 5 stay as an older version scored them."""
    from arte_core.stages.score import balanced_accuracy, label_copy_rate

    targets = ["True" if k % 2 == 0 else "False" for k in range(N_PREF)]
    with store.transaction():
        for q in RESCORED_QUESTIONS:
            for t in range(len(TECHNIQUES)):
                rid = rationale_id(q, t)
                items = store.rows("SELECT item_index, answer FROM icl_items WHERE rationale_id = ? AND student = ? "
                                   "ORDER BY item_index", [rid, STUDENT])
                answers = ["True"] * N_PREF if (q, t) == COPYING_DRAFT else [i["answer"] for i in items]
                for k, answer in enumerate(answers):
                    mode = "none" if answer is None else (
                        "lenient" if (q, t) == LENIENT_ITEMS[0] and k in LENIENT_ITEMS[1] else "strict")
                    store.execute("UPDATE icl_items SET answer = ?, correct = ?, parse_mode = ?, truncated = ?, "
                                  "output = ? WHERE rationale_id = ? AND student = ? AND item_index = ?",
                                  [answer, answer == targets[k], mode, ((q, t), k) == TRUNCATED_ITEM,
                                   "So the answer is" if answer is None else f"So the answer is {answer}.",
                                   rid, STUDENT, k])
                correct = [a == target for a, target in zip(answers, targets)]
                store.execute(
                    "UPDATE icl_scores SET accuracy = ?, n_correct = ?, balanced_accuracy = ?, label_copy_rate = ?, "
                    "n_truncated = ?, n_lenient = ? WHERE rationale_id = ? AND student = ?",
                    [sum(correct) / N_PREF, sum(correct), balanced_accuracy(targets, correct),
                     label_copy_rate(answers, teacher_answer(q, t)), int(rid == rationale_id(*TRUNCATED_ITEM[0])),
                     len(LENIENT_ITEMS[1]) if (q, t) == LENIENT_ITEMS[0] else 0, rid, STUDENT])
