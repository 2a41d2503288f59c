"""The transfer table (issue 17, the paper's Table 5): hand-made items of two students give the four
cells A→A, A→B, B→B, B→A with hand-computed differences and McNemar p-values; the transfer arm trains on
the other student's aligned teacher's data; `arte study --students A B` on two tiny random students runs
end to end and reports the four cells."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_students import as_student, two_students_run
from test_study import hand_items, tiny_study_config

from arte_core.config import RunConfig
from arte_core.errors import ArteError
from arte_core.stages.distill import arm_examples, trained_arms, transfer_arm, transfer_source
from arte_core.study.report import study_markdown, study_result
from arte_core.study.runner import student_config
from arte_core.store import utcnow
from arte_core.study.transfer import transfer_cells, transfer_table


def two_students_items() -> pd.DataFrame:
    """Student a: test_study's arms, and 'from:b' answering as its untrained arm (5 → 4 and 5 → 3 right of
    10 per seed against 'original'). Student b: 'original' and 'arte' swapped, and 'from:a' answering
    exactly as b's 'original'."""
    base = hand_items()
    a = base.assign(student="a")
    from_b = base[base["variant"] == "untrained"].assign(variant=transfer_arm("b"), student="a")
    swap = {"original": "arte", "arte": "original"}
    b = base[base["variant"] != "untrained"].assign(student="b", variant=lambda f: f["variant"].map(swap))
    from_a = b[b["variant"] == "original"].assign(variant=transfer_arm("a"))
    return pd.concat([a, from_b, b, from_a], ignore_index=True)


def test_the_four_transfer_cells_have_hand_computed_differences_and_p_values():
    cells = {(c["aligned_to"], c["student"]): c for c in transfer_cells(two_students_items(), ["a", "b"], 200, 0)}
    assert set(cells) == {("a", "a"), ("a", "b"), ("b", "b"), ("b", "a")}
    # a→a: arte − original, 6 items only arte right, 1 only original: +0.3 and +0.2 per seed, p = 2 × 8/128.
    assert (cells["a", "a"]["arm"], cells["a", "a"]["difference"]) == ("arte", pytest.approx(0.25))
    assert (cells["a", "a"]["treatment_only"], cells["a", "a"]["control_only"]) == (6, 1)
    assert cells["a", "a"]["p_mcnemar"] == pytest.approx(0.125)
    # b→a: a trained on b's teacher's data, 3 items only original right: −0.1 and −0.2, p = 2 × 1/8.
    assert (cells["b", "a"]["arm"], cells["b", "a"]["difference"]) == ("from:b", pytest.approx(-0.15))
    assert cells["b", "a"]["p_mcnemar"] == pytest.approx(0.25) and cells["b", "a"]["n_items"] == 20
    # b→b: the swapped arms, −0.25; a→b answers as b's original: no item tells them apart.
    assert cells["b", "b"]["difference"] == pytest.approx(-0.25) and cells["b", "b"]["p_mcnemar"] == pytest.approx(0.125)
    assert (cells["a", "b"]["difference"], cells["a", "b"]["p_mcnemar"]) == (0.0, 1.0)
    assert all(c["ci_low"] <= c["difference"] <= c["ci_high"] for c in cells.values())
    table = transfer_table(dict(cells=list(cells.values())))
    assert list(table["teacher aligned to"] + "→" + table["student"]) == ["a→a", "b→a", "a→b", "b→b"]
    assert table.iloc[1]["vs original [95% CI]"].startswith("-0.150 [")


def test_the_report_carries_the_transfer_section():
    result = study_result(hand_items(), [], n_resamples=200)
    assert "Transfer" not in study_markdown(result)
    result["transfer"] = dict(students=["a", "b"], cells=transfer_cells(two_students_items(), ["a", "b"], 200, 0),
                              correlations=[dict(task="navigate", seed=0, student_a="a", student_b="b", spearman=0.5,
                                                 ci_low=-0.1, ci_high=0.8, n=16, score_name="accuracy")])
    markdown = study_markdown(result)
    assert "(paper Table 5)" in markdown and "| 3 | b | a | from:b | -0.150 [" in markdown
    assert "Spearman ρ of a and b's draft scores (accuracy) +0.50 [-0.10, 0.80], n = 16 drafts" in markdown


def test_each_student_of_a_study_trains_on_every_other_students_aligned_teacher():
    config = RunConfig()
    both = [student_config(config, s, ["a", "b", "c"]) for s in ("a", "b")]
    assert [(c.student, c.distill.transfer_from) for c in both] == [("a", ["b", "c"]), ("b", ["a", "c"])]
    assert student_config(config, "a", ["a"]).distill.transfer_from == []
    assert transfer_source(transfer_arm("x/y")) == "x/y" and transfer_source("arte") is None


