"""Moving rows between stores: a run's rows out to a job file and back, and Parquet export/import.

A studio job runs in a child process that cannot open the project store (DuckDB allows one
read-write process per file), so the owner exports the run into a job-local DuckDB file, the
child works on that, and the owner ingests the file when the child ends. The same table filters
serve the Parquet export that ships a demo dataset or a project's data.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from arte_core.errors import ArteError
from arte_core.store.core import Store
from arte_core.store.schema import (SCHEMA_VERSION, STUDENT_STAGES_SINCE_5, STUDENT_TABLES, TABLES,
                                    run_student_sql)

ALIAS = "_arte_transfer"  # catalog name of the attached job file; unlikely to clash with a store's stem
MANIFEST = "manifest.json"

# Job rows describe processes on this machine; they never travel with a run.
MACHINE_LOCAL = ("jobs", "pilot_results")  # pilot results belong to no run: they stay in the store measured into
# The project store owns human decisions: a job's copy of them is read-only context for DPO.
NEVER_INGESTED = ("pair_decisions", "jobs")
# Tables whose writers rebuild whole groups (delete + insert): a group present in the incoming
# rows replaces the stored group, so rows the writer dropped do not linger.
REPLACE_GROUPS: dict[str, tuple[str, ...]] = {
    "pairs": ("run_id", "student"),  # one pair set per run and student, whatever signal built it
    # An `irt` selection shrinks the preference split to the selected candidates (stages/score.py).
    "pref_items": ("run_id",),
    "train_logs": ("run_id", "student", "name"),
    "sft_examples": ("run_id", "student", "dataset"),
}
# A student's regenerated arm (origin 'arte' or 'base') is rewritten whole when its settings change
# (stages/regenerate.py): an incoming arm replaces the stored one. The drafts (origin 'draft') only grow.
ARM_TABLES = ("generation_calls", "questions", "rationales")
# Before schema 5 the 'original' arm was the best-scored draft per question; rows of an older source keep
# their meaning under its name since, 'best_drafts' (schema.relabel_best_drafts does the same on upgrade).
OLD_ARM_NAMES: dict[str, tuple[str, str, str]] = {
    "artifacts": ("name", "student_original", "student_best_drafts"),
    "train_logs": ("name", "student_original", "student_best_drafts"),
    "sft_examples": ("dataset", "original", "best_drafts"),
    "evaluations": ("variant", "original", "best_drafts"),
    "eval_items": ("variant", "original", "best_drafts"),
}
# Tables without a run_id column reach their run through another table.
RUN_FILTERS: dict[str, str] = {
    "icl_items": ("rationale_id IN (SELECT rationale_id FROM {src}rationales WHERE list_contains($runs, run_id) "
                  "UNION SELECT rationale_id FROM {src}icl_scores WHERE list_contains($runs, run_id))"),
    "pair_decisions": "pair_id IN (SELECT pair_id FROM {src}pairs WHERE list_contains($runs, run_id))",
}


# -- helpers ------------------------------------------------------------------------------------


def _sql_string(text: str) -> str:
    """A SQL string literal (ATTACH and COPY take no parameters for file names)."""
    return "'" + str(text).replace("'", "''") + "'"


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    rows = con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
                       "ORDER BY column_index", [catalog, table]).fetchall()
    return [r[0] for r in rows]


def _incoming_columns(con: duckdb.DuckDBPyConnection, rel: str) -> set[str]:
    return {d[0] for d in con.execute(f"SELECT * FROM {rel} LIMIT 0").description}


def _shared_columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str, rel: str) -> list[str]:
    """The table's columns that `rel` has too: a source from an older schema lacks the newer columns,
    which then take their defaults (see schema.MIGRATIONS)."""
    incoming = _incoming_columns(con, rel)
    return [c for c in _columns(con, catalog, table) if c in incoming]


def _select_list(table: str, columns: list[str], incoming: set[str]) -> tuple[list[str], list[str]]:
    """(target columns, source expressions over alias `s`) for one table. A source from before schema 5
    has no `student`: its rows get their run's student (the runs rows are merged first) and its 'original'
    arm its true name, 'best_drafts'."""
    expressions = [f"s.{c}" for c in columns]
    if table == "stage_status" and "scope" in columns:  # those stages had no student before schema 5
        expressions[columns.index("scope")] = (
            f"CASE WHEN s.scope = '' AND list_contains({list(STUDENT_STAGES_SINCE_5)}, s.stage) "
            f"THEN {run_student_sql(table, 's')} ELSE s.scope END")
    if table in STUDENT_TABLES and "student" not in incoming:
        columns, expressions = columns + ["student"], expressions + [run_student_sql(table, "s")]
        if table in OLD_ARM_NAMES:
            column, old, new = OLD_ARM_NAMES[table]
            expressions[columns.index(column)] = f"CASE WHEN s.{column} = '{old}' THEN '{new}' ELSE s.{column} END"
    return columns, expressions


def _main_catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchall()[0][0]


def _run_filter(table: str, src: str = "") -> str:
    """WHERE clause selecting the rows of the runs in `$runs` (`src` qualifies the tables read)."""
    if table in RUN_FILTERS:
        return RUN_FILTERS[table].format(src=src)
    if "run_id" in TABLES[table]:
        return "list_contains($runs, run_id)"
    raise ArteError(f"table '{table}' has no run filter in arte_core/store/transfer.py; add one.")


@contextmanager
def _attached(store: Store, path: str | Path, read_only: bool) -> Iterator[str]:
    """Attach another DuckDB file to the store's connection for the duration of the block."""
    mode = "READ_ONLY" if read_only else "READ_WRITE"  # explicit: a read-only store attaches read-only by default
    with store._lock:
        try:
            store.con.execute(f"ATTACH {_sql_string(path)} AS {ALIAS} ({mode})")
        except duckdb.Error as exc:
            raise ArteError(f"cannot open {path}: {exc}") from None
        try:
            yield ALIAS
        finally:
            store.con.execute(f"DETACH {ALIAS}")


