"""Pair building from hand-made scores."""

import pytest

from arte_core.stages.pairs import (ScoredPair, combined_scores, helpful_harmful_pairs, question_pairs, question_scores,
                                    rationale_pairs)
from arte_core.stats import percentile_ranks


def rows(spec):
    """spec: {question_id: [score per technique]} -> draft rows."""
    return [dict(question_id=q, rationale_id=f"{q}:t{i}", score=s)
            for q, scores in spec.items() for i, s in enumerate(scores)]


def test_question_score_is_mean_of_rationales():
    assert question_scores(rows({"q1": [1.0, 0.5], "q2": [0.0, 0.0, 0.3]})) == pytest.approx({"q1": 0.75, "q2": 0.1})


def test_question_pairs_top_vs_bottom_quartile():
    scores = {f"q{i}": i / 10 for i in range(8)}  # q7 best … q0 worst; quartile of 8 = 2
    pairs = question_pairs(scores, quantile=0.25, n_pairs=50, min_margin=0.0, seed=0)
    assert {(p.chosen, p.rejected) for p in pairs} == {("q7", "q1"), ("q7", "q0"), ("q6", "q1"), ("q6", "q0")}
    assert all(p.margin > 0 for p in pairs)


def test_question_pairs_respect_count_margin_and_seed():
    scores = {f"q{i}": i / 20 for i in range(20)}
    a = question_pairs(scores, 0.25, n_pairs=3, min_margin=0.0, seed=1)
    b = question_pairs(scores, 0.25, n_pairs=3, min_margin=0.0, seed=1)
    assert a == b and len(a) == 3
    assert question_pairs({"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}, 0.25, 10, 0.0, 0) == []  # ties skipped
    assert question_pairs({"a": 1.0}, 0.25, 10, 0.0, 0) == []


def test_rationale_pairs_best_vs_worst_and_ties_skipped():
    pairs = rationale_pairs(rows({"q1": [0.2, 0.9, 0.4, 0.9], "q2": [0.5, 0.5]}), min_margin=0.0)
    assert pairs == [ScoredPair("q1:t1", "q1:t0", 0.9, 0.2)]  # tie for best broken by id; q2 all tied


def test_rationale_pairs_min_margin():
    assert rationale_pairs(rows({"q1": [0.5, 0.6]}), min_margin=0.1) == []
    assert len(rationale_pairs(rows({"q1": [0.5, 0.7]}), min_margin=0.1)) == 1


def test_helpful_harmful_pairs_within_each_prompt_only():
    groups = {"call-0": {"a": 0.3, "b": -0.1, "c": 0.2, "d": 0.0}, "call-1": {"e": 0.5}, "call-2": {"f": -0.4, "g": 0.1}}
    pairs = helpful_harmful_pairs(groups, neutral=0.0, min_margin=0.0)
    # every helpful × harmful draft of one prompt; d sits at the neutral point; e has no harmful partner
    assert pairs == [ScoredPair("a", "b", 0.3, -0.1), ScoredPair("c", "b", 0.2, -0.1), ScoredPair("g", "f", 0.1, -0.4)]
    assert helpful_harmful_pairs(groups, neutral=0.0, min_margin=0.35) == [ScoredPair("a", "b", 0.3, -0.1),
                                                                          ScoredPair("g", "f", 0.1, -0.4)]
    assert helpful_harmful_pairs(groups, neutral=0.25, min_margin=0.0)[0] == ScoredPair("a", "b", 0.3, -0.1)


def test_percentile_ranks_share_ties_and_span_zero_to_one():
    assert percentile_ranks([0.5, 0.1, 0.5, 0.9]) == [0.5, 0.0, 0.5, 1.0]
    assert percentile_ranks([3.0]) == [0.5] and percentile_ranks([]) == []


def test_combined_scores_weigh_both_signals_alike_and_need_both():
    icl = [dict(rationale_id=r, accuracy=a) for r, a in (("a", 1.0), ("b", 0.5), ("c", 0.0), ("d", 0.75))]
    influence = [dict(rationale_id=r, influence=x) for r, x in (("a", 0.2), ("b", -0.01), ("c", -0.5))]
    rows = {r["rationale_id"]: r for r in combined_scores(icl, influence)}
    assert set(rows) == {"a", "b", "c"}  # d has no influence score
    # accuracy ranks a > b > c; -influence ranks c > b > a: a and c even out, b is in the middle of both
    assert {k: r["score"] for k, r in rows.items()} == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.5})
    assert rows["a"]["influence"] == 0.2 and rows["a"]["accuracy"] == 1.0
    agreeing = combined_scores(icl, [dict(rationale_id=r, influence=-a) for r, a in (("a", 1.0), ("b", 0.5), ("c", 0.0))])
    assert [r["score"] for r in agreeing] == pytest.approx([1.0, 0.5, 0.0])
