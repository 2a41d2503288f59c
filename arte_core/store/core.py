"""The project store: one DuckDB file, its connection, transactions and the engine's reads and writes.

Every write that belongs together happens in one transaction, so an interrupted run leaves either
the whole unit (a generation call with its questions, a draft with all of its ICL items) or nothing.
"""

from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow as pa
import yaml

from arte_core.errors import ArteError
from arte_core.store.results import ResultsMixin
from arte_core.store.opening import (check_version, connect, create_or_upgrade_schema, holds_rows,
                                     refuse_a_foreign_database, remove_store_files)
from arte_core.store.schema import TABLES, table_columns


# The tables whose texts the studio searches (facts.py keeps a lower-cased copy of them).
TEXT_TABLES = ("questions", "rationales")
_NAMES_A_TEXT_TABLE = re.compile(r"\b(" + "|".join(TEXT_TABLES) + r")\b", re.IGNORECASE)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store(ResultsMixin):
    """A DuckDB project store. One process owns it read-write; others may open it read-only.
    The reads and writes of results (adapters, SFT data, evaluations) are `ResultsMixin`'s."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        # Bumped by every write through this object. DuckDB lets one process write a file and no other
        # process open it meanwhile, so an unchanged count means unchanged data (facts.py relies on it).
        self.write_count = 0
        # Bumped by every write that may change a question's or rationale's text: an insert into those
        # tables, or a statement naming them. Writes through `con` itself are not counted, so code that
        # writes texts must go through `execute` or `insert`.
        self.text_write_count = 0
        self._scratch = False
        # A store this object created is removed again when the command that opened it fails before
        # writing a row (see __exit__): a failed command leaves no empty store behind.
        self._created_here = not read_only and not os.path.lexists(self.path)  # False, not OSError, on a bad path
        self.con = connect(self.path, read_only)
        self._closed = False
        try:
            if not read_only:
                refuse_a_foreign_database(self.con, self.path)
                create_or_upgrade_schema(self)
            check_version(self.con, self.path)
        except BaseException:
            self._close_after_failure(checkpoint=False)  # nothing of ours to save; a foreign file stays untouched
            raise

    def _close_after_failure(self, checkpoint: bool) -> None:
        """Close; delete the file (and its .wal) if this object created it and no row reached it."""
        remove = self._created_here and not holds_rows(self.con)
        if remove or not checkpoint:
            self.con.close()
            self._closed = True
        else:
            self.close()
        if remove:
            remove_store_files(self.path)

    def close(self) -> None:
        """Close the store with every committed row in the file itself, not only in its `.wal`: a
        copy of the file alone (a backup, a download) is then complete. DuckDB checkpoints on close
        only when no other connection in the process shares the database, so checkpoint here."""
        if self._closed:
            return  # closing twice was always harmless; a checkpoint on a closed connection is not
        if not self.read_only:
            self.checkpoint()
        self.con.close()
        self._closed = True

    def checkpoint(self) -> None:
        """Write the write-ahead log into the database file (cheap when little changed)."""
        with self._lock:
            try:
                self.con.execute("CHECKPOINT")
            except duckdb.TransactionException:
                pass  # another connection's transaction is open: the rows are safe in the .wal, which DuckDB replays

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self._close_after_failure(checkpoint=True)  # a failed command leaves no empty store it created
        else:
            self.close()

    # -- connection helpers -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all; nested use joins the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.con.execute("BEGIN TRANSACTION")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.con.execute("ROLLBACK")
                raise
            self._depth = 0
            self.con.execute("COMMIT")
            self._count_write()

    @contextmanager
    def scratch(self) -> Iterator[None]:
        """A transaction over TEMP tables derived from the stored data (facts.py): atomic like
        `transaction`, but its writes leave `write_count` alone, because the stored data is unchanged."""
        with self._lock:
            outer = self._scratch
            self._scratch = True
            try:
                with self.transaction():
                    yield
            finally:
                self._scratch = outer

    def _count_write(self, may_change_texts: bool = False) -> None:
        if not self._scratch:
            self.write_count += 1
            self.text_write_count += may_change_texts

    def rows(self, sql: str, params: list | tuple = ()) -> list[dict]:
        with self._lock:
            cur = self.con.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def scalar(self, sql: str, params: list | tuple = ()) -> Any:
        with self._lock:
            rows = self.con.execute(sql, list(params)).fetchall()  # fetchone() leaves the result open
        return rows[0][0] if rows else None

    def df(self, sql: str, params: list | tuple = ()):
        """A query as a pandas DataFrame (for plots and tables)."""
        with self._lock:
            return self.con.execute(sql, list(params)).df()

    def execute(self, sql: str, params: list | tuple = ()) -> None:
        with self._lock:
            self._count_write(may_change_texts=bool(_NAMES_A_TEXT_TABLE.search(sql)))
            self.con.execute(sql, list(params))

    def insert(self, table: str, rows: list[dict]) -> None:
        """Insert dict rows by column name (columns not given take their default or NULL)."""
        if not rows:
            return
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        arrow_rows = pa.Table.from_pylist(rows)
        with self._lock:
            self._count_write(may_change_texts=table in TEXT_TABLES)
            self.con.register("_arte_rows", arrow_rows)
            try:
                cols = ", ".join(arrow_rows.column_names)
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _arte_rows")
            finally:
                self.con.unregister("_arte_rows")

    # -- runs and stage status ----------------------------------------------------------------

    def ensure_run(self, run_id: str, task: str, task_source: str, teacher: str, student: str,
                   fingerprint: str, config_yaml: str) -> None:
        """Register a run, or check that an existing run of that name has the same config."""
        existing = self.rows("SELECT fingerprint FROM runs WHERE run_id = ?", [run_id])
        if existing:
            if existing[0]["fingerprint"] != fingerprint:
                raise ArteError(
                    f"run '{run_id}' already exists in {self.path} with a different config; "
                    "choose another --run-name, or drop run_name from the config to derive one."
                )
            return
        with self.transaction():
            self.insert("runs", [dict(run_id=run_id, task=task, task_source=task_source, teacher=teacher,
                                      student=student, fingerprint=fingerprint, config_yaml=config_yaml,
                                      created_at=utcnow())])

    def run(self, run_id: str) -> dict:
        found = self.rows("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not found:
            known = ", ".join(r["run_id"] for r in self.list_runs()) or "none"
            raise ArteError(f"no run '{run_id}' in {self.path} (runs: {known}).")
        return found[0]

    def student_of(self, run_id: str, student: str | None = None) -> str:
        """`student`, or the run's own student (runs.student) when None: whose results a call means."""
        return student or self.run(run_id)["student"]

    def origin_student(self, run_id: str, origin: str, student: str | None = None) -> str:
        """The `student` column of `origin`'s questions and rationales: '' for the drafts every student
        shares, else the student whose arm they are ('arte', 'base'; None = the run's student)."""
        return "" if origin == "draft" else self.student_of(run_id, student)

    def list_runs(self) -> list[dict]:
        return self.rows("SELECT * FROM runs ORDER BY created_at")

    def mark_done(self, run_id: str, stage: str, scope: str = "", info: dict | None = None,
                  ran_with: dict | None = None) -> None:
        """Mark a stage done with `info` and the config sections it ran with (`ran_with`, section -> values).
        Those sections replace the run's stored config's for the run's own student (or a stage of no
        student), so `runs.config_yaml` never keeps a value that a stage ran without."""
        with self.transaction():
            self.execute("DELETE FROM stage_status WHERE run_id = ? AND stage = ? AND scope = ?", [run_id, stage, scope])
            self.insert("stage_status", [dict(run_id=run_id, stage=stage, scope=scope, finished_at=utcnow(),
                                              info_json=json.dumps(info or {}),
                                              config_json=json.dumps(ran_with) if ran_with else None)])
            run = self.run(run_id) if ran_with else None
            if run and scope in ("", run["student"]):
                stored = {**(yaml.safe_load(run["config_yaml"]) or {}), **ran_with}
                self.execute("UPDATE runs SET config_yaml = ? WHERE run_id = ?",
                             [yaml.safe_dump(stored, sort_keys=False), run_id])

    def is_done(self, run_id: str, stage: str, scope: str = "") -> bool:
        return bool(self.scalar("SELECT count(*) FROM stage_status WHERE run_id = ? AND stage = ? AND scope = ?",
                                [run_id, stage, scope]))

    def stages_done(self, run_id: str) -> list[str]:
        """The run's finished stages in the order they finished, `stage:student` for a student's."""
        return [r["stage"] + (f":{r['scope']}" if r["scope"] else "") for r in self.rows(
            "SELECT stage, scope FROM stage_status WHERE run_id = ? ORDER BY finished_at", [run_id])]

    def count_rows(self, table: str, run_id: str, student: str | None = None, **where: str) -> int:
        """Rows of `table` that belong to the run (and to `student`, where the table has students),
        narrowed by `where` (column = value). A stage's inputs and outputs are counted this way."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        columns = table_columns(table)
        clauses, params = [], []
        if "run_id" in columns:
            clauses.append("run_id = ?")
        else:  # icl_items: its drafts' rows in icl_scores carry the run
            clauses.append("rationale_id IN (SELECT rationale_id FROM icl_scores WHERE run_id = ?)")
        params.append(run_id)
        if student is not None and "student" in columns:  # '': drafts, which every student shares
            clauses.append("student IN (?, '')")
            params.append(student)
        for column, value in where.items():
            if column not in columns:
                raise ValueError(f"table {table!r} has no column {column!r}")
            clauses.append(f"{column} = ?")
            params.append(value)
        return int(self.scalar(f"SELECT count(*) FROM {table} WHERE {' AND '.join(clauses)}", params))

    def stage_info(self, run_id: str, stage: str, scope: str = "") -> dict | None:
        raw = self.scalar("SELECT info_json FROM stage_status WHERE run_id = ? AND stage = ? AND scope = ?",
                          [run_id, stage, scope])
        return json.loads(raw) if raw else None

    # -- splits ---------------------------------------------------------------------------------

    def save_split(self, run_id: str, table: str, examples: list) -> None:
        """Store a run's preference or test split once; later calls keep the stored one."""
        if self.scalar(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]):
            return
        with self.transaction():
            self.insert(table, [dict(run_id=run_id, item_index=i, input=e.input, target=e.target)
                                for i, e in enumerate(examples)])

    def split(self, run_id: str, table: str) -> list[dict]:
        return self.rows(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY item_index", [run_id])

    # -- drafts ---------------------------------------------------------------------------------

    def generation_calls(self, run_id: str, origin: str, student: str | None = None) -> list[dict]:
        return self.rows("SELECT * FROM generation_calls WHERE run_id = ? AND origin = ? AND student = ? "
                         "ORDER BY call_index", [run_id, origin, self.origin_student(run_id, origin, student)])

    def add_generation_call(self, call: dict, questions: list[dict]) -> None:
        """One teacher call and the questions kept from it, committed together."""
        with self.transaction():
            self.insert("generation_calls", [call])
            self.insert("questions", questions)

    def questions(self, run_id: str, origin: str = "draft", student: str | None = None) -> list[dict]:
        return self.rows("SELECT * FROM questions WHERE run_id = ? AND origin = ? AND student = ? ORDER BY idx",
                         [run_id, origin, self.origin_student(run_id, origin, student)])

    def add_rationales(self, rows: list[dict]) -> None:
        with self.transaction():
            self.insert("rationales", rows)

    def rationales(self, run_id: str, origin: str = "draft", student: str | None = None) -> list[dict]:
        """The rationales of one origin: the drafts ('draft'), or one student's arm ('arte', 'base';
        student None = the run's student), each with its question."""
        return self.rows(
            "SELECT r.*, q.input AS question, q.target AS target, q.idx AS question_idx FROM rationales r "
            "JOIN questions q USING (question_id) WHERE r.run_id = ? AND r.origin = ? AND r.student = ? "
            "ORDER BY q.idx, r.technique", [run_id, origin, self.origin_student(run_id, origin, student)])

    def rationale_ids(self, run_id: str, origin: str = "draft", student: str | None = None) -> set[str]:
        return {r["rationale_id"] for r in self.rows(
            "SELECT rationale_id FROM rationales WHERE run_id = ? AND origin = ? AND student = ?",
            [run_id, origin, self.origin_student(run_id, origin, student)])}

    def discard_arm(self, run_id: str, origin: str, student: str) -> None:
        """Delete one student's regenerated arm (its teacher calls, questions and rationales), so that
        it is written anew with the settings and teacher of now."""
        if origin == "draft":
            raise ValueError("the drafts belong to every student; they are never discarded as an arm")
        with self.transaction():
            for table in ("rationales", "questions", "generation_calls"):
                self.execute(f"DELETE FROM {table} WHERE run_id = ? AND origin = ? AND student = ?",
                             [run_id, origin, student])

    # -- preferences ----------------------------------------------------------------------------

    def add_icl_result(self, score: dict, items: list[dict]) -> None:
        """A draft's score with every per-item answer behind it, committed together."""
        with self.transaction():
            self.insert("icl_scores", [score])
            self.insert("icl_items", items)

    def drop_scores_read_before_parse_modes(self, run_id: str, student: str) -> int:
        """Delete the student's draft scores whose answers were read by an older ARTE Studio (items
        without a parse mode: schema 2 or before), so that `arte rescore` scores them anew; returns how
        many drafts lost their score. Newer scores stay."""
        with self.transaction():
            old = [r["rationale_id"] for r in self.rows(
                "SELECT DISTINCT i.rationale_id FROM icl_items i JOIN icl_scores s USING (rationale_id, student) "
                "WHERE s.run_id = ? AND s.student = ? AND i.parse_mode IS NULL", [run_id, student])]
            for table in ("icl_items", "icl_scores"):
                self.execute(f"DELETE FROM {table} WHERE student = ? AND list_contains(?, rationale_id)",
                             [student, old])
        return len(old)

    def scored_rationale_ids(self, run_id: str, student: str) -> set[str]:
        return {r["rationale_id"] for r in self.rows(
            "SELECT rationale_id FROM icl_scores WHERE run_id = ? AND student = ?", [run_id, student])}

    def draft_scores(self, run_id: str, student: str) -> list[dict]:
        """Every draft rationale with its question and its ICL scores for one student (the columns
        added in schema 3 are NULL for drafts scored before it)."""
        return self.rows(
            "SELECT r.rationale_id, r.question_id, r.technique, r.prompt, r.text, r.answer, r.matches_target, "
            "r.word_count, q.input AS question, q.target, q.idx AS question_idx, s.accuracy, s.balanced_accuracy, "
            "s.label_copy_rate, s.n_items, s.n_unparsed, s.n_truncated, s.n_lenient "
            "FROM rationales r JOIN questions q USING (question_id) "
            "JOIN icl_scores s ON s.rationale_id = r.rationale_id AND s.student = ? "
            "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
            [student, run_id],
        )

    def question_calls(self, run_id: str) -> dict[str, int]:
        """Draft question id -> the elicitation call (one teacher prompt) that wrote it."""
        return {r["question_id"]: r["call_index"] for r in self.rows(
            "SELECT question_id, call_index FROM questions WHERE run_id = ? AND origin = 'draft'", [run_id])}

    # -- pairs ----------------------------------------------------------------------------------

    def replace_pairs(self, run_id: str, student: str, rows: list[dict]) -> None:
        """Make `rows` the pairs of one run and student (whatever signal and style built the old ones).

        Decisions stay in the trail under their pair ids; a rebuild that yields a decided pair again
        (ids are deterministic) brings its decisions back with it."""
        with self.transaction():
            self.execute("DELETE FROM pairs WHERE run_id = ? AND student = ?", [run_id, student])
            self.insert("pairs", rows)

    def pairs(self, run_id: str, student: str | None = None, kind: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM pairs WHERE run_id = ?", [run_id]
        if student:
            sql, params = sql + " AND student = ?", params + [student]
        if kind:
            sql, params = sql + " AND kind = ?", params + [kind]
        return self.rows(sql + " ORDER BY kind, pair_id", params)

    def training_pairs(self, run_id: str, student: str) -> list[dict]:
        """Pairs as DPO will see them: the human decision in force applied (excluded pairs dropped,
        swapped pairs swapped), by the one decision rule in decisions.py."""
        from arte_core.store.decisions import training_pairs  # imported here: decisions.py imports this module

        return training_pairs(self, run_id, student)