def _check_source_version(version: int | None, where: str) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise ArteError(f"{where} was written by a newer ARTE Studio (schema {version}, this one reads "
                        f"{SCHEMA_VERSION}); upgrade arte-studio.")


# -- job files ----------------------------------------------------------------------------------


def export_run(store: Store, run_id: str, path: str | Path) -> dict[str, int]:
    """Write every row of `run_id` (not job rows) into a new DuckDB store at `path`; returns row counts."""
    path = Path(path)
    store.run(run_id)  # a clear ArteError for an unknown run
    if path.exists():
        raise ArteError(f"{path} already exists; a job file is written once, into a new job folder.")
    Store(path).close()  # the full schema, created the same way as any store
    counts = {}
    with _attached(store, path, read_only=False) as dst, store.transaction():
        for table in TABLES:
            if table in MACHINE_LOCAL:
                continue
            cols = ", ".join(_columns(store.con, dst, table))
            store.con.execute(f"INSERT INTO {dst}.{table} ({cols}) SELECT {cols} FROM {table} "
                              f"WHERE {_run_filter(table)}", {"runs": [run_id]})
            counts[table] = store.con.execute(f"SELECT count(*) FROM {dst}.{table}").fetchall()[0][0]
    return counts


def _replace_groups(store: Store, table: str, src_rel: str, status_rel: str) -> None:
    """Delete the stored groups of `table` that the incoming rows (or a finished pairs stage) rebuild."""
    incoming = _incoming_columns(store.con, src_rel)
    keys = [key for key in REPLACE_GROUPS[table] if key in incoming]  # an older source: no student
    match = " AND ".join(f"s.{k} = t.{k}" for k in keys)
    store.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM {src_rel} s WHERE {match})")
    if table == "pairs":
        # A pairs stage that rebuilt a group into zero pairs leaves no incoming row for it, only its
        # stage_status mark (scope: the student, see arte_core/pairs.py): that group is empty now.
        store.execute(f"DELETE FROM pairs t WHERE EXISTS (SELECT 1 FROM {status_rel} s WHERE s.stage = 'pairs' "
                      "AND s.run_id = t.run_id AND s.scope = t.student)")


