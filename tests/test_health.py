"""Signal health (arte_core/health.py, `arte health`, the studio's Health handlers and export) on stores
built by hand, where every line's number follows from the rows."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from arte_core.cli import main
from arte_core.health import signal_health
from arte_core.store import Store
from arte_core.studio import export as export_handlers
from arte_core.studio import health as health_handlers

RUN = "health-run"
STUDENT = "student-h"
T0 = datetime(2026, 11, 22, 12, 0, 0)
TARGETS = ["True", "False", "True", "False", "True", "False"]


def _store(path, drafts: dict[str, tuple[str, list[str | None]]], copy_rates: dict[str, float],
           truncated_items: set = frozenset()) -> Store:
    """A run with TARGETS as its preference items and one draft per entry of `drafts`: rationale id ->
    (the demo's own answer, the student's answer per item; None = unparsed). `copy_rates` is each draft's
    stored label-copy rate."""
    store = Store(path)
    with store.transaction():
        store.insert("runs", [dict(run_id=RUN, task="boolean_expressions", task_source="builtin", teacher="t",
                                   student=STUDENT, fingerprint="h", config_yaml="task: boolean_expressions\n",
                                   created_at=T0)])
        store.insert("pref_items", [dict(run_id=RUN, item_index=k, input=f"item {k}", target=t)
                                    for k, t in enumerate(TARGETS)])
        for q, (rid, (demo, answers)) in enumerate(drafts.items()):
            store.insert("questions", [dict(question_id=f"q{q}", run_id=RUN, origin="draft", idx=q, input=f"q {q}",
                                            target=demo, teacher="t", call_index=0, created_at=T0)])
            store.insert("rationales", [dict(rationale_id=rid, question_id=f"q{q}", run_id=RUN, origin="draft",
                                             technique="common_sense", prompt="p", text=f"So the answer is {demo}.",
                                             answer=demo, answer_parsed=True, matches_target=True, word_count=5,
                                             n_tokens=8, teacher="t", temperature=0.7, seed=q, created_at=T0)])
            correct = [a == t for a, t in zip(answers, TARGETS)]
            store.insert("icl_scores", [dict(
                rationale_id=rid, student=STUDENT, run_id=RUN, accuracy=sum(correct) / len(TARGETS),
                n_items=len(TARGETS), n_correct=sum(correct), n_unparsed=answers.count(None), icl_format="completion",
                created_at=T0, balanced_accuracy=_balanced(correct), label_copy_rate=copy_rates[rid],
                n_truncated=sum((rid, k) in truncated_items for k in range(len(TARGETS))), n_lenient=0)])
            store.insert("icl_items", [dict(rationale_id=rid, student=STUDENT, item_index=k, output=f"{a}", answer=a,
                                            correct=c, parse_mode="none" if a is None else "strict",
                                            truncated=(rid, k) in truncated_items)
                                       for k, (a, c) in enumerate(zip(answers, correct))])
    return store


def _balanced(correct: list[bool]) -> float:
    """The mean recall per label over TARGETS (as the score stage stores it)."""
    recalls = [sum(c for c, t in zip(correct, TARGETS) if t == label) / TARGETS.count(label) for label in ("True", "False")]
    return sum(recalls) / 2


def test_a_score_that_is_pure_label_copying_is_flagged_bad(tmp_path):
    # Every draft's student answers its demo's own label on every item, whatever the question.
    drafts = {f"d{i}": (demo, [demo] * 6) for i, demo in enumerate(["True", "False", "True", "False"])}
    with _store(tmp_path / "copy.duckdb", drafts, {rid: 1.0 for rid in drafts}) as store:
        lines = {line.key: line for line in signal_health(store, RUN, STUDENT)}
    copy = lines["label_copy"]
    assert (copy.status, copy.value, copy.ci_low, copy.ci_high, copy.n) == ("bad", 1.0, 1.0, 1.0, 4)
    assert copy.message.startswith("the student repeats the demo's own answer on 100% of items (chance 50%): "
                                   "the score mostly says which answer a draft ends with")
    # Right on half the items of each label, whatever the draft: Youden's J is exactly 0.
    chance = lines["above_chance"]
    assert (chance.status, chance.value, chance.n) == ("bad", 0.0, 24)


# The fixture of `arte health --json`: d0-d2 answer every item right, d3 none (two of its answers cut off at
# the token cap and unparsed, the other four the wrong label).
FIXTURE_DRAFTS = {
    "d0": ("True", list(TARGETS)),
    "d1": ("False", list(TARGETS)),
    "d2": ("True", list(TARGETS)),
    "d3": ("False", [None, None, "False", "True", "False", "True"]),
}
# Each draft's copies of its demo's answer: d0-d2 on the 3 items of their demo's label, d3 on items 2 and 4.
FIXTURE_COPY_RATES = {"d0": 0.5, "d1": 0.5, "d2": 0.5, "d3": 2 / 6}


def _fixture_store(path) -> Path:
    store = _store(path, FIXTURE_DRAFTS, FIXTURE_COPY_RATES, truncated_items={("d3", 0), ("d3", 1)})
    with store.transaction():
        store.insert("pairs", [dict(pair_id=f"p{i}", run_id=RUN, student=STUDENT, kind="rationale", signal="icl",
                                    prompt="p", chosen="a", rejected="b", chosen_ref="d0", rejected_ref="d3",
                                    chosen_score=1.0, rejected_score=0.0, margin=1.0, created_at=T0, p_value=p)
                               for i, p in enumerate([0.01, 0.2, None])])
        # Influence agrees in order with accuracy (d0 helps most, d3 hurts).
        store.insert("influence_scores", [dict(rationale_id=rid, student=STUDENT, run_id=RUN, loss_before=2.0,
                                               loss_after=2.0 + v, influence=v, mode="in_memory", learning_rate=1e-4,
                                               n_reference=6, created_at=T0)
                                          for rid, v in zip(FIXTURE_DRAFTS, [-0.3, -0.2, -0.1, 0.1])])
        store.add_artifact(RUN, "teacher_adapter", "adapter", "/nowhere", {"n_pairs": 3}, logs=[
            {"step": 1, "loss": 0.69, "rewards/accuracies": 0.5, "rewards/margins": 0.01},
            {"step": 2, "loss": 0.6, "rewards/accuracies": 1.0, "rewards/margins": 0.25}])
    store.close()
    return path


EXPECTED_LINES = [
    dict(key="label_balance", status="ok", value=0.5, ci_low=None, ci_high=None, n=6,
         message="3 False / 3 True: balanced within one item; always answering True scores 0.50."),
    # Recall 3/4 on each label: J = 3/4 + 3/4 - 1. The interval resamples drafts and items: with 4 drafts a
    # resample of mostly d3 falls below chance, so it reaches 0 and the line is only `warn`.
    dict(key="above_chance", status="warn", value=0.5, ci_low=-0.5, ci_high=1.0, n=24,
         message="Youden's J 0.50 over 4 drafts × 6 items: barely above chance; more preference items "
                 "(`score.n_pref`) narrow the interval, a stronger student widens the gap."),
    # (0.5 · 3 + 1/3) / 4 = 0.4583, below the 50% chance of repeating one of two labels.
    dict(key="label_copy", status="ok", value=0.4583, ci_low=0.375, ci_high=0.5, n=4,
         message="the student repeats the demo's own answer on 46% of items (chance 50%): the demo's answer does "
                 "not drive the score."),
    dict(key="unparsed", status="warn", value=0.0833, ci_low=0.0, ci_high=0.3333, n=24,
         message="2 of 24 answers gave no answer the task's format reads (8.3%): they count as wrong; let answers "
                 "finish (`score.max_new_tokens`, 0 = the task's budget) or check the task's answer format."),
    dict(key="truncated", status="warn", value=0.0833, ci_low=0.0, ci_high=0.3333, n=24,
         message="2 of 24 answers hit the token cap (8.3%): raise `score.max_new_tokens` (0 = the task's own budget) "
                 "so answers finish."),
    # Every draft scores the same on any half (all right or all wrong): r = 1 on every split.
    dict(key="reliability", status="ok", value=1.0, ci_low=1.0, ci_high=1.0, n=4,
         message="split-half reliability of balanced_accuracy 1.00 over 4 drafts × 6 items; about 1 preference "
                 "items would reach 0.8."),
    dict(key="reliability_influence", status="warn", value=None, ci_low=None, ci_high=None, n=0,
         message="not measured: influence was probed by an older version, which kept no per-reference-item losses."),
    # 1 of the 2 tested pairs at p ≤ 0.05; Wilson's interval of 1/2.
    dict(key="significant_pairs", status="warn", value=0.5, ci_low=0.0945, ci_high=0.9055, n=2,
         message="1 of 2 tested pairs differ beyond noise (p ≤ 0.05); 1 not tested: the others are within noise; "
                 "more preference items (`score.n_pref`) give pairs that are evidence, or set `pairs.max_p` to keep "
                 "only those."),
    # Ranks of accuracy (3, 3, 3, 1) and of -influence (4, 3, 2, 1): r = 3 / sqrt(3 · 5) = 0.7746; Fisher's z
    # 1.0317 ± 1.96 · sqrt(1 + r²/2) / sqrt(4 - 3) = ± 2.2347, back through tanh.
    dict(key="signal_agreement", status="warn", value=0.7746, ci_low=-0.8346, ci_high=0.9971, n=4,
         message="Spearman 0.77 between ICL score and −influence over 4 drafts: weak agreement; read the Signals "
                 "tab's disagreements before trusting either."),
    dict(key="dpo_reward_accuracy", status="ok", value=1.0, ci_low=None, ci_high=None, n=3,
         message="the teacher's implicit reward ranks the chosen side first on 100% of the last logged batch at "
                 "step 2 (TRL logs a batch mean, so no interval)."),
    # 0.25 / beta 0.1 = 2.5 nats.
    dict(key="dpo_reward_margin", status="ok", value=0.25, ci_low=None, ci_high=None, n=3,
         message="final reward margin 0.2500 at step 2 (2.500 nats of log-ratio at beta 0.1)."),
]


def test_arte_health_json_on_a_fixture_store_gives_the_literal_lines(tmp_path, capsys):
    db = _fixture_store(tmp_path / "fixture.duckdb")
    assert main(["health", "--db", str(db), "--run", RUN, "--student", STUDENT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED_LINES
    # The student defaults to the run's; the text form prints each line's status and message.
    assert main(["health", "--db", str(db), "--run", RUN]) == 0
    text = capsys.readouterr().out
    assert "  warn  significant pairs" in text and "1 of 2 tested pairs differ beyond noise" in text


def test_arte_health_refuses_what_it_cannot_audit(tmp_path, capsys):
    db = _fixture_store(tmp_path / "fixture.duckdb")
    assert main(["health", "--db", str(db), "--run", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["health", "--db", str(db), "--run", RUN, "--student", "other"]) == 2
    assert "student 'other' has no scored drafts in run 'health-run'; run `arte score` first." in capsys.readouterr().err
    assert main(["health", "--db", str(tmp_path / "missing.duckdb"), "--run", RUN]) == 2


def test_scores_of_an_older_version_say_how_to_measure_them(tmp_path):
    db = _fixture_store(tmp_path / "fixture.duckdb")
    with Store(db) as store:
        store.execute("UPDATE icl_scores SET label_copy_rate = NULL")
        store.execute("UPDATE icl_items SET truncated = NULL, parse_mode = NULL")
        store.execute("UPDATE pairs SET p_value = NULL")
        lines = {line.key: line for line in signal_health(store, RUN, STUDENT)}
    for key in ("label_copy", "truncated"):
        assert (lines[key].status, lines[key].value, lines[key].message) == \
            ("warn", None, "not measured: scored by an older version; run `arte rescore`.")
    assert lines["significant_pairs"].message.startswith("not tested: none of the 3 pairs has a paired test")
    assert lines["unparsed"].value == 0.0833  # read from the answers, which every version stored


def test_the_studio_handlers_and_export_carry_the_lines(tmp_path):
    db = _fixture_store(tmp_path / "fixture.duckdb")
    with Store(db) as store:
        view = health_handlers.health_view(store, RUN, STUDENT)
        assert view["summary"].startswith("Signal health of **student-h**'s preferences in run `health-run`: "
                                          "6 warn · 5 ok.")
        assert view["table"]["check"].tolist()[:2] == ["label balance of the preference set", "student above chance"]
        assert view["table"].iloc[1].tolist()[:5] == ["⚠️ warn", "student above chance", "0.5", "-0.50 … 1.00", 24]
        assert health_handlers.health_pointer(store, RUN, STUDENT, "drafts") == (
            "**Signal health:** 3 to watch (student above chance, unparsed answers, truncated answers) — see the "
            "**Health** tab.")
        assert health_handlers.health_pointer(store, RUN, STUDENT, "pairs") == (
            "**Signal health:** 2 to watch (significant pairs, agreement of ICL and influence) — see the **Health** tab.")
        assert health_handlers.health_pointer(store, RUN, "nobody", "pairs") == ""
        result = export_handlers.export_files(store, "pairs", RUN, STUDENT, ["jsonl"], folder=tmp_path / "out")
    assert [p.rsplit("/", 1)[-1] for p in result["files"]] == ["pairs_health-run_student-h.jsonl", "health.json"]
    exported = json.loads((tmp_path / "out" / "health.json").read_text())
    assert (exported["run_id"], exported["student"]) == (RUN, STUDENT)
    assert [{k: v for k, v in line.items() if k != "title"} for line in exported["lines"]] == EXPECTED_LINES
    assert exported["lines"][0]["title"] == "label balance of the preference set"


def test_the_cached_lines_follow_a_write(tmp_path):
    db = _fixture_store(tmp_path / "fixture.duckdb")
    with Store(db) as store:
        assert health_handlers.health_lines(store, RUN, STUDENT)[0].status == "ok"
        with store.transaction():
            store.execute("UPDATE pref_items SET target = 'True' WHERE item_index = 1")
        balance = health_handlers.health_lines(store, RUN, STUDENT)[0]
    assert (balance.status, balance.value) == ("bad", 0.6667)  # 4 True / 2 False


def test_pairs_kept_within_noise_are_not_counted_as_evidence():
    from arte_core.health import significant_pairs

    kept_all = significant_pairs([0.01, 0.2, 0.5, None], max_p=1.0)  # the demo keeps every candidate
    assert (kept_all.status, kept_all.value, kept_all.n) == ("bad", 0.3333, 3)  # values are shown to 4 places
    assert "1 of 3 tested pairs differ beyond noise (p ≤ 0.05); 1 not tested" in kept_all.message
    stricter = significant_pairs([0.01, 0.02, 0.5], max_p=0.01)
    assert (stricter.value, stricter.n) == (0.3333, 3)
