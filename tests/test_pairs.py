"""Pair building from hand-made scores, and each pair's paired exact test."""

from fractions import Fraction
from types import SimpleNamespace

import pytest

from arte_core.config import RunConfig

from arte_core.stages.pair_evidence import PairTest, exact_score, question_test, rationale_test, untested
from arte_core.stages.pairs import (ScoredPair, combined_scores, formed_pairs, helpful_harmful_pairs, question_pairs,
                                    question_scores, quantile_groups, rationale_pairs, scored_pairs)
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


# -- ties on equal counts -------------------------------------------------------------------------------

def outcomes(n_correct: int, n_items: int = 12) -> dict[int, bool]:
    return {i: i < n_correct for i in range(n_items)}


def test_ties_on_equal_counts_are_ties_in_question_scores_and_groups():
    """The demo's case: two questions whose rationales got 26 of 48 items right in all (13/24 = 0.5417).
    As floats their means differ in the last bit and one question dropped out of the top group."""
    counts = {"qa": (0, 2, 12, 12), "qb": (0, 6, 10, 10), "qc": (1, 1, 1, 1), "qd": (0, 0, 0, 0)}
    as_floats = rows({q: [n / 12 for n in c] for q, c in counts.items()})
    assert question_scores(as_floats)["qa"] != question_scores(as_floats)["qb"]  # the float bug, still there
    exact = [dict(row, score=exact_score(outcomes(n), None))
             for row, n in zip(rows({q: list(c) for q, c in counts.items()}), sum(counts.values(), ()))]
    scores = question_scores(exact)
    assert scores["qa"] == scores["qb"] == Fraction(13, 24)
    assert quantile_groups(scores, 0.25) == (["qa", "qb"], ["qd"])  # the tie is in the top group together
    pairs = question_pairs(scores, quantile=0.25, n_pairs=50, min_margin=0.0, seed=0)
    assert {(p.chosen, p.rejected) for p in pairs} == {("qa", "qd"), ("qb", "qd")}


def test_the_stage_ranks_on_exact_scores_not_the_stored_floats():
    """Rows carry the stored float `score` (what users see) and its `exact_score`; pairs use the latter."""
    counts = {"qa": (0, 2, 12, 12), "qb": (0, 6, 10, 10), "qc": (1, 1, 1, 1), "qd": (0, 0, 0, 0)}
    draft_rows = [dict(row, score=n / 12, exact_score=Fraction(n, 12))
                  for row, n in zip(rows({q: list(c) for q, c in counts.items()}), sum(counts.values(), ()))]
    ctx = SimpleNamespace(config=RunConfig(task="boolean_expressions", teacher="t", student="s"))
    found = scored_pairs(ctx, draft_rows, "icl", "arte")
    assert {(p.chosen, p.rejected) for p in found["question"]} == {("qa", "qd"), ("qb", "qd")}


def test_a_tie_across_both_group_boundaries_is_in_neither_group():
    scores = {"a": Fraction(3, 4), "b": Fraction(1, 2), "c": Fraction(1, 2), "d": Fraction(1, 2), "e": Fraction(1, 4)}
    assert quantile_groups(scores, 0.5) == (["a"], ["e"])  # b, c, d are no better than the bottom: neither
    assert quantile_groups({"a": 1, "b": 1}, 0.25) == ([], [])  # all tied: no groups, no pairs
    assert quantile_groups({"a": 1}, 0.25) == ([], [])


def test_balanced_exact_scores_tie_on_equal_per_label_counts_whatever_the_item_order():
    targets = {0: "A", 1: "B", 2: "C", 3: "C", 4: "C"}
    first = exact_score({0: True, 1: True, 2: True, 3: False, 4: False}, targets)
    second = exact_score({0: True, 1: True, 2: False, 3: True, 4: False}, targets)
    assert first == second == Fraction(7, 9)
    assert exact_score({0: True, 1: False, 2: True, 3: True, 4: False}, None) == Fraction(3, 5)


# -- paired exact tests ------------------------------------------------------------------------------

def test_rationale_pairs_are_tested_by_mcnemar_on_the_shared_items():
    # 12 items: both right on 3, only the chosen right on 7, only the rejected right on 1, both wrong on 1
    chosen = {i: i < 10 for i in range(12)}
    rejected = {i: i < 3 or i == 10 for i in range(12)}
    test = rationale_test(chosen, rejected)
    assert (test.n_shared, test.n_chosen_only, test.n_rejected_only, test.pair_test) == (12, 7, 1, "mcnemar_exact")
    assert test.p_value == 0.0703125  # 2 · P(X ≤ 1 | Bin(8, 1/2)) = 2 · 9/256
    # an item only one side answered is not shared: it is no evidence either way
    assert rationale_test({**chosen, 12: True}, rejected).n_shared == 12


def test_question_pairs_are_tested_by_a_sign_test_over_items_on_rationale_shares():
    # per item, share of each question's two rationales right:
    # chosen  [1, 1, 1/2, 1/2, 0, 1/2]   rejected [1/2, 0, 1/2, 0, 0, 1]
    chosen = [{0: 1, 1: 1, 2: 1, 3: 0, 4: 0, 5: 1}, {0: 1, 1: 1, 2: 0, 3: 1, 4: 0, 5: 0}]
    rejected = [{0: 1, 1: 0, 2: 1, 3: 0, 4: 0, 5: 1}, {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 1}]
    test = question_test(chosen, rejected)
    # chosen better on items 0, 1, 3; worse on 5; tied on 2, 4: 2 · P(X ≤ 1 | Bin(4, 1/2)) = 2 · 5/16
    assert (test.n_shared, test.n_chosen_only, test.n_rejected_only, test.pair_test) == (6, 3, 1, "item_sign_test")
    assert test.p_value == 0.625
    # one rationale per question: the sign test is McNemar's test (only the chosen right on items 0-2: 2/8)
    one = question_test([chosen[0]], [rejected[1]])
    assert (one.n_chosen_only, one.n_rejected_only, one.p_value) == (3, 0, 0.25)
    assert one == PairTest(**{**rationale_test(chosen[0], rejected[1]).columns(), "pair_test": "item_sign_test"})


def test_a_pair_is_formed_only_when_its_test_favours_the_chosen_side_at_max_p():
    significant = PairTest(0.03125, 12, 6, 0, "mcnemar_exact")
    noise = PairTest(0.0703125, 12, 7, 1, "mcnemar_exact")
    backwards = PairTest(0.03125, 12, 0, 6, "mcnemar_exact")  # the items favour the rejected side
    assert significant.passes(0.05) and not noise.passes(0.05) and not backwards.passes(0.05)
    assert noise.passes(0.1) and backwards.passes(1.0)  # 1 keeps every candidate
    assert untested("influence").passes(0.0) and untested("influence").p_value is None
    assert "no per-item outcome" in untested("influence").pair_test
    candidates = [dict(pair_id=name, **test.columns())
                  for name, test in (("s", significant), ("n", noise), ("b", backwards), ("u", untested("both")))]
    assert [r["pair_id"] for r in formed_pairs(candidates, 0.05)] == ["s", "u"]