def _merge(store: Store, sources: dict[str, str], skip: tuple[str, ...], keep_existing: tuple[str, ...] = ()) -> dict[str, int]:
    """Upsert every source relation into its table in one transaction; returns incoming row counts.

    `sources` maps table -> a relation to read (an attached table or read_parquet(...)). Tables in
    `keep_existing` never overwrite a stored row with the same key (append-only audit tables)."""
    con = store.con
    catalog = _main_catalog(con)
    counts = {}
    with store.transaction():
        for table, rel in sources.items():
            if table in skip:
                continue
            columns, expressions = _select_list(table, _shared_columns(con, catalog, table, rel),
                                                _incoming_columns(con, rel))
            if table in REPLACE_GROUPS:
                _replace_groups(store, table, rel, sources.get("stage_status", "(SELECT NULL AS stage LIMIT 0)"))
            if table in ARM_TABLES and "student" in _incoming_columns(con, rel):
                store.execute(f"DELETE FROM {table} t WHERE t.origin <> 'draft' AND EXISTS (SELECT 1 FROM {rel} s "
                              "WHERE s.run_id = t.run_id AND s.origin = t.origin AND s.student = t.student)")
            verb = "INSERT OR IGNORE" if table in keep_existing else "INSERT OR REPLACE"
            store.execute(f"{verb} INTO {table} ({', '.join(columns)}) SELECT {', '.join(expressions)} "
                          f"FROM {rel} s")  # Store counts text writes
            counts[table] = con.execute(f"SELECT count(*) FROM {rel}").fetchall()[0][0]
    store.checkpoint()  # the studio holds its store open for days: the merged rows go in the file, not only the .wal
    return counts


def ingest(store: Store, path: str | Path) -> dict[str, int]:
    """Bring a job file's rows into the store in one transaction; returns the rows read per table.

    Rows upsert by primary key; pairs (and other rebuilt groups) replace their group; pair
    decisions and jobs stay as the store has them."""
    path = Path(path)
    if not path.is_file():
        raise ArteError(f"no job store at {path} to ingest.")
    with _attached(store, path, read_only=True) as src:
        version = store.con.execute(f"SELECT max(version) FROM {src}.schema_version").fetchall()[0][0]
        _check_source_version(version, str(path))
        # A job file from an older schema lacks the tables added since: it has no rows for them.
        present = {r[0] for r in store.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [src]).fetchall()}
        return _merge(store, {t: f"{src}.{t}" for t in TABLES if t in present}, skip=NEVER_INGESTED)


# -- Parquet ------------------------------------------------------------------------------------


def export_parquet(store: Store, folder: str | Path, run_ids: list[str] | None = None) -> dict[str, int]:
    """One Parquet file per table (optionally only the given runs' rows) and a manifest.json."""
    folder = Path(folder)
    run_ids = list(run_ids) if run_ids is not None else [r["run_id"] for r in store.list_runs()]
    for run_id in run_ids:
        store.run(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # a half-rewritten export must not look complete
    counts = {}
    with store._lock:
        for table in TABLES:
            if table in MACHINE_LOCAL:
                continue
            target = folder / f"{table}.parquet"
            store.con.execute(f"COPY (SELECT * FROM {table} WHERE {_run_filter(table)}) TO {_sql_string(target)} "
                              "(FORMAT parquet)", {"runs": run_ids})
            counts[table] = store.con.execute(f"SELECT count(*) FROM read_parquet({_sql_string(target)})").fetchall()[0][0]
    manifest = {"format": "arte-studio", "schema_version": SCHEMA_VERSION, "run_ids": run_ids, "tables": counts}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return counts


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a Parquet export, checked for a readable schema and complete files."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ArteError(f"{folder} is not an ARTE Studio export (no {MANIFEST}).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version, tables = int(manifest["schema_version"]), dict(manifest["tables"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArteError(f"{path} is not a valid export manifest: {exc}") from None
    _check_source_version(version, str(folder))
    unknown = sorted(set(tables) - set(TABLES))
    missing = sorted(t for t in tables if not (folder / f"{t}.parquet").is_file())
    if unknown or missing:
        raise ArteError(f"{folder} is incomplete or from another schema: "
                        f"missing files {missing or 'none'}, unknown tables {unknown or 'none'}.")
    return manifest


def import_parquet(store: Store, folder: str | Path) -> dict[str, int]:
    """Load an export folder into the store in one transaction; returns the rows read per table.

    Stored pair decisions are never rewritten: an incoming decision with a known id is skipped."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    sources = {t: f"read_parquet({_sql_string(folder / f'{t}.parquet')})" for t in TABLES if t in manifest["tables"]}
    try:
        return _merge(store, sources, skip=MACHINE_LOCAL, keep_existing=("pair_decisions",))
    except duckdb.Error as exc:
        raise ArteError(f"cannot import {folder}: {exc}") from None
