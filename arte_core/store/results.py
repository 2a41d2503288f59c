"""The results of a (run, student): trained adapters and models with their training logs, the SFT examples
they trained on, and evaluations with their per-item answers.

Since schema 5 every one of these rows carries the student it belongs to, so student B's `arte align`,
`arte distill` or `arte evaluate` never reads or replaces student A's. `student=None` means the run's own
student (runs.student), which keeps single-student callers as they were.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arte_core.store.core import Store


class ResultsMixin:
    """The Store's reads and writes of results; mixed into `Store` (core.py)."""

    # -- training artefacts ---------------------------------------------------------------------

    def add_artifact(self: "Store", run_id: str, name: str, kind: str, path: str, metrics: dict | None = None,
                     logs: list[dict] | None = None, student: str | None = None) -> None:
        """Record an adapter or model of the student with its training log, replacing any older one."""
        from arte_core.store.core import utcnow  # here: core.py imports this module to build Store

        student = self.student_of(run_id, student)
        with self.transaction():
            for table in ("artifacts", "train_logs"):
                self.execute(f"DELETE FROM {table} WHERE run_id = ? AND student = ? AND name = ?", [run_id, student, name])
            self.insert("artifacts", [dict(run_id=run_id, student=student, name=name, kind=kind, path=path,
                                           metrics_json=json.dumps(metrics or {}), created_at=utcnow())])
            self.insert("train_logs", [dict(run_id=run_id, student=student, name=name, step=int(r["step"]),
                                            epoch=r.get("epoch"), loss=r.get("loss"), metrics_json=json.dumps(r))
                                       for r in logs or []])

    def artifact(self: "Store", run_id: str, name: str, student: str | None = None) -> dict | None:
        found = self.rows("SELECT * FROM artifacts WHERE run_id = ? AND student = ? AND name = ?",
                          [run_id, self.student_of(run_id, student), name])
        return found[0] if found else None

    def artifact_kinds(self: "Store", run_id: str, student: str | None = None) -> list[str]:
        """The names of the student's artifacts in the run (teacher_adapter, student_arte, …), by name."""
        return [r["name"] for r in self.rows("SELECT name FROM artifacts WHERE run_id = ? AND student = ? ORDER BY name",
                                             [run_id, self.student_of(run_id, student)])]

    def train_logs(self: "Store", run_id: str, name: str, student: str | None = None) -> list[dict]:
        return self.rows("SELECT * FROM train_logs WHERE run_id = ? AND student = ? AND name = ? ORDER BY step",
                         [run_id, self.student_of(run_id, student), name])

    def save_sft_examples(self: "Store", run_id: str, dataset: str, rows: list[dict], student: str | None = None) -> None:
        student = self.student_of(run_id, student)
        with self.transaction():
            self.execute("DELETE FROM sft_examples WHERE run_id = ? AND student = ? AND dataset = ?",
                         [run_id, student, dataset])
            self.insert("sft_examples", [dict(run_id=run_id, student=student, dataset=dataset, idx=i, **r)
                                         for i, r in enumerate(rows)])

    def sft_examples(self: "Store", run_id: str, dataset: str, student: str | None = None) -> list[dict]:
        return self.rows("SELECT * FROM sft_examples WHERE run_id = ? AND student = ? AND dataset = ? ORDER BY idx",
                         [run_id, self.student_of(run_id, student), dataset])

    # -- evaluation -----------------------------------------------------------------------------

    def add_evaluation(self: "Store", row: dict, items: list[dict]) -> None:
        """One (student, variant, shots) cell with its items, committed together (rows without a
        student are the run's student's)."""
        student = self.student_of(row["run_id"], row.get("student"))
        with self.transaction():
            self.insert("evaluations", [{**row, "student": student}])
            self.insert("eval_items", [{**item, "student": student} for item in items])

    def evaluation(self: "Store", run_id: str, variant: str, shots: int, student: str | None = None) -> dict | None:
        found = self.rows("SELECT * FROM evaluations WHERE run_id = ? AND student = ? AND variant = ? AND shots = ?",
                          [run_id, self.student_of(run_id, student), variant, shots])
        return found[0] if found else None

    def evaluations(self: "Store", run_id: str, student: str | None = None) -> list[dict]:
        """The student's evaluation cells (None: the run's student), by shots then variant."""
        return self.rows("SELECT * FROM evaluations WHERE run_id = ? AND student = ? ORDER BY shots, variant",
                         [run_id, self.student_of(run_id, student)])

    def eval_items(self: "Store", run_id: str, student: str | None, variant: str, shots: int) -> list[dict]:
        """One evaluation cell's per-item answers, by test item."""
        return self.rows("SELECT * FROM eval_items WHERE run_id = ? AND student = ? AND variant = ? AND shots = ? "
                         "ORDER BY item_index", [run_id, self.student_of(run_id, student), variant, shots])

    def discard_evaluation(self: "Store", run_id: str, student: str, variant: str | None = None) -> None:
        """Delete the student's evaluation cells (of one variant, or all), to be evaluated anew."""
        clause, params = ("", [run_id, student]) if variant is None else (" AND variant = ?", [run_id, student, variant])
        with self.transaction():
            for table in ("eval_items", "evaluations"):
                self.execute(f"DELETE FROM {table} WHERE run_id = ? AND student = ?{clause}", params)
