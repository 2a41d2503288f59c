"""The tables of results keyed by student since schema 5 (artifacts, train_logs, sft_examples, evaluations,
eval_items, generation_calls, questions, rationales) and migration 5, which adds the student to an older
store's rows: its run's student (runs.student), or '' for the drafts every student shares. schema.py
builds its tables and MIGRATIONS from these; transfer.py imports older exports the same way."""


# Tables whose rows belong to a (run, student) since schema 5: each table's columns as of schema 4 with
# `student` added last and in the key (DEFAULT '': a row written without one gets its run's student on
# upgrade and import, see `fill_run_students`). Spelled once for the tables and migration 5.
SCHEMA_4_RESULT_COLUMNS = {
    "generation_calls": ("run_id VARCHAR NOT NULL, origin VARCHAR NOT NULL, call_index INTEGER NOT NULL, "
                         "model VARCHAR NOT NULL, prompt VARCHAR NOT NULL, output VARCHAR NOT NULL, "
                         "temperature DOUBLE NOT NULL, seed BIGINT NOT NULL, n_parsed INTEGER NOT NULL, "
                         "n_unparsed INTEGER NOT NULL, n_duplicates INTEGER NOT NULL, n_kept INTEGER NOT NULL, "
                         "created_at TIMESTAMP NOT NULL", "run_id, origin, student, call_index"),
    "artifacts": ("run_id VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL, path VARCHAR NOT NULL, "
                  "metrics_json VARCHAR, created_at TIMESTAMP NOT NULL", "run_id, student, name"),
    "train_logs": ("run_id VARCHAR NOT NULL, name VARCHAR NOT NULL, step INTEGER NOT NULL, epoch DOUBLE, "
                   "loss DOUBLE, metrics_json VARCHAR", "run_id, student, name, step"),
    "sft_examples": ("run_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, idx INTEGER NOT NULL, "
                     "question_id VARCHAR NOT NULL, rationale_id VARCHAR NOT NULL, input VARCHAR NOT NULL, "
                     "rationale VARCHAR NOT NULL, answer VARCHAR NOT NULL", "run_id, student, dataset, idx"),
    "evaluations": ("run_id VARCHAR NOT NULL, variant VARCHAR NOT NULL, shots INTEGER NOT NULL, "
                    "accuracy DOUBLE NOT NULL, n_items INTEGER NOT NULL, n_correct INTEGER NOT NULL, "
                    "n_unparsed INTEGER NOT NULL, model VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, "
                    "n_truncated INTEGER", "run_id, student, variant, shots"),
    "eval_items": ("run_id VARCHAR NOT NULL, variant VARCHAR NOT NULL, shots INTEGER NOT NULL, "
                   "item_index INTEGER NOT NULL, output VARCHAR NOT NULL, answer VARCHAR, correct BOOLEAN NOT NULL, "
                   "parse_mode VARCHAR, truncated BOOLEAN", "run_id, student, variant, shots, item_index"),
}
STUDENT_KEYED_COLUMNS = {table: "\n        " + ",\n        ".join(columns.split(", ")) + ",\n        "
                         "student VARCHAR NOT NULL DEFAULT '',\n        " + f"PRIMARY KEY ({key})\n    "
                         for table, (columns, key) in SCHEMA_4_RESULT_COLUMNS.items()}
# Tables with schema 5's `student` column, and the rows of theirs that belong to no student (the drafts).
STUDENT_TABLES = ("questions", "rationales", *SCHEMA_4_RESULT_COLUMNS)
_SHARED_ROWS = {"questions": "origin = 'draft'", "rationales": "origin = 'draft'", "generation_calls": "origin = 'draft'"}
# The stages whose results became the student's in schema 5 (stage_status.scope '' -> the run's student).
STUDENT_STAGES_SINCE_5 = ("align", "regenerate", "distill", "evaluate")


def run_student_sql(table: str, alias: str) -> str:
    """The student a row of `table` (aliased `alias`) written without one belongs to: '' for drafts,
    else its run's student (runs.student)."""
    run_student = f"(SELECT r.student FROM runs r WHERE r.run_id = {alias}.run_id)"
    shared = _SHARED_ROWS.get(table)
    return f"CASE WHEN {alias}.{shared} THEN '' ELSE {run_student} END" if shared else run_student


def fill_run_students() -> list[str]:
    """Statements giving each row stored without a student (an upgraded store, an imported older
    export) its run's student; drafts keep ''."""
    return [f"UPDATE {t} SET student = {run_student_sql(t, t)} WHERE coalesce(student, '') = ''"
            for t in STUDENT_TABLES]


def migrate_to_5() -> list[str]:
    """Add `student` to the tables of results: a column for questions and rationales, a rebuilt table
    (the key changes) for the others; every row gets its run's student, and what an older version
    called the 'original' arm (the best-scored draft per question) gets its true name, 'best_drafts'."""
    stmts = [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS student VARCHAR DEFAULT ''" for t in ("questions", "rationales")]
    for table in SCHEMA_4_RESULT_COLUMNS:
        stmts += [f"ALTER TABLE {table} RENAME TO {table}_v4",
                  f"CREATE TABLE {table} ({' '.join(STUDENT_KEYED_COLUMNS[table].split())})",
                  f"INSERT INTO {table} SELECT o.*, {run_student_sql(table, 'o')} FROM {table}_v4 o",
                  f"DROP TABLE {table}_v4"]
    return stmts + fill_run_students() + relabel_best_drafts() + [
        "UPDATE stage_status SET scope = (SELECT r.student FROM runs r WHERE r.run_id = stage_status.run_id) "
        f"WHERE scope = '' AND list_contains({list(STUDENT_STAGES_SINCE_5)}, stage)"]


def relabel_best_drafts() -> list[str]:
    """Before schema 5 the 'original' arm was the best-scored draft per question (a baseline the student
    selected); since then 'original' is the unaligned teacher's regenerated data and that arm is 'best_drafts'."""
    return ["UPDATE artifacts SET name = 'student_best_drafts' WHERE name = 'student_original'",
            "UPDATE train_logs SET name = 'student_best_drafts' WHERE name = 'student_original'",
            "UPDATE sft_examples SET dataset = 'best_drafts' WHERE dataset = 'original'",
            "UPDATE evaluations SET variant = 'best_drafts' WHERE variant = 'original'",
            "UPDATE eval_items SET variant = 'best_drafts' WHERE variant = 'original'"]
