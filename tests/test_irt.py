"""`score.selection: irt`: the 2PL fit and item information (arte_core/irt.py) on data simulated from a
known model, and the score stage's pilot → fit → selection on a real store with a scripted student."""

import numpy as np
import pytest

from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.irt import FIT_NAME, fit_2pl, item_information, most_informative
from arte_core.models.base import Generation
from arte_core.progress import Reporter
from arte_core.prompts import demo_block
from arte_core.stages import score as score_stage
from arte_core.stages.score import demo_answer, pilot_drafts, score_drafts
from arte_core.store import Store, utcnow
from arte_core.store import items as item_store
from arte_core.studio.items import items_view
from helpers import seed_drafts
from test_stages import tiny_config

# The recovery tolerance: mean absolute error of the 2PL parameters on 400 simulated drafts × 30 items.
# Measured: 0.14 (discrimination; max 0.65) and 0.14 (difficulty; max 0.60), r = 0.97 and 0.96 with the
# true values; the bound leaves room for other seeds' noise.
MEAN_ABS_ERROR_MAX = 0.25


def simulate_2pl(discrimination, difficulty, n_drafts, seed):
    rng = np.random.default_rng(seed)
    abilities = rng.normal(size=n_drafts)
    p = 1 / (1 + np.exp(-discrimination[None, :] * (abilities[:, None] - difficulty[None, :])))
    return rng.random(p.shape) < p


def test_on_simulated_2pl_data_the_fit_recovers_the_parameters_and_keeps_the_most_discriminating_items():
    rng = np.random.default_rng(7)
    n_items, n_sharp = 30, 8
    discrimination = np.r_[np.full(n_sharp, 2.2), rng.uniform(0.4, 1.0, n_items - n_sharp)]
    difficulty = rng.uniform(-1.2, 1.2, n_items)
    fit = fit_2pl(simulate_2pl(discrimination, difficulty, 400, seed=8))
    assert fit.fit == FIT_NAME
    assert np.abs(fit.discrimination - discrimination).mean() <= MEAN_ABS_ERROR_MAX
    assert np.abs(fit.difficulty - difficulty).mean() <= MEAN_ABS_ERROR_MAX
    assert np.corrcoef(fit.difficulty, difficulty)[0, 1] >= 0.95
    assert most_informative(fit.information, n_sharp) == list(range(n_sharp))


def test_information_is_a_squared_times_p_times_one_minus_p():
    # a = 2, b = 0 at θ = 0: P = 0.5, so 4 · 0.25 = 1; at θ = b + ln(3)/a: P = 0.75, so 4 · 0.1875 = 0.75.
    info = item_information(np.array([0.0, np.log(3) / 2]), np.array([0.0]), np.array([2.0]))
    assert info[:, 0] == pytest.approx([1.0, 0.75])


def test_items_every_draft_gets_right_or_wrong_have_no_fit_and_no_information():
    rng = np.random.default_rng(3)
    correct = simulate_2pl(np.full(6, 1.5), np.linspace(-1, 1, 6), 120, seed=4)
    correct = np.c_[np.ones(120, dtype=bool), correct, np.zeros(120, dtype=bool)]
    fit = fit_2pl(correct)
    assert np.isnan(fit.difficulty[[0, 7]]).all() and np.isnan(fit.discrimination[[0, 7]]).all()
    assert fit.information[0] == fit.information[7] == 0
    assert not np.isnan(fit.difficulty[1:7]).any()
    assert 0 not in most_informative(fit.information, 6) and 7 not in most_informative(fit.information, 6)
    assert rng is not None


def test_with_nothing_to_fit_the_first_candidates_are_kept_and_the_fit_says_why():
    fit = fit_2pl(np.zeros((5, 6), dtype=bool))
    assert fit.fit.startswith("skipped: only 0 of 6") and not fit.information.any()
    assert most_informative(fit.information, 3) == [0, 1, 2]


# -- the score stage ----------------------------------------------------------------------------

def irt_ctx(tmp_path, tiny_model_dir, **overrides):
    store = Store(tmp_path / "store.duckdb")
    settings = dict(score__selection="irt", score__n_pref=4, score__n_candidates=8, score__n_pilot_drafts=20)
    config = tiny_config(tiny_model_dir, tmp_path, **(settings | overrides))
    return open_run(config, store, Reporter(tmp_path / "events.jsonl", show_bar=False))


# 24 drafts (12 questions × 2 techniques); the pilot takes 20 of them.
DRAFT_QUESTIONS = [("not " * i + "True is", "True" if i % 2 == 0 else "False") for i in range(12)]
THRESHOLDS = (5, 8, 11, 14)


