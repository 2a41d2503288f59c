"""The study (issue 16 items 4-5): evaluation statistics on hand-made items against hand-computed values
(Wilson, McNemar, a t test, the minimum detectable effect) and seeded bootstrap intervals pinned to
literals; `arte study` end to end on a tiny random model; the Study tab's handler."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from arte_core.errors import ArteError
from arte_core.stats import hierarchical_bootstrap, minimum_detectable_effect, paired_bootstrap_ci
from arte_core.store import Store, utcnow
from arte_core.store.study import has_column, study_eval_items
from arte_core.study.aggregate import arm_table, differences
from arte_core.study.evaluation import arm_accuracy, arm_comparisons, items_of_runs
from arte_core.study.report import FILES, display_table, load_study, study_markdown, study_result, write_study
from arte_core.study.runner import study_cells, study_stages, time_left
from helpers import make_config

Z975, Z80 = 1.959963984540054, 0.8416212335729143  # the normal quantiles behind 2.80 × SE

# Two seeds × 10 shared items. Seed 0: original 5/10, arte 8/10 (arte alone right on 3 items, original
# alone on none); seed 1: original 5/10, arte 7/10 (3 vs 1). Untrained: 4/10 and 3/10.
ARMS = {
    0: {"untrained": [1, 0, 1, 0, 0, 0, 0, 1, 0, 1], "original": [1, 1, 1, 0, 0, 0, 0, 1, 0, 1],
        "arte": [1, 1, 1, 1, 1, 0, 1, 1, 0, 1]},
    1: {"untrained": [1, 0, 1, 0, 0, 0, 1, 0, 0, 0], "original": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
        "arte": [1, 1, 1, 1, 1, 1, 0, 0, 1, 0]},
}


def hand_items(task: str = "navigate", shots: int = 3) -> pd.DataFrame:
    """The items above; the untrained arm's items 1 and 3 unparsed and item 9 cut off."""
    rows = []
    for seed, arms in ARMS.items():
        for variant, correct in arms.items():
            for i, ok in enumerate(correct):
                unparsed = variant == "untrained" and i in (1, 3)  # both wrong in each seed
                rows.append(dict(task=task, seed=seed, run_id=f"{task}-s{seed}", variant=variant, shots=shots,
                                 item_index=i, correct=bool(ok), answer=None if unparsed else ("Yes" if ok else "No"),
                                 parse_mode="none" if unparsed else "strict",
                                 truncated=variant == "untrained" and i == 9))
    return pd.DataFrame(rows)


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval by its textbook formula."""
    p, z = k / n, Z975
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_each_arm_of_a_run_has_its_wilson_interval_and_its_unparsed_and_truncated_rates():
    table = arm_accuracy(hand_items()).set_index(["run_id", "variant", "shots"])
    arte = table.loc[("navigate-s0", "arte", 3)]
    assert (arte["n"], arte["n_correct"], arte["accuracy"]) == (10, 8, 0.8)
    assert (arte["ci_low"], arte["ci_high"]) == pytest.approx(wilson(8, 10), abs=1e-12)
    assert (arte["ci_low"], arte["ci_high"]) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    untrained = table.loc[("navigate-s0", "untrained", 3)]
    assert (untrained["unparsed_rate"], untrained["truncated_rate"]) == (0.2, 0.1)
    assert list(table.loc["navigate-s0"].index.get_level_values("variant")) == ["untrained", "original", "arte"]


def test_between_arms_on_the_same_items_mcnemar_exact_and_a_seeded_paired_bootstrap():
    comparisons = arm_comparisons(hand_items(), n_resamples=2000, seed=0)
    row = comparisons.set_index(["run_id", "treatment", "control"]).loc[("navigate-s1", "arte", "original")]
    assert (row["n"], row["treatment_only"], row["control_only"], row["difference"]) == (10, 3, 1, 0.2)
    # McNemar exact: 2 · P(X ≤ 1), X ~ Bin(4, 1/2) = 2 · 5/16
    assert row["p_mcnemar"] == pytest.approx(2 * 5 / 16)
    assert row["ci_low"] <= 0.2 <= row["ci_high"]
    again = arm_comparisons(hand_items(), n_resamples=2000, seed=0)
    assert again.equals(comparisons)  # seeded: the same intervals every time
    diffs = np.array(ARMS[1]["arte"]) - np.array(ARMS[1]["original"])
    assert paired_bootstrap_ci(ARMS[1]["arte"], ARMS[1]["original"], 2000, 7) == pytest.approx(
        _percentile_bootstrap(diffs, 2000, 7))


def _percentile_bootstrap(diffs: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """The paired bootstrap written out: resample items (with both answers), take the 2.5 and 97.5 percentiles."""
    rng = np.random.default_rng(seed)
    means = [diffs[rng.integers(0, len(diffs), len(diffs))].mean() for _ in range(n_resamples)]
    return tuple(np.percentile(means, [2.5, 97.5]))


def test_arte_minus_original_over_seeds_pools_the_discordant_items_and_states_the_detectable_effect():
    row = differences(hand_items(), n_resamples=2000, seed=0).iloc[0]
    assert (row["task"], row["n_seeds"], row["n_items"]) == ("navigate", 2, 20)
    assert row["difference"] == pytest.approx(0.25)  # the seeds' differences 0.3 and 0.2
    assert (row["treatment_only"], row["control_only"]) == (6, 1)
    assert row["p_mcnemar"] == pytest.approx(2 * (1 + 7) / 2**7)  # 2 · P(X ≤ 1), X ~ Bin(7, 1/2) = 0.125
    # t test of the per-seed differences [0.3, 0.2]: t = 0.25 / (0.0707 / √2) = 5 on 1 df, p = 1 − 2·atan(5)/π
    assert row["p_seeds"] == pytest.approx(1 - 2 * math.atan(5) / math.pi)
    assert row["paired_sd"] == pytest.approx(np.std(np.r_[np.subtract(ARMS[0]["arte"], ARMS[0]["original"]),
                                                          np.subtract(ARMS[1]["arte"], ARMS[1]["original"])], ddof=1))
    assert row["mde"] == pytest.approx((Z975 + Z80) * row["se"], rel=1e-5)
    # The seeded hierarchical bootstrap, pinned: a change in how it resamples shows here.
    assert (row["ci_low"], row["ci_high"], row["se"]) == pytest.approx((0.0, 0.5, 0.1249), abs=5e-4)


def test_the_hierarchical_bootstrap_resamples_seeds_then_items():
    one_seed = hierarchical_bootstrap([[1, 0, 1, 1]], 4000, np.random.default_rng(0))
    assert one_seed.mean() == pytest.approx(0.75, abs=0.01)  # one seed: the plain item bootstrap of the mean
    assert one_seed.std() == pytest.approx(math.sqrt(0.75 * 0.25 / 4), abs=0.01)
    # Seeds that disagree but whose items do not vary: only the seed stage adds spread. Means over 2 drawn
    # seeds of {0, 1} are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: sd √(1/8).
    between = hierarchical_bootstrap([[0, 0, 0], [1, 1, 1]], 4000, np.random.default_rng(0))
    assert set(np.round(between, 6)) == {0.0, 0.5, 1.0}
    assert between.std() == pytest.approx(math.sqrt(1 / 8), abs=0.01)
    assert minimum_detectable_effect(0.1) == pytest.approx((Z975 + Z80) * 0.1, rel=1e-5)
    assert minimum_detectable_effect(None) is None


def test_the_study_table_has_every_arm_and_task_with_intervals_and_pools_the_difference():
    items = pd.concat([hand_items("navigate"), hand_items("web_of_lies")], ignore_index=True)
    items.loc[items["task"] == "web_of_lies", "correct"] = items.loc[items["task"] == "web_of_lies", "correct"].to_numpy()[::-1]
    arms = arm_table(items, n_resamples=500, seed=0)
    assert len(arms) == 6 and set(arms["n_seeds"]) == {2} and set(arms["n_items"]) == {20}
    assert (arms["ci_low"] <= arms["accuracy"]).all() and (arms["accuracy"] <= arms["ci_high"]).all()
    nav_arte = arms[(arms["task"] == "navigate") & (arms["variant"] == "arte")].iloc[0]
    assert nav_arte["accuracy"] == pytest.approx(0.75)
    diffs = differences(items, n_resamples=500, seed=0).set_index("task")
    assert list(diffs.index) == ["navigate", "web_of_lies", "pooled"]
    assert diffs.loc["pooled", "difference"] == pytest.approx(diffs.loc[["navigate", "web_of_lies"], "difference"].mean())
    assert diffs.loc["pooled", "n_items"] == 40 and diffs.loc["pooled", "n_seeds"] == 4
    shown = display_table(study_result(items, [], n_resamples=500))
    assert list(shown.columns) == ["shots", "arm", "navigate", "web_of_lies", "pooled"]
    assert list(shown["arm"]) == ["untrained", "original", "arte", "arte − original"]
    assert shown.iloc[2]["navigate"].startswith("0.750 [") and shown.iloc[2]["navigate"].endswith("n=20")
    assert "p=" in shown.iloc[3]["pooled"]


def test_the_report_files_carry_the_table_its_intervals_and_the_detectable_effect(tmp_path):
    result = study_result(hand_items(), [dict(task="navigate", seed=0, run_id="navigate-s0")], n_resamples=500,
                          study_id="abc", student="tiny")
    paths = write_study(result, tmp_path / "study-abc")
    assert sorted(p.name for p in paths.values()) == sorted(FILES)
    markdown = paths["study.md"].read_text()
    assert "minimum detectable arte − original difference" in markdown and "| 3 | arte |" in markdown
    stored = load_study(tmp_path / "study-abc")
    assert stored["differences"][0]["p_mcnemar"] == pytest.approx(0.125)
    assert json.dumps(stored, allow_nan=False)  # no NaN in the JSON
    assert "error_y" in paths["study.html"].read_text()


# -- the store read, before and after eval_items records students ------------------------------------


def store_with_evaluations(path, items: pd.DataFrame, student: str = "tiny") -> Store:
    """A store holding `items` as the evaluate stage stores them, one run per task × seed (the store
    files items under the run's student where it records students)."""
    store = Store(path)
    for (run_id, task, seed), part in items.groupby(["run_id", "task", "seed"]):
        config = {"task": task, "seed": int(seed), "student": student}
        store.ensure_run(run_id, task, "builtin", "teacher", student, f"fp{seed}", yaml.safe_dump(config))
        for (variant, shots), cell in part.groupby(["variant", "shots"]):
            rows = [dict(run_id=run_id, variant=variant, shots=int(shots), item_index=int(r.item_index), output="o",
                         answer=r.answer if isinstance(r.answer, str) else None, correct=bool(r.correct),
                         parse_mode=r.parse_mode, truncated=bool(r.truncated)) for r in cell.itertuples()]
            n_correct = sum(r["correct"] for r in rows)
            summary = dict(run_id=run_id, variant=variant, shots=int(shots), accuracy=n_correct / len(rows),
                           n_items=len(rows), n_correct=n_correct, n_unparsed=sum(r["answer"] is None for r in rows),
                           model="m", created_at=utcnow(), n_truncated=sum(r["truncated"] for r in rows))
            store.add_evaluation(summary, rows)
    return store


def test_the_store_read_returns_each_runs_items_for_its_student(tmp_path):
    with store_with_evaluations(tmp_path / "s.duckdb", hand_items()) as store:
        frame = study_eval_items(store, ["navigate-s0"], "tiny")
        assert len(frame) == 30 and frame["correct"].dtype == bool
        items = items_of_runs(store, [dict(run_id="navigate-s1", task="navigate", seed=1, student="tiny")])
        assert set(items["seed"]) == {1} and len(items) == 30
        if has_column(store, "eval_items", "student"):
            assert study_eval_items(store, ["navigate-s0"], "someone else").empty


def test_the_study_tab_shows_the_stores_study_and_a_written_one(tmp_path):
    from arte_core.studio.study import FROM_STORE, study_choices, study_view

    runs_dir = tmp_path / "runs"
    with store_with_evaluations(tmp_path / "s.duckdb", hand_items()) as store:
        shown = study_view(store, runs_dir, FROM_STORE)
        assert list(shown["table"].columns) == ["shots", "arm", "navigate"]
        assert list(shown["table"]["arm"]) == ["untrained", "original", "arte", "arte − original"]
        assert "p=0.125" in shown["table"].iloc[3]["navigate"] and "n=20" in shown["table"].iloc[3]["navigate"]
        assert "**2 runs**" in shown["summary"] and "detects at α 0.05 with 80% power" in shown["summary"]
        assert {"ci_low", "ci_high", "n_items", "unparsed_rate", "truncated_rate"} <= set(shown["arms"].columns)
        assert len(shown["figure"].data) == 3  # one bar trace per arm
        write_study(study_result(hand_items("web_of_lies"), [], n_resamples=200, study_id="w"), runs_dir / "study-w")
        assert study_choices(runs_dir) == [FROM_STORE, str(runs_dir / "study-w")]
        written = study_view(store, runs_dir, str(runs_dir / "study-w"))
        assert list(written["table"].columns) == ["shots", "arm", "web_of_lies"]
        with pytest.raises(ArteError, match="no study at"):
            study_view(store, runs_dir, str(tmp_path))  # only study folders under the runs folder are read
    with Store(tmp_path / "empty.duckdb") as empty:
        assert "No evaluated run yet" in study_view(empty, runs_dir)["summary"]


def test_the_stores_study_counts_two_runs_of_one_task_and_seed_as_two_replicates(tmp_path):
    """The demo loop and a study cell can share a task and seed: the bootstrap must resample them as two runs."""
    from arte_core.studio.study import FROM_STORE, study_view

    items = hand_items().assign(seed=0)  # navigate-s0 and navigate-s1, both configured with seed 0
    with store_with_evaluations(tmp_path / "s.duckdb", items) as store:
        shown = study_view(store, tmp_path / "runs", FROM_STORE)
    assert "**2 runs**" in shown["summary"] and "(their seeds: 0, 0)" in shown["summary"]
    assert "(20 paired items, 2 runs)" in shown["summary"]
    assert set(shown["arms"]["n_seeds"]) == {2}
    assert "mean over runs" in shown["figure"].layout.title.text


# -- the runner ------------------------------------------------------------------------------------------


def test_study_cells_set_task_and_seed_and_keep_named_runs_apart(tmp_path):
    from arte_core.config import RunConfig

    config = RunConfig(run_name="mine", runs_dir=str(tmp_path))
    cells = study_cells(config, [0, 1, 1], ["navigate", "web_of_lies"])
    assert [(c.task, c.seed) for c in cells] == [("navigate", 0), ("navigate", 1), ("web_of_lies", 0), ("web_of_lies", 1)]
    assert [c.config.seed for c in cells] == [0, 1, 0, 1] and cells[2].config.task == "web_of_lies"
    assert len({c.run_id for c in cells}) == 4
    assert [c.config.task for c in study_cells(RunConfig(), [3])] == ["boolean_expressions"]
    with pytest.raises(ArteError, match="at least one seed"):
        study_cells(config, [])
    config.pairs.signal = "influence"
    assert "influence" in study_stages(config) and study_stages(config).index("influence") < study_stages(config).index("pairs")
    assert time_left([60.0, 120.0], 2) == "~3m00s left" and time_left([], 2).startswith("estimate after")


def test_a_study_whose_arms_never_differ_says_so_instead_of_a_zero_width_interval():
    items = hand_items()
    items["correct"] = False  # a tiny random student: every arm wrong on every item
    arms = arm_table(items, n_resamples=200, seed=0)
    assert (arms["ci_low"] == 0).all() and arms["ci_high"].to_numpy() == pytest.approx(wilson(0, 20)[1])
    row = differences(items, n_resamples=200, seed=0).iloc[0]
    assert (row["difference"], row["treatment_only"], row["control_only"], row["p_mcnemar"]) == (0.0, 0, 0, 1.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-wilson(0, 20)[1], wilson(0, 20)[1]))
    assert pd.isna(row["mde"]) and pd.isna(row["se"])
    markdown = study_markdown(study_result(items, [], n_resamples=200))
    assert "difference undefined: no item tells the arms apart" in markdown


