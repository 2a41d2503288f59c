"""Moving a run's rows to a job file and back, and Parquet export/import, on real DuckDB files."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from helpers import decision_row, populate_drafts

from arte_core.errors import ArteError
from arte_core.store import SCHEMA_VERSION, TABLES, Store, drafts, utcnow
from arte_core.store.schema import MIGRATIONS
from arte_core.store.transfer import MACHINE_LOCAL, export_parquet, export_run, import_parquet, ingest


def register_run(store: Store, run_id: str, student: str = "student-a") -> None:
    store.ensure_run(run_id, "boolean_expressions", "builtin", "teacher-a", student, "fp-" + run_id, "task: x\n")


def pair_row(run_id: str, pair_id: str, student: str = "student-a", signal: str = "icl") -> dict:
    return dict(pair_id=pair_id, run_id=run_id, student=student, kind="rationale", signal=signal, prompt="p",
                chosen="c", rejected="r", chosen_ref="a", rejected_ref="b", chosen_score=1.0,
                rejected_score=0.0, margin=1.0, created_at=utcnow())


def populate_run(store: Store, run_id: str, decision_base: int) -> None:
    """A run with rows in every table a run owns."""
    register_run(store, run_id)
    with store.transaction():
        store.insert("pref_items", [dict(run_id=run_id, item_index=0, input="True", target="True")])
        store.insert("test_items", [dict(run_id=run_id, item_index=0, input="False", target="False")])
    populate_drafts(store, run_id, "student-a", n_questions=2)
    with store.transaction():
        store.insert("influence_scores", [dict(rationale_id=f"{run_id}:draft:q00000:common_sense", student="student-a",
                                               run_id=run_id, loss_before=1.0, loss_after=0.9, influence=-0.1,
                                               mode="sgd", learning_rate=1e-4, n_reference=4, created_at=utcnow())])
        store.insert("influence_items", [dict(rationale_id=f"{run_id}:draft:q00000:common_sense", student="student-a",
                                              run_id=run_id, item_index=i, loss_before=1.0, loss_after=0.9)
                                         for i in range(4)])
        store.insert("item_candidates", [dict(run_id=run_id, item_index=0, input="True", target="True", selected=True,
                                              difficulty=-0.5, discrimination=1.2, information=0.3, n_pilot=2,
                                              n_pilot_correct=1, student="student-a", fit="girth 2PL MML/EAP",
                                              created_at=utcnow())])
        store.insert("candidate_answers", [dict(run_id=run_id, rationale_id=f"{run_id}:draft:q00000:common_sense",
                                                student="student-a", item_index=0, output="True", answer="True",
                                                correct=True)])
        store.insert("check_items", [dict(run_id=run_id, item_index=0, input="not True", target="False")])
        store.insert("alignment_scores", [dict(run_id=run_id, student="student-a", origin="base", item_index=0,
                                               rationale_id=f"{run_id}:base:q00000:step_by_step", output="False",
                                               answer="False", correct=True)])
        store.replace_pairs(run_id, "student-a", [pair_row(run_id, f"{run_id}-p1"), pair_row(run_id, f"{run_id}-p2")])
        store.insert("pair_decisions", [decision_row(decision_base + 1, f"{run_id}-p1")])
        store.add_artifact(run_id, "teacher_adapter", "adapter", f"/runs/{run_id}/adapter", {"steps": 2},
                           [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}])
        store.save_sft_examples(run_id, "original", [dict(question_id="q", rationale_id="r", input="i",
                                                          rationale="why", answer="True")])
        store.add_evaluation(dict(run_id=run_id, variant="untrained", shots=0, accuracy=1.0, n_items=1, n_correct=1,
                                  n_unparsed=0, model="m", created_at=utcnow()),
                             [dict(run_id=run_id, variant="untrained", shots=0, item_index=0, output="True",
                                   answer="True", correct=True)])
        store.insert("jobs", [dict(job_id=f"job-{run_id}", run_id=run_id, stages="pairs", status="done", pid=1,
                                   job_dir="/tmp/x", config_yaml="", who="t", started_at=utcnow())])


def all_rows(store: Store, table: str) -> list[tuple]:
    return [tuple(r.values()) for r in store.rows(f"SELECT * FROM {table} ORDER BY ALL")]


@pytest.fixture
def project(tmp_path):
    store = Store(tmp_path / "project.duckdb")
    populate_run(store, "run-a", 100)
    populate_run(store, "run-b", 200)
    yield store
    store.close()


def test_export_run_holds_only_that_runs_rows(project, tmp_path):
    counts = export_run(project, "run-a", tmp_path / "job.duckdb")
    assert "jobs" not in counts
    with Store(tmp_path / "job.duckdb", read_only=True) as job:
        for table in TABLES:
            if table in MACHINE_LOCAL:  # jobs, and pilot results (which belong to no run)
                assert job.scalar(f"SELECT count(*) FROM {table}") == 0
                continue
            rows = all_rows(job, table)
            assert rows, f"{table} exported nothing"
            assert len(rows) == counts[table]
            assert all("run-b" not in repr(r) for r in rows), table
        assert {r["pair_id"] for r in job.rows("SELECT pair_id FROM pair_decisions")} == {"run-a-p1"}
        assert job.scalar("SELECT count(*) FROM icl_items") == 2 * 2 * 3  # questions × techniques × items
        assert job.run("run-a")["teacher"] == "teacher-a"


def test_export_run_refuses_unknown_run_and_existing_file(project, tmp_path):
    with pytest.raises(ArteError, match="no run 'nope'"):
        export_run(project, "nope", tmp_path / "a.duckdb")
    export_run(project, "run-a", tmp_path / "b.duckdb")
    with pytest.raises(ArteError, match="already exists"):
        export_run(project, "run-a", tmp_path / "b.duckdb")


def simulate_child(path, decision_base: int) -> None:
    """What a child job might do to its file: upsert, add rows, rebuild a pairs group, touch decisions."""
    with Store(path) as job:
        with job.transaction():
            job.execute("UPDATE rationales SET text = 'rewritten' WHERE rationale_id = 'run-a:draft:q00000:common_sense'")
            job.replace_pairs("run-a", "student-a", [pair_row("run-a", "run-a-p2"), pair_row("run-a", "run-a-p3")])
            job.execute("UPDATE pair_decisions SET action = 'accept'")
            job.insert("pair_decisions", [decision_row(decision_base + 50, "run-a-p3")])
            job.insert("jobs", [dict(job_id="job-from-child", run_id="run-a", stages="x", status="running", pid=1,
                                     job_dir="/x", config_yaml="", who="t", started_at=utcnow())])
            job.add_evaluation(dict(run_id="run-a", variant="arte", shots=3, accuracy=0.5, n_items=2, n_correct=1,
                                    n_unparsed=0, model="m", created_at=utcnow()),
                               [dict(run_id="run-a", variant="arte", shots=3, item_index=i, output="o", answer="True",
                                     correct=i == 0) for i in range(2)])
            job.add_artifact("run-a", "teacher_adapter", "adapter", "/new", {}, [{"step": 1, "loss": 0.5}])
        job.mark_done("run-a", "align", "student-a")


def test_ingest_upserts_replaces_pair_groups_and_keeps_decisions(project, tmp_path):
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    decisions_before = all_rows(project, "pair_decisions")
    run_b_before = {t: [r for r in all_rows(project, t) if "run-b" in repr(r)] for t in TABLES}
    simulate_child(job_path, 100)

    counts = ingest(project, job_path)

    assert "pair_decisions" not in counts and "jobs" not in counts
    assert counts["evaluations"] == 2 and counts["pairs"] == 2
    assert project.scalar("SELECT text FROM rationales WHERE rationale_id = 'run-a:draft:q00000:common_sense'") == "rewritten"
    assert {p["pair_id"] for p in project.pairs("run-a")} == {"run-a-p2", "run-a-p3"}  # p1 rebuilt away
    assert all_rows(project, "pair_decisions") == decisions_before  # the project owns decisions
    assert project.scalar("SELECT count(*) FROM jobs WHERE job_id = 'job-from-child'") == 0
    assert project.evaluation("run-a", "arte", 3)["accuracy"] == 0.5
    assert project.artifact("run-a", "teacher_adapter")["path"] == "/new"
    assert [r["step"] for r in project.train_logs("run-a", "teacher_adapter")] == [1]  # old step 2 gone
    assert project.is_done("run-a", "align", "student-a")
    for table, rows in run_b_before.items():  # the other run is untouched
        assert [r for r in all_rows(project, table) if "run-b" in repr(r)] == rows, table
    assert ingest(project, job_path) == counts  # idempotent


def test_a_search_before_an_ingest_sees_the_ingested_texts_after_it(project, tmp_path):
    def n_found(text: str) -> int:
        return drafts.drafts_page(project, "run-a", "student-a", drafts.DraftFilter(search=text))["total"]

    assert n_found("rewritten") == 0  # the studio has searched this run: its lower-cased texts are built
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    simulate_child(job_path, 100)
    ingest(project, job_path)
    assert n_found("REWRITTEN") == 1


def test_ingest_empties_a_pairs_group_rebuilt_to_nothing(project, tmp_path):
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    with Store(job_path) as job:
        with job.transaction():
            job.replace_pairs("run-a", "student-a", [])
            job.mark_done("run-a", "pairs", "student-a", {"n_pairs": 0, "signal": "icl", "style": "arte"})
    ingest(project, job_path)
    assert project.pairs("run-a") == []
    assert len(project.pairs("run-b")) == 2


def test_ingest_refuses_newer_schema_and_missing_file(project, tmp_path):
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    with Store(job_path) as job:
        job.execute("UPDATE rationales SET text = 'should not arrive'")
        job.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(ArteError, match="newer ARTE Studio"):
        ingest(project, job_path)
    assert project.scalar("SELECT count(*) FROM rationales WHERE text = 'should not arrive'") == 0
    with pytest.raises(ArteError, match="no job store"):
        ingest(project, tmp_path / "missing.duckdb")


def test_ingest_reads_what_a_killed_writer_committed(project, tmp_path):
    """A stopped child leaves its last commits in the write-ahead log; ingest must still see them."""
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    script = ("import os, sys; from arte_core.store import Store; "
              "s = Store(sys.argv[1]); s.mark_done('run-a', 'distill', 'student-a'); os._exit(0)")  # no close, no checkpoint
    subprocess.run([sys.executable, "-c", script, str(job_path)], check=True, timeout=60)
    assert job_path.with_name("job.duckdb.wal").exists()
    ingest(project, job_path)
    assert project.is_done("run-a", "distill", "student-a")


def backup_without_wal(path, tmp_path) -> Store:
    """What a backup or a download gets: the .duckdb file alone, without the .wal beside it."""
    copy = tmp_path / "backup" / "copy.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, copy)
    return Store(copy, read_only=True)


def every_row(store: Store) -> dict[str, list[tuple]]:
    return {table: all_rows(store, table) for table in TABLES}


@pytest.mark.parametrize("situation", ["only handle", "second handle in the process", "after a killed writer"])
def test_a_closed_store_file_alone_holds_every_committed_row(situation, tmp_path):
    """DuckDB keeps recent commits in the .wal until a checkpoint; it checkpoints on close only when
    no other connection in the process shares the database. A closed store must not need its .wal."""
    path = tmp_path / "project.duckdb"
    if situation == "after a killed writer":  # the killed run's commits are in the .wal only
        script = ("import os, sys; from arte_core.store import Store; s = Store(sys.argv[1]); "
                  "s.ensure_run('killed', 't', 'builtin', 'x', 'y', 'fp', ''); os._exit(9)")
        subprocess.run([sys.executable, "-c", script, str(path)], timeout=60)
    other = Store(path) if situation == "second handle in the process" else None
    store = Store(path)
    populate_run(store, "run-a", 100)
    expected = every_row(store)
    store.close()
    with backup_without_wal(path, tmp_path) as copy:
        assert every_row(copy) == expected
    if other is not None:
        other.close()


def test_an_ingest_reaches_the_file_while_the_studio_holds_the_store(project, tmp_path):
    """The studio holds its store open for days; a backup taken after a job was ingested holds the job."""
    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    simulate_child(job_path, decision_base=500)
    ingest(project, job_path)
    with backup_without_wal(project.path, tmp_path) as copy:
        assert every_row(copy) == every_row(project)


def test_parquet_round_trip_of_one_run(project, tmp_path):
    folder = tmp_path / "export"
    counts = export_parquet(project, folder, ["run-a"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["run_ids"] == ["run-a"]
    assert manifest["tables"] == counts and "jobs" not in counts
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(f"{t}.parquet" for t in counts)

    with Store(tmp_path / "fresh.duckdb") as fresh:
        assert import_parquet(fresh, folder) == counts
        for table in counts:
            expected = [r for r in all_rows(project, table) if "run-b" not in repr(r)]
            assert all_rows(fresh, table) == expected, table
        assert import_parquet(fresh, folder) == counts  # idempotent
        assert all_rows(fresh, "pairs") == [r for r in all_rows(project, "pairs") if "run-a" in repr(r)]


def test_parquet_import_never_rewrites_a_stored_decision(project, tmp_path):
    folder = tmp_path / "export"
    export_parquet(project, folder)
    project.execute("UPDATE pair_decisions SET why = 'edited here' WHERE decision_id = 101")
    import_parquet(project, folder)
    assert project.scalar("SELECT why FROM pair_decisions WHERE decision_id = 101") == "edited here"


def test_parquet_import_refuses_bad_folders(project, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArteError, match="empty.*not an ARTE Studio export"):
        import_parquet(project, empty)
    folder = tmp_path / "export"
    export_parquet(project, folder, ["run-b"])
    (folder / "pairs.parquet").unlink()
    with pytest.raises(ArteError, match=r"export.*missing files \['pairs'\]"):
        import_parquet(project, folder)
    export_parquet(project, folder, ["run-b"])
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ArteError, match="newer ARTE Studio"):
        import_parquet(project, folder)


def test_export_from_a_read_only_store(project, tmp_path):
    path = project.path
    project.close()
    with Store(path, read_only=True) as ro:
        counts = export_run(ro, "run-b", tmp_path / "job.duckdb")
        assert counts["pairs"] == 2
        assert export_parquet(ro, tmp_path / "pq")["runs"] == 2


def downgrade(store: Store, version: int) -> None:
    """What a store written by an older ARTE Studio looks like: without the columns that MIGRATIONS
    added after `version` (schema 1: no pairs.style; 2: no answer readings or balanced scores)."""
    if version < 5:  # schema 5 rebuilt the tables of results with a student: rebuild them without
        downgrade(store, 5)
        store_to_schema_4(store)
        version_now = 4
    else:
        version_now = SCHEMA_VERSION
    later = [stmt for v in range(version + 1, version_now + 1) for stmt in MIGRATIONS[v]]
    added = [re.match(r"ALTER TABLE (\w+) ADD COLUMN (?:IF NOT EXISTS )?(\w+)", stmt).groups()
             for stmt in later if stmt.startswith("ALTER")]
    for table in [re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s).group(1) for s in later if s.startswith("CREATE")]:
        store.execute(f"DROP TABLE {table}")  # a table a later schema added
    for table, column in added:
        indexes = [r["sql"] for r in store.rows("SELECT sql FROM duckdb_indexes() WHERE table_name = ?", [table])]
        for sql in indexes:  # DuckDB drops no column of a table with an index
            store.execute("DROP INDEX " + re.search(r"INDEX (\w+)", sql).group(1))
        store.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        for sql in indexes:
            store.execute(sql)
    store.execute("UPDATE schema_version SET version = ?", [version])


def store_to_schema_4(store: Store) -> None:
    """Schema 5's tables of results as schema 4 had them: no student column, the key without it."""
    from arte_core.store.schema import SCHEMA_4_RESULT_COLUMNS

    for table, (columns, key) in SCHEMA_4_RESULT_COLUMNS.items():
        store.execute(f"CREATE TABLE {table}_v5 AS SELECT * EXCLUDE (student) FROM {table}")
        store.execute(f"DROP TABLE {table}")
        store.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({key.replace('student, ', '')}))")
        store.execute(f"INSERT INTO {table} SELECT * FROM {table}_v5")
        store.execute(f"DROP TABLE {table}_v5")
    for table in ("questions", "rationales"):
        indexes = [r["sql"] for r in store.rows("SELECT sql FROM duckdb_indexes() WHERE table_name = ?", [table])]
        for sql in indexes:  # DuckDB drops no column of a table with an index
            store.execute("DROP INDEX " + re.search(r"INDEX (\w+)", sql).group(1))
        store.execute(f"ALTER TABLE {table} DROP COLUMN student")
        for sql in indexes:
            store.execute(sql)
    store.execute("UPDATE schema_version SET version = 4")