class ScriptedStudent:
    """Answers by a Guttman pattern over the drafts' ranks (pilot drafts first): the first four candidates
    are right exactly for the drafts of rank ≥ 5, 8, 11 and 14 (each splits the drafts at its own point);
    the next two are always right; the last two are right on a fixed coin flip per draft, unrelated to rank."""

    def __init__(self, ctx):
        self.candidates = [c["input"] for c in ctx.pref_items]
        self.targets = {c["input"]: c["target"] for c in ctx.pref_items}
        drafts = ctx.store.rationales(ctx.run_id)
        pilot = pilot_drafts(drafts, ctx.config.score.n_pilot_drafts, ctx.config.seed)
        ranked = pilot + [r for r in drafts if r not in pilot]
        self.rank = {demo_block(r["question"], r["text"], demo_answer(r)): d for d, r in enumerate(ranked)}
        self.coins = np.random.default_rng(11).random((2, len(drafts))) < 0.5
        self.prompts = 0

    def right(self, draft_rank: int, k: int) -> bool:
        if k < 4:
            return draft_rank >= THRESHOLDS[k]
        return True if k < 6 else bool(self.coins[k - 6, draft_rank])

    def generate_each(self, prompts, params, batch_size=8):
        for index, prompt in enumerate(prompts):
            self.prompts += 1
            demo, question = prompt.rsplit("\n\n", 1)
            item = next(c for c in self.candidates if question.startswith(f"Q: {c}\n"))
            rank = self.rank[demo]
            target = self.targets[item]
            answer = target if self.right(rank, self.candidates.index(item)) else {"True": "False", "False": "True"}[target]
            yield index, Generation(f" So the answer is {answer}.", 1, 1, True)


def scripted(ctx, monkeypatch):
    student = ScriptedStudent(ctx)
    monkeypatch.setattr(ctx.models, "student", lambda name=None: student)
    return student


def test_irt_runs_store_the_candidate_pool_and_a_non_default_selection_changes_the_run(tmp_path, tiny_model_dir):
    ctx = irt_ctx(tmp_path, tiny_model_dir)
    assert len(ctx.pref_items) == 8 and len(ctx.test_items) == 3
    balanced = tiny_config(tiny_model_dir, tmp_path)
    assert ctx.config.fingerprint() != balanced.fingerprint()
    assert tiny_config(tiny_model_dir, tmp_path, score__n_candidates=9, score__selection="irt").fingerprint() \
        != ctx.config.fingerprint()
    # Pool and pilot sizes do nothing without an 'irt' selection, so they leave the run alone.
    assert tiny_config(tiny_model_dir, tmp_path, score__n_candidates=9).fingerprint() == balanced.fingerprint()
    too_few = tiny_config(tiny_model_dir, tmp_path, score__selection="irt", score__n_candidates=4)
    too_few.run_name = "other"
    with pytest.raises(ArteError, match=r"n_candidates \(4\) must exceed score.n_pref"):
        open_run(too_few, ctx.store)
    assert "other" not in [r["run_id"] for r in ctx.store.list_runs()]  # refused before the store is touched
    ctx.store.close()


def test_random_selection_is_a_plain_seeded_draw_and_balanced_stays_the_default(tmp_path, tiny_model_dir):
    from arte_core.tasks import load_task
    task = load_task("boolean_expressions", None, seed=0)
    plain = task.split(40, 20, seed=0, stratify=False)
    assert task.split(40, 20, seed=0, stratify=False) == plain  # seeded
    assert task.split(40, 20, seed=0) != plain
    targets = [e.target for e in task.split(40, 20, seed=0)[0]]
    assert targets.count("True") == targets.count("False") == 20