@pytest.mark.slow  # two tiny students' adapters and SFT
def test_the_transfer_arm_trains_on_the_other_students_aligned_teachers_data(tmp_path, tiny_model_dir, second_student_dir):
    a, b = tiny_model_dir, second_student_dir
    ctx = two_students_run(tmp_path, a, b)
    for student in (a, b):
        for stage in ("pairs", "align"):
            as_student(ctx, student, stage)
    as_student(ctx, b, "regenerate")
    ctx.config.distill.transfer_from = [a]
    with pytest.raises(ArteError, match="no data from the teacher aligned to .* run `arte regenerate --student"):
        as_student(ctx, b, "distill")  # a's aligned teacher has not regenerated yet
    as_student(ctx, a, "regenerate")
    ctx.config.distill.transfer_from = [b]
    with pytest.raises(ArteError, match="names the student .* itself"):
        trained_arms(ctx, b)
    ctx.config.distill.transfer_from = [a]
    data = arm_examples(ctx, transfer_arm(a), b)
    assert [r["rationale_id"] for r in data] == [r["rationale_id"] for r in ctx.store.rationales(ctx.run_id, "arte", a)]
    paths = as_student(ctx, b, "distill")
    assert set(paths) == {"original", "arte", transfer_arm(a)} and paths[transfer_arm(a)] != paths["arte"]
    record = json.loads(ctx.store.artifact(ctx.run_id, f"student_{transfer_arm(a)}", b)["metrics_json"])
    assert record["n_examples"] == min(len(ctx.store.sft_examples(ctx.run_id, arm, b)) for arm in paths)
    as_student(ctx, b, "evaluate")
    variants = {e["variant"] for e in ctx.store.evaluations(ctx.run_id, b)}
    assert variants == {"untrained", "original", "arte", transfer_arm(a)}
    ctx.store.close()


@pytest.mark.slow  # two tiny students through the whole loop
def test_a_two_student_study_reports_the_four_transfer_cells(tmp_path, tiny_model_dir, second_student_dir, capsys):
    from arte_core.cli import main

    config = tiny_study_config(tiny_model_dir, tmp_path)
    config.eval.shots = [3]
    config_path = tmp_path / "study.yaml"
    config_path.write_text(config.to_yaml())
    assert main(["study", "--config", str(config_path), "--db", str(tmp_path / "arte.duckdb"), "--seeds", "0",
                 "--students", tiny_model_dir, second_student_dir, "--quiet", "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "report" / "study.json").read_text())
    transfer = result["transfer"]
    assert transfer["students"] == [tiny_model_dir, second_student_dir]
    cells = {(c["aligned_to"], c["student"]): c for c in transfer["cells"]}
    assert set(cells) == {(x, y) for x in transfer["students"] for y in transfer["students"]}
    assert all(c["n_items"] == 4 and c["ci_low"] <= c["difference"] <= c["ci_high"] for c in cells.values())
    assert cells[tiny_model_dir, second_student_dir]["arm"] == transfer_arm(tiny_model_dir)
    (correlation,) = transfer["correlations"]
    assert correlation["n"] > 0 and correlation["student_b"] == second_student_dir
    assert {a["student"] for a in transfer["arms"]} == set(transfer["students"])
    assert result["student"] == tiny_model_dir and {r["student"] for r in result["runs"]} == {tiny_model_dir}
    assert "(paper Table 5)" in (tmp_path / "report" / "study.md").read_text()
    assert f"{tiny_model_dir} → {second_student_dir}" in printed


def test_the_study_tab_shows_the_transfer_of_runs_with_two_evaluated_students(tmp_path):
    from test_study import store_with_evaluations

    from arte_core.studio.study import FROM_STORE, study_view

    items = two_students_items()
    with store_with_evaluations(tmp_path / "s.duckdb", items[items["student"] == "a"], student="a") as store:
        assert study_view(store, tmp_path / "runs", FROM_STORE)["transfer"].empty  # one student: no table
        for (run_id, variant, shots), cell in items[items["student"] == "b"].groupby(["run_id", "variant", "shots"]):
            rows = [dict(run_id=run_id, variant=variant, shots=int(shots), item_index=int(r.item_index), output="o",
                         answer=r.answer, correct=bool(r.correct), parse_mode=r.parse_mode,
                         truncated=bool(r.truncated)) for r in cell.itertuples()]
            store.add_evaluation(dict(run_id=run_id, student="b", variant=variant, shots=int(shots), accuracy=0.0,
                                      n_items=len(rows), n_correct=0, n_unparsed=0, model="m", created_at=utcnow(),
                                      n_truncated=0), rows)
        shown = study_view(store, tmp_path / "runs", FROM_STORE)
    table = shown["transfer"]
    assert list(table["teacher aligned to"] + "→" + table["student"]) == ["a→a", "b→a", "a→b", "b→b"]
    assert table.iloc[1]["vs original [95% CI]"].startswith("-0.150 [") and table.iloc[1]["p McNemar"] == "0.25"
    assert "**Transfer** between a, b" in shown["transfer_note"]
    assert list(shown["table"]["arm"])[:3] == ["untrained", "original", "arte"]  # the arms table: a's own
