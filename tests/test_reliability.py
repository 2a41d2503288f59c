"""Each signal's split-half reliability per run and student, from a real store's per-item rows: the
numbers `signal_reliability` reports (for the Signals tab and `arte health`) against hand-computed ones."""

import math

import numpy as np
import pytest

from arte_core.errors import ArteError
from arte_core.stats import split_half_reliability
from arte_core.store import Store, utcnow
from arte_core.store.signals import icl_item_matrix, influence_item_matrix, signal_reliability

RUN, STUDENT = "run", "student"
# Drafts × items: 1 = right. Items 0-1 are True, 2-3 False. With every draft answering both True items
# alike and both False items alike, every label-stratified split puts one True and one False item in
# each half, so both halves give each draft the same score and r = 1 on every split.
CONSISTENT = {"d0": [1, 1, 0, 0], "d1": [0, 0, 1, 1], "d2": [1, 1, 1, 1], "d3": [0, 0, 0, 0], "d4": [1, 1, 0, 0]}
TARGETS = ["True", "True", "False", "False"]


def make_store(tmp_path, table: dict[str, list[int]], balanced: bool = True, losses: dict | None = None) -> Store:
    store = Store(tmp_path / "store.duckdb")
    with store.transaction():
        store.insert("pref_items", [dict(run_id=RUN, item_index=i, input=f"x{i}", target=t)
                                    for i, t in enumerate(TARGETS)])
        store.insert("questions", [dict(question_id="q", run_id=RUN, origin="draft", idx=0, input="q", target="True",
                                        solver_target=None, solver_agrees=None, teacher="t", call_index=0,
                                        created_at=utcnow())])
        store.insert("rationales", [dict(rationale_id=d, question_id="q", run_id=RUN, origin="draft", technique=d,
                                         prompt="p", text="t", answer="True", answer_parsed=True, matches_target=True,
                                         word_count=1, n_tokens=1, teacher="t", temperature=0.7, seed=0,
                                         created_at=utcnow()) for d in table])
        store.insert("icl_scores", [dict(rationale_id=d, student=STUDENT, run_id=RUN, accuracy=sum(row) / 4, n_items=4,
                                         n_correct=sum(row), n_unparsed=0, icl_format="completion", created_at=utcnow(),
                                         balanced_accuracy=sum(row) / 4 if balanced else None)
                                    for d, row in table.items()])
        store.insert("icl_items", [dict(rationale_id=d, student=STUDENT, item_index=i, output="o", answer="True",
                                        correct=bool(c)) for d, row in table.items() for i, c in enumerate(row)])
        if losses:
            store.insert("influence_items", [dict(rationale_id=d, student=STUDENT, run_id=RUN, item_index=i,
                                                  loss_before=2.0, loss_after=2.0 - helps)
                                             for d, row in losses.items() for i, helps in enumerate(row)])
    return store


def test_consistent_items_give_reliability_one_and_need_no_more_items(tmp_path):
    store = make_store(tmp_path, CONSISTENT)
    result = signal_reliability(store, RUN, STUDENT, "icl")
    assert result == dict(n_drafts=5, n_items=4, reliability=pytest.approx(1.0), ci_low=pytest.approx(1.0),
                          ci_high=pytest.approx(1.0), n_items_for_0_8=1, score="balanced_accuracy")


def test_the_store_matrix_matches_the_table_and_the_reliability_matches_stats(tmp_path):
    table = {"d0": [1, 0, 1, 0], "d1": [1, 1, 1, 0], "d2": [0, 0, 0, 1], "d3": [1, 1, 0, 0], "d4": [0, 1, 1, 1],
             "d5": [0, 0, 0, 0]}
    store = make_store(tmp_path, table, balanced=False)
    data = icl_item_matrix(store, RUN, STUDENT)
    assert data["rationale_ids"] == list(table) and data["matrix"].tolist() == list(table.values())
    assert data["targets"] == TARGETS and data["has_balanced"] is False
    result = signal_reliability(store, RUN, STUDENT, "icl")
    assert result["score"] == "accuracy" and (result["n_drafts"], result["n_items"]) == (6, 4)
    assert result["reliability"] == pytest.approx(split_half_reliability(data["matrix"], 200, 0, strata=TARGETS))
    assert result["ci_low"] <= result["reliability"] <= result["ci_high"]
    with pytest.raises(ArteError, match="no balanced accuracy.*use signal 'accuracy'"):
        signal_reliability(store, RUN, STUDENT, "balanced_accuracy")


def test_pure_label_copiers_have_no_reliability_and_no_n_pref_helps(tmp_path):
    """Drafts that answer True to everything (right on the True items) or False to everything score 0.5
    on every label-stratified half (one item of each label): no spread between drafts, so no reliability,
    and no number of items would make the score rank them."""
    table = {"always_true": [1, 1, 0, 0], "always_false": [0, 0, 1, 1], "true_again": [1, 1, 0, 0],
             "mostly_true": [1, 1, 1, 0]}
    store = make_store(tmp_path, table)
    # halves: the copiers .5/.5; mostly_true 1/.5 or .5/1: one half has no spread in every split
    for signal in ("balanced_accuracy", "accuracy"):
        result = signal_reliability(store, RUN, STUDENT, signal)
        assert result["reliability"] is None and result["n_items_for_0_8"] is None and result["n_drafts"] == 4


def test_influence_reliability_from_the_per_item_losses(tmp_path):
    # loss decreases (helps) per reference item; drafts that help each item alike rank the same on any half
    helps = {"d0": [0.1, 0.1, 0.3, 0.3], "d1": [0.2, 0.2, 0.0, 0.0], "d2": [0.0, 0.0, 0.1, 0.1],
             "d3": [0.3, 0.3, 0.3, 0.3]}
    store = make_store(tmp_path, CONSISTENT, losses=helps)
    data = influence_item_matrix(store, RUN, STUDENT)
    assert data["rationale_ids"] == list(helps) and data["matrix"] == pytest.approx(np.array(list(helps.values())))
    result = signal_reliability(store, RUN, STUDENT, "influence")
    assert (result["n_drafts"], result["n_items"], result["score"]) == (4, 4, "influence")
    assert result["reliability"] == pytest.approx(1.0)
    # one item flips a draft's ranking: the halves no longer agree on every split
    store.execute("UPDATE influence_items SET loss_after = 1.0 WHERE rationale_id = 'd2' AND item_index = 0")
    flipped = signal_reliability(store, RUN, STUDENT, "influence")
    assert flipped["reliability"] < 0.99 and flipped["ci_low"] < flipped["ci_high"]


def test_no_per_item_rows_give_nothing_and_unknown_signals_are_refused(tmp_path):
    store = make_store(tmp_path, CONSISTENT)
    assert signal_reliability(store, RUN, STUDENT, "influence") == dict(
        n_drafts=0, n_items=0, reliability=None, ci_low=None, ci_high=None, n_items_for_0_8=None, score="influence")
    assert signal_reliability(store, RUN, "nobody", "icl")["n_drafts"] == 0
    with pytest.raises(ArteError, match="unknown signal 'loss'; choose one of icl, accuracy"):
        signal_reliability(store, RUN, STUDENT, "loss")


def test_a_draft_missing_an_item_is_left_out(tmp_path):
    store = make_store(tmp_path, CONSISTENT)
    store.execute("DELETE FROM icl_items WHERE rationale_id = 'd4' AND item_index = 3")
    assert signal_reliability(store, RUN, STUDENT, "icl")["n_drafts"] == 4
    assert not math.isnan(signal_reliability(store, RUN, STUDENT, "icl")["reliability"])
