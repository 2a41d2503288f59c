"""`arte pilot`: the zone rule and baselines on hand-made numbers, a pilot of a tiny random model that stores
its cells with n and Wilson intervals, the command line, and the studio's curve."""

from __future__ import annotations

import math

import pytest

from arte_core.cli import main
from arte_core.errors import ArteError
from arte_core.pilot import (PILOT_CEILING, PilotSettings, baseline_share, format_table, in_zone, planned_levels,
                             run_pilot)
from arte_core.progress import Reporter
from arte_core.store import Store
from arte_core.store.pilot import pilot_results
from arte_core.studio.pilot import pilot_view
from arte_core.tasks.builtin import SPEC_OF, build_task


def _wilson_by_hand(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


# --- the zone rule and the baseline --------------------------------------------------------------


@pytest.mark.parametrize("low, high, baseline, expected", [
    (0.55, 0.80, 0.50, True),    # clearly above a coin and clearly below the ceiling
    (0.45, 0.80, 0.50, False),   # the interval reaches down to the baseline: not clearly above it
    (0.50, 0.80, 0.50, False),   # touching the baseline is not above it
    (0.70, 0.96, 0.50, False),   # may be at the ceiling: drafts would all score full marks
    (0.70, PILOT_CEILING, 0.50, False),
    (0.11, 0.30, 0.10, True),    # an open-answer task: above its most common target's share
])
def test_a_level_is_in_the_zone_only_when_its_interval_clears_the_baseline_and_stays_below_the_ceiling(
        low, high, baseline, expected):
    assert in_zone(low, high, baseline) is expected


def test_wilson_intervals_of_hand_made_cells_decide_the_zone():
    # 30/40 on a two-label task with a 0.55 majority: Wilson [0.598, 0.858] by hand -> in the zone.
    low, high = _wilson_by_hand(30, 40)
    assert (round(low, 3), round(high, 3)) == (0.598, 0.858)
    assert in_zone(low, high, 0.55)
    # 24/40 (0.60) against the same baseline: [0.446, 0.737] reaches below 0.55 -> not in the zone.
    low, high = _wilson_by_hand(24, 40)
    assert (round(low, 3), round(high, 3)) == (0.446, 0.737)
    assert not in_zone(low, high, 0.55)
    # 40/40: the upper bound is 1 -> at the ceiling, not in the zone.
    assert not in_zone(*_wilson_by_hand(40, 40), 0.55)


def test_the_baseline_is_the_majority_label_on_label_tasks_and_the_most_common_target_on_open_ones():
    boolean = build_task(SPEC_OF["boolean_expressions"], 0)
    assert baseline_share(boolean, ["True", "True", "False", "True"]) == (0.75, "majority label")
    counting = build_task(SPEC_OF["object_counting"], 0)
    assert baseline_share(counting, ["3", "5", "3", "8", "2"]) == (0.4, "most common target")


def test_levels_are_chosen_per_task_by_number_or_by_task_and_number():
    navigate, boolean = SPEC_OF["navigate"], SPEC_OF["boolean_expressions"]
    assert planned_levels(navigate, ()) == list(navigate.levels)
    assert planned_levels(navigate, ("2", "9")) == [2, 9]
    assert planned_levels(boolean, ("2", "9")) == [2]          # boolean_expressions has no level 9
    assert planned_levels(boolean, ("0",)) == [boolean.default_level]
    assert planned_levels(boolean, ("navigate:4",)) == []      # another task's level
    with pytest.raises(ArteError, match="levels 1-5"):
        planned_levels(boolean, ("boolean_expressions:9",))
    with pytest.raises(ArteError, match="unknown task 'nope'"):
        planned_levels(boolean, ("nope:2",))


def test_the_table_says_plainly_when_no_level_is_in_the_zone():
    cell = dict(task="navigate", level=3, default_level=8, n_items=40, accuracy=0.5, ci_low=0.35, ci_high=0.65,
                baseline=0.55, baseline_kind="majority label", n_unparsed=4, n_truncated=2, seconds_per_item=1.5,
                in_zone=False)
    table = format_table([cell])
    assert "| navigate | 3 | 40 | 0.500 [0.35, 0.65] | majority label 0.550 | 10% | 5% | 1.5 | no |" in table
    assert "No level is in the zone" in table
    assert "In the zone" in format_table([{**cell, "ci_low": 0.6, "ci_high": 0.8, "in_zone": True}])


# --- a pilot of a tiny random model ---------------------------------------------------------------


def test_a_pilot_stores_one_cell_per_task_and_level_with_n_and_wilson_intervals(tmp_path, tiny_model_dir):
    settings = PilotSettings(student=tiny_model_dir, tasks=("web_of_lies", "multistep_arithmetic_two"),
                             levels=("2",), n_items=5, shots=1, max_new_tokens=8, engine="batched")
    with Store(str(tmp_path / "pilot.duckdb")) as store:
        cells = run_pilot(store, settings, Reporter(None, show_bar=False))
        stored = pilot_results(store, tiny_model_dir)
        assert [(c["task"], c["level"]) for c in stored] == [("multistep_arithmetic_two", 2), ("web_of_lies", 2)]
        for cell in stored:
            assert cell["n_items"] == 5 and 0 <= cell["n_correct"] <= 5
            assert cell["accuracy"] == cell["n_correct"] / 5
            assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(_wilson_by_hand(cell["n_correct"], 5))
            assert cell["max_new_tokens"] == 8 and cell["seconds_per_item"] > 0
            assert cell["n_unparsed"] + cell["n_correct"] <= 5
            assert cell["in_zone"] == in_zone(cell["ci_low"], cell["ci_high"], cell["baseline"])
        wol = next(c for c in stored if c["task"] == "web_of_lies")
        items = build_task(SPEC_OF["web_of_lies"], 0, 2).pool()[:5]
        assert wol["baseline"] == baseline_share(build_task(SPEC_OF["web_of_lies"], 0, 2), [e.target for e in items])[0]
        assert wol["baseline_kind"] == "majority label" and wol["default_level"] == 5
        # Measured again: the stored cells come back as they are, nothing is generated.
        assert sorted((c["task"], c["created_at"]) for c in cells) == [(c["task"], c["created_at"]) for c in stored]
        again = run_pilot(store, settings, Reporter(None, show_bar=False))
        assert sorted((c["task"], c["created_at"]) for c in again) == [(c["task"], c["created_at"]) for c in stored]
        assert pilot_results(store, tiny_model_dir) == stored


def test_arte_pilot_prints_the_table_and_the_studio_draws_one_trace_per_task(tmp_path, tiny_model_dir, capsys):
    db = str(tmp_path / "pilot.duckdb")
    code = main(["pilot", "--student", tiny_model_dir, "--tasks", "web_of_lies", "boolean_expressions",
                 "--levels", "3", "--n-items", "4", "--shots", "0", "--max-new-tokens", "6", "--engine", "batched",
                 "--db", db, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| boolean_expressions | 3 (default) | 4 |" in out and "| web_of_lies | 3 | 4 |" in out
    with Store(db, read_only=True) as store:
        view = pilot_view(store, tiny_model_dir, 0)
    accuracy_traces = [t for t in view["figure"].data if not t.name.endswith("baseline")]
    assert sorted(t.name for t in accuracy_traces) == ["boolean_expressions", "web_of_lies"]
    assert all(t.error_y.array is not None for t in accuracy_traces)
    assert list(view["table"]["n"]) == [4, 4]
    assert "0-shot" in view["summary"]


def test_arte_pilot_refuses_tasks_it_cannot_vary(tmp_path, capsys):
    code = main(["pilot", "--student", "x", "--tasks", "causal_judgement", "--db", str(tmp_path / "p.duckdb")])
    assert code == 2
    assert "not a built-in task" in capsys.readouterr().err