def downgrade_to_schema_1(store: Store) -> None:
    downgrade(store, 1)


def test_a_schema_1_store_is_upgraded_in_place_when_opened_for_writing(project):
    path = project.path
    downgrade_to_schema_1(project)
    decisions = all_rows(project, "pair_decisions")
    project.close()
    with pytest.raises(ArteError, match="older store schema 1 .* open it once read-write"):
        Store(path, read_only=True)
    with Store(path) as upgraded:
        assert upgraded.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
        assert {p["style"] for p in upgraded.pairs("run-a")} == {"arte"}
        # the old columns as they were (a later schema's columns, such as bulk_id, come after them)
        assert [row[:len(decisions[0])] for row in all_rows(upgraded, "pair_decisions")] == decisions
    with Store(path, read_only=True) as reopened:
        assert len(reopened.pairs("run-b")) == 2


def test_a_schema_2_store_keeps_its_scores_and_gets_null_readings_when_upgraded_in_place(project):
    """Scores written before answers were read strictly keep their numbers; the new columns are NULL
    (nothing recomputes them behind the user's back) and new rows fill them."""
    path = project.path
    downgrade(project, 2)
    scores = project.rows("SELECT rationale_id, accuracy, n_correct FROM icl_scores ORDER BY ALL")
    project.close()
    with pytest.raises(ArteError, match="older store schema 2 .* open it once read-write"):
        Store(path, read_only=True)
    with Store(path) as upgraded:
        assert upgraded.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
        assert upgraded.rows("SELECT rationale_id, accuracy, n_correct FROM icl_scores ORDER BY ALL") == scores
        assert upgraded.scalar("SELECT count(*) FROM icl_scores WHERE balanced_accuracy IS NOT NULL OR "
                               "label_copy_rate IS NOT NULL OR n_truncated IS NOT NULL OR n_lenient IS NOT NULL") == 0
        assert upgraded.scalar("SELECT count(*) FROM icl_items WHERE parse_mode IS NOT NULL OR truncated IS NOT NULL") == 0
        assert upgraded.rows("SELECT n_truncated FROM evaluations") == [{"n_truncated": None}] * 2
        assert upgraded.rows("SELECT parse_mode, truncated FROM eval_items") == [{"parse_mode": None, "truncated": None}] * 2
        upgraded.add_evaluation(dict(run_id="run-a", variant="arte", shots=0, accuracy=0.0, n_items=1, n_correct=0,
                                     n_unparsed=1, model="m", created_at=utcnow(), n_truncated=1),
                                [dict(run_id="run-a", variant="arte", shots=0, item_index=0, output="cut", answer=None,
                                      correct=False, parse_mode="none", truncated=True)])
        assert upgraded.evaluation("run-a", "arte", 0)["n_truncated"] == 1


def test_a_schema_1_export_and_job_file_are_read_with_the_new_columns_defaulted(project, tmp_path):
    folder = tmp_path / "old-export"
    export_parquet(project, folder, ["run-a"])
    with Store(tmp_path / "old-job.duckdb") as old:  # an old export: rewrite pairs.parquet without the column
        old.execute(f"COPY (SELECT * EXCLUDE (style) FROM read_parquet('{folder / 'pairs.parquet'}')) "
                    f"TO '{folder / 'pairs.parquet'}' (FORMAT parquet)")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    with Store(tmp_path / "fresh.duckdb") as fresh:
        import_parquet(fresh, folder)
        assert [(p["pair_id"], p["style"]) for p in fresh.pairs("run-a")] == [("run-a-p1", "arte"), ("run-a-p2", "arte")]

    job_path = tmp_path / "job.duckdb"
    export_run(project, "run-a", job_path)
    with Store(job_path) as job:
        job.replace_pairs("run-a", "student-a", [pair_row("run-a", "run-a-p9")])
        downgrade_to_schema_1(job)
    ingest(project, job_path)
    assert [(p["pair_id"], p["style"]) for p in project.pairs("run-a")] == [("run-a-p9", "arte")]