def tiny_study_config(model_dir: str, root):
    """make_config for a study on a tiny random model. It writes no parsable question and answers nothing
    right, so every draft ties on ICL accuracy: questions come from the task's pool and pairs rank drafts by
    influence, which differs."""
    config = make_config(model_dir, root)
    config.elicit.question_source, config.elicit.n_questions = "pool", 4
    config.elicit.rationale_max_new_tokens = 16
    config.score.max_new_tokens = config.eval.max_new_tokens = 16
    config.pairs.signal = "influence"
    config.align.batch_size = config.distill.batch_size = 2
    return config


@pytest.mark.slow  # two whole loops: about 95 s on a loaded 2-core machine
def test_a_two_seed_study_on_a_tiny_random_model_runs_end_to_end_and_a_rerun_computes_nothing(tmp_path, tiny_model_dir,
                                                                                            capsys):
    from arte_core.cli import main

    config = tiny_study_config(tiny_model_dir, tmp_path)
    config_path, db = tmp_path / "study.yaml", tmp_path / "arte.duckdb"
    config_path.write_text(config.to_yaml())
    command = ["study", "--config", str(config_path), "--db", str(db), "--seeds", "0", "1", "--quiet"]
    assert main([*command, "--out", str(tmp_path / "report")]) == 0
    assert "study " in capsys.readouterr().out
    result = load_study(tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(FILES)
    assert [(r["seed"], r["computed"]) for r in result["runs"]] == [(0, True), (1, True)]
    assert len({r["run_id"] for r in result["runs"]}) == 2
    assert {(a["variant"], a["shots"]) for a in result["arms"]} == {(v, k) for v in ("untrained", "original", "arte")
                                                                     for k in (0, 3)}
    assert {(a["n_seeds"], a["n_items"]) for a in result["arms"]} == {(2, 8)}  # 4 test items × 2 seeds
    assert all(a["ci_low"] <= a["accuracy"] <= a["ci_high"] for a in result["arms"])
    assert [(d["task"], d["n_items"]) for d in result["differences"]] == [("boolean_expressions", 8)] * 2
    assert set(result["design"]) == {"0", "3"} and len(result["per_run"]) == 12
    # Rerun: every stage of both cells is stored, nothing is computed; the default folder is runs_dir/study-HASH.
    assert main(command) == 0
    (folder,) = (tmp_path / "elsewhere").glob("study-*")
    again = load_study(folder)
    assert [r["computed"] for r in again["runs"]] == [False, False]
    assert again["arms"] == result["arms"] and again["differences"] == result["differences"]
