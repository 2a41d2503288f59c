"""Results keyed by student (issue 17): two students of one run get their own pairs, aligned teacher, arms,
SFT'd models and evaluations; `arte align --student B` after A trains B's own adapter; a store of schema 4
upgrades in place (and a schema-4 export imports) with its rows belonging to the run's student."""

import json
from pathlib import Path

import duckdb
import pytest
from test_stages import QUESTIONS, add_regenerated, set_scores, tiny_config

from arte_core.context import open_run
from arte_core.pipeline import run_stage
from arte_core.progress import Reporter
from arte_core.stages.align import ADAPTER
from arte_core.stages.elicit import question_id, rationale_id
from arte_core.store import Store, utcnow
from arte_core.store.schema import SCHEMA_4_RESULT_COLUMNS
from arte_core.store.transfer import export_run, import_parquet, ingest
from helpers import TECHNIQUES, seed_drafts
from paths import OLD_DEMO


def two_students_run(tmp_path, teacher: str, student_b: str):
    """A run whose drafts come from the task's pool; student A prefers question 0's drafts, B question 2's."""
    config = tiny_config(teacher, tmp_path, elicit__question_source="pool")
    config.pairs.score, config.pairs.max_p = "accuracy", 1.0
    ctx = open_run(config, Store(tmp_path / "store.duckdb"), Reporter(tmp_path / "events.jsonl", show_bar=False))
    seed_drafts(ctx, QUESTIONS)
    q = [question_id(ctx.run_id, "draft", i) for i in range(4)]
    r = {(i, t): rationale_id(q[i], TECHNIQUES[t]) for i in range(4) for t in range(2)}
    preferences = {teacher: [1.0, 0.5, 0.25, 0.25, 0.0, 0.75, 0.5, 0.5],
                   student_b: [0.0, 0.25, 0.5, 0.5, 1.0, 0.25, 0.75, 0.25]}
    for student, accuracies in preferences.items():
        ctx.config.student = student
        set_scores(ctx, dict(zip([r[i, t] for i in range(4) for t in range(2)], accuracies)))
    ctx.config.student = teacher
    return ctx


def as_student(ctx, student: str, stage: str):
    """What `arte STAGE --student S` does: the config names the student, the stage runs for it."""
    ctx.config.student = student
    return run_stage(ctx, stage)


@pytest.mark.slow
def test_two_students_get_their_own_pairs_adapters_arms_and_evaluations(tmp_path, tiny_model_dir, second_student_dir):
    a, b = tiny_model_dir, second_student_dir
    ctx = two_students_run(tmp_path, a, b)
    for student in (a, b):
        as_student(ctx, student, "pairs")
    pairs = {s: {(p["chosen_ref"], p["rejected_ref"]) for p in ctx.store.pairs(ctx.run_id, s)} for s in (a, b)}
    assert pairs[a] and pairs[b] and pairs[a] != pairs[b]

    adapter_a = as_student(ctx, a, "align")
    created_a = ctx.store.artifact(ctx.run_id, ADAPTER, a)["created_at"]
    adapter_b = as_student(ctx, b, "align")  # `arte align --student B` after A: a new adapter, not A's
    assert adapter_b and adapter_b != adapter_a and Path(adapter_b).is_dir() and Path(adapter_a).is_dir()
    assert Path(adapter_b).is_relative_to(ctx.student_dir(b)) and Path(adapter_a).is_relative_to(ctx.student_dir(a))
    records = {s: json.loads(ctx.store.artifact(ctx.run_id, ADAPTER, s)["metrics_json"]) for s in (a, b)}
    assert records[a]["dataset"]["sha256"] != records[b]["dataset"]["sha256"]  # trained on their own pairs
    assert records[b]["student"] == b
    assert ctx.store.artifact(ctx.run_id, ADAPTER, a)["created_at"] == created_a  # A's adapter untouched
    assert ctx.store.artifact(ctx.run_id, ADAPTER) == ctx.store.artifact(ctx.run_id, ADAPTER, a)  # None: the run's

    for stage in ("regenerate", "distill", "evaluate"):
        for student in (a, b):
            as_student(ctx, student, stage)
    for student in (a, b):
        for origin in ("base", "arte"):
            rows = ctx.store.rationales(ctx.run_id, origin, student)
            assert rows and all(row["student"] == student for row in rows)
        evaluations = ctx.store.evaluations(ctx.run_id, student)
        assert {(e["variant"], e["shots"]) for e in evaluations} == {(v, k) for v in ("untrained", "original", "arte")
                                                                     for k in (0, 3)}
        assert all(e["student"] == student for e in evaluations)
        items = ctx.store.eval_items(ctx.run_id, student, "arte", 3)
        assert len(items) == len(ctx.test_items) and {i["student"] for i in items} == {student}
    # The aligned teachers differ, so the students' ARTE models are told apart by their names.
    models = {s: ctx.store.evaluation(ctx.run_id, "arte", 0, s)["model"] for s in (a, b)}
    assert models[a] != models[b]
    assert ctx.store.count_rows("evaluations", ctx.run_id) == 12  # 2 students × 3 variants × 2 shot counts
    assert {s for s in ctx.store.stages_done(ctx.run_id) if s.startswith("evaluate")} == {f"evaluate:{a}", f"evaluate:{b}"}
    for student in (a, b):  # a rerun with the same settings finds every stage current: nothing is redone
        assert [as_student(ctx, student, stage) for stage in ("pairs", "align", "regenerate", "distill", "evaluate")] \
            == [None] * 5
    ctx.store.close()