def test_the_score_stage_pilots_fits_keeps_the_most_informative_candidates_and_scores_on_them(
        tmp_path, tiny_model_dir, monkeypatch):
    ctx = irt_ctx(tmp_path, tiny_model_dir)
    seed_drafts(ctx, DRAFT_QUESTIONS)
    student = scripted(ctx, monkeypatch)
    candidates = [c["item_index"] for c in ctx.pref_items]
    assert score_drafts(ctx) == 24
    pilot = pilot_drafts(ctx.store.rationales(ctx.run_id), 20, ctx.config.seed)
    assert student.prompts == 20 * 8 + 4 * 4  # the pilot on every candidate, the others on the kept items only
    stored = item_store.item_candidates(ctx.store, ctx.run_id)
    assert [c["item_index"] for c in stored] == candidates
    # The Guttman items separate the drafts; the always-right ones have no fit; the coin-flip ones carry
    # less information than the four that order the drafts.
    kept = [c["item_index"] for c in stored if c["selected"]]
    assert [c["item_index"] for c in ctx.pref_items] == kept == candidates[:4]
    assert all(c["difficulty"] is None and c["information"] == 0 for c in stored[4:6])
    assert all(c["discrimination"] is not None for c in stored[:4] + stored[6:])
    assert stored[0]["fit"] == FIT_NAME and stored[0]["n_pilot"] == 20
    scores = {s["rationale_id"]: s for s in ctx.store.rows("SELECT * FROM icl_scores")}
    assert len(scores) == 24 and {s["n_items"] for s in scores.values()} == {4}
    items = ctx.store.rows("SELECT rationale_id, item_index FROM icl_items")
    assert len(items) == 24 * 4 and {i["item_index"] for i in items} == set(kept)
    for draft in pilot:  # a pilot draft's score counts the kept items only, from its stored answers
        answers = item_store.candidate_answers(ctx.store, ctx.run_id, ctx.config.student)
        right = sum(a["correct"] for a in answers if a["rationale_id"] == draft["rationale_id"] and a["item_index"] in kept)
        assert scores[draft["rationale_id"]]["n_correct"] == right
        assert scores[draft["rationale_id"]]["accuracy"] == right / 4
    assert score_drafts(ctx) == 0 and student.prompts == 20 * 8 + 4 * 4  # nothing recomputed
    ctx.store.close()


def test_a_kill_after_the_pilot_keeps_its_answers_and_a_kill_after_the_fit_keeps_the_fit(
        tmp_path, tiny_model_dir, monkeypatch):
    ctx = irt_ctx(tmp_path, tiny_model_dir)
    seed_drafts(ctx, DRAFT_QUESTIONS)
    student = scripted(ctx, monkeypatch)

    def killed(_):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(score_stage, "fit_2pl", killed)
        with pytest.raises(KeyboardInterrupt):
            score_drafts(ctx)
    assert student.prompts == 20 * 8 and len(ctx.pref_items) == 8
    assert not ctx.store.draft_scores(ctx.run_id, ctx.config.student)
    with monkeypatch.context() as patch:
        patch.setattr(score_stage, "_store_draft_score", lambda *a: killed(a))
        with pytest.raises(KeyboardInterrupt):
            score_drafts(ctx)
    assert student.prompts == 20 * 8 + 4  # no pilot answer asked again; killed on the first other draft
    assert len(ctx.pref_items) == 4 and len(ctx.store.draft_scores(ctx.run_id, ctx.config.student)) == 20
    fitted = item_store.item_candidates(ctx.store, ctx.run_id)
    assert score_drafts(ctx) == 4
    assert item_store.item_candidates(ctx.store, ctx.run_id) == fitted
    ctx.store.close()


def test_the_items_view_shows_each_items_fit_share_correct_and_flags_items_no_draft_separates(
        tmp_path, tiny_model_dir, monkeypatch):
    ctx = irt_ctx(tmp_path, tiny_model_dir)
    seed_drafts(ctx, DRAFT_QUESTIONS)
    scripted(ctx, monkeypatch)
    score_drafts(ctx)
    shown = items_view(ctx.store, ctx.run_id, ctx.config.student)
    table = shown["table"]
    assert len(table) == 8 and table["selected"].tolist() == ["yes"] * 4 + ["no"] * 4
    assert table["flag"].tolist()[4:6] == ["every draft right"] * 2
    assert table["flag"].tolist()[:4] == [""] * 4
    # Share correct over every scored draft (24) for kept items, over the pilot (20) for the others.
    assert table["n"].tolist() == [24] * 4 + [20] * 4
    assert "2PL" in shown["summary"] and "20 pilot drafts" in shown["summary"]
    assert table["difficulty"].iloc[4] == "" and table["difficulty"].iloc[0] != ""
    ctx.store.close()


def test_a_job_that_made_the_selection_shrinks_the_project_stores_preference_split_on_ingest(tmp_path, tiny_model_dir):
    from arte_core.store.transfer import export_run, ingest
    ctx = irt_ctx(tmp_path, tiny_model_dir)
    export_run(ctx.store, ctx.run_id, tmp_path / "job.duckdb")
    candidates = [dict(c, selected=k < 4, difficulty=None, discrimination=None, information=0.0, n_pilot=0,
                       n_pilot_correct=0, student="s", fit="skipped: test", created_at=utcnow())
                  for k, c in enumerate(ctx.pref_items)]
    with Store(tmp_path / "job.duckdb") as job:  # what the job's score stage does to its copy
        item_store.apply_item_selection(job, ctx.run_id, candidates, [], [])
    ingest(ctx.store, tmp_path / "job.duckdb")
    assert len(ctx.pref_items) == 4
    ctx.store.close()