def test_changed_align_settings_make_align_current_no_more(tmp_path, tiny_model_dir):
    from arte_core.pipeline import is_current
    from arte_core.stages.registry import STAGES

    with Store(tmp_path / "s.duckdb") as store:
        ctx = open_run(tiny_config(tiny_model_dir, tmp_path), store, Reporter(None, show_bar=False))
        student = ctx.config.student
        store.mark_done(ctx.run_id, "align", student, STAGES["align"].settings(ctx.config))
        assert is_current(ctx, STAGES["align"], student)
        assert not is_current(ctx, STAGES["align"], "another student")
        ctx.config.align.beta = 0.2
        assert not is_current(ctx, STAGES["align"], student)
        assert not is_current(ctx, STAGES["regenerate"], student)  # nor anything built on the adapter


def schema_4_store(path: Path) -> None:
    """A store as ARTE Studio 4 wrote it: the tables of results without `student`, version 4."""
    Store(path).close()
    con = duckdb.connect(str(path))
    for table, (columns, key) in SCHEMA_4_RESULT_COLUMNS.items():
        con.execute(f"DROP TABLE {table}")
        con.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({key.replace('student, ', '')}))")
    for index in ("questions_run", "rationales_question", "rationales_run"):  # DuckDB alters no indexed table
        con.execute(f"DROP INDEX {index}")
    for table in ("questions", "rationales"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN student")
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version VALUES (4)")
    now = utcnow()
    con.execute("INSERT INTO runs VALUES ('old', 'boolean_expressions', 'builtin', 'T', 'S', 'f', 'seed: 0', ?)", [now])
    for origin in ("draft", "arte"):
        con.execute("INSERT INTO questions VALUES (?, 'old', ?, 0, 'True is', 'True', 'True', true, 'T', 0, ?)",
                    [f"q-{origin}", origin, now])
    con.execute("INSERT INTO artifacts VALUES ('old', 'teacher_adapter', 'adapter', '/a', '{}', ?)", [now])
    con.execute("INSERT INTO artifacts VALUES ('old', 'student_original', 'model', '/o', '{}', ?)", [now])
    con.execute("INSERT INTO evaluations VALUES ('old', 'original', 3, 0.5, 2, 1, 0, 'S+original', ?, 0)", [now])
    con.execute("INSERT INTO eval_items VALUES ('old', 'original', 3, 0, 'o', 'True', true, 'strict', false)")
    con.execute("INSERT INTO stage_status VALUES ('old', 'align', '', ?, '{}', NULL)", [now])
    con.close()


def test_a_schema_4_store_upgrades_in_place_and_its_rows_belong_to_the_runs_student(tmp_path):
    path = tmp_path / "old.duckdb"
    schema_4_store(path)
    with Store(path) as store:
        assert store.scalar("SELECT max(version) FROM schema_version") >= 5
        assert store.artifact("old", ADAPTER)["path"] == "/a" and store.artifact("old", ADAPTER, "S")["path"] == "/a"
        assert store.artifact("old", ADAPTER, "another student") is None
        # The old 'original' arm was the best draft per question: it keeps that meaning under its true name.
        assert store.artifact("old", "student_best_drafts", "S")["path"] == "/o"
        assert [e["variant"] for e in store.evaluations("old", "S")] == ["best_drafts"]
        assert len(store.eval_items("old", "S", "best_drafts", 3)) == 1
        assert {q["origin"]: q["student"] for q in store.rows("SELECT origin, student FROM questions")} == {
            "draft": "", "arte": "S"}  # drafts are every student's; the regenerated data the run's student's
        assert store.questions("old", "arte", "S")[0]["question_id"] == "q-arte"
        assert store.stages_done("old") == ["align:S"]
        store.add_artifact("old", ADAPTER, "adapter", "/b", student="B")  # a second student beside the first
        assert store.artifact("old", ADAPTER, "S")["path"] == "/a"


def test_an_old_demo_export_imports_with_its_rows_belonging_to_its_student(tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        import_parquet(store, OLD_DEMO)
        run = store.list_runs()[0]
        student = run["student"]
        assert {r["student"] for r in store.rows("SELECT student FROM artifacts")} == {student}
        variants = {e["variant"] for e in store.evaluations(run["run_id"], student)}
        assert "original" not in variants and {"untrained", "best_drafts", "arte"} <= variants
        assert store.rationales(run["run_id"], "arte", student)
        assert store.is_done(run["run_id"], "regenerate", student)


def cell(run_id: str, student: str, variant: str, shots: int) -> tuple[dict, list[dict]]:
    summary = dict(run_id=run_id, student=student, variant=variant, shots=shots, accuracy=1.0, n_items=1,
                   n_correct=1, n_unparsed=0, model=f"{student}+{variant}", created_at=utcnow())
    return summary, [dict(run_id=run_id, student=student, variant=variant, shots=shots, item_index=0, output="o",
                          answer="True", correct=True)]


def test_a_cell_older_than_its_model_is_dropped_and_another_students_cells_stay(tmp_path, tiny_model_dir):
    from arte_core.stages.evaluate import discard_stale_cells

    with Store(tmp_path / "s.duckdb") as store:
        ctx = open_run(tiny_config(tiny_model_dir, tmp_path), store, Reporter(None, show_bar=False))
        a, b = ctx.config.student, "student-b"
        for student in (a, b):
            for variant in ("untrained", "arte"):
                store.add_evaluation(*cell(ctx.run_id, student, variant, 0))
        store.add_artifact(ctx.run_id, "student_arte", "adapter", "/new", student=a)  # distill trained A's anew
        discard_stale_cells(ctx, a)
        assert [e["variant"] for e in store.evaluations(ctx.run_id, a)] == ["untrained"]
        assert [e["variant"] for e in store.evaluations(ctx.run_id, b)] == ["arte", "untrained"]
        assert store.eval_items(ctx.run_id, a, "arte", 0) == [] and len(store.eval_items(ctx.run_id, b, "arte", 0)) == 1


def test_an_arm_a_job_wrote_anew_replaces_the_stored_one_and_leaves_the_drafts_and_other_students(tmp_path):
    with Store(tmp_path / "project.duckdb") as project:
        project.ensure_run("r", "boolean_expressions", "builtin", "T", "A", "fp", "")

        class Run:  # what add_regenerated reads of a RunContext
            store, run_id = project, "r"

        for student in ("A", "B"):
            for i in range(3):
                add_regenerated(Run, "arte", student, f"old question {i}", "old.")
        export_run(project, "r", tmp_path / "job.duckdb")
        with Store(tmp_path / "job.duckdb") as job:  # the job's regenerate found A's arm stale: 2 new examples
            job.discard_arm("r", "arte", "A")
            Run.store = job
            for i in range(2):
                add_regenerated(Run, "arte", "A", f"new question {i}", "new.")
        ingest(project, tmp_path / "job.duckdb")
        assert [q["input"] for q in project.questions("r", "arte", "A")] == ["new question 0", "new question 1"]
        assert [r["text"] for r in project.rationales("r", "arte", "A")] == ["new.", "new."]
        assert len(project.rationales("r", "arte", "B")) == 3
