"""The run context every stage receives: config, store, task, run folder, models and progress."""

from __future__ import annotations

import gc
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from arte_core.config import RunConfig
from arte_core.config.run import candidate_count
from arte_core.errors import ArteError
from arte_core.models import load_generator
from arte_core.models.registry import check_model_name
from arte_core.progress import Reporter
from arte_core.prompts import TeacherPrompts
from arte_core.store import Store
from arte_core.tasks import Example, Task, load_task, split_items_needed


class ModelCache:
    """Keeps loaded generators by (name, dtype, engine) so teacher == student loads once."""

    def __init__(self, config: RunConfig):
        self.config = config
        self._generators: dict[tuple, object] = {}

    def generator(self, name: str, dtype: str = "float32", engine: str = "batched"):
        key = (name, dtype, engine)
        if key not in self._generators:
            self._generators[key] = _build_generator(self.config, name, dtype, engine)
        return self._generators[key]

    def teacher(self):
        return self.generator(self.config.teacher)

    def student(self, name: str | None = None):
        score = self.config.score
        return self.generator(name or self.config.student, score.dtype, score.engine)

    def clear(self) -> None:
        """Free every loaded model (before training, which loads its own copy)."""
        self._generators.clear()
        gc.collect()


def _build_generator(config: RunConfig, name: str, dtype: str, engine: str):
    if engine == "fast" and config.backend == "transformers":
        try:
            from arte_core.models.fast import FastICLGenerator
        except ImportError:
            pass
        else:
            return FastICLGenerator.load(name, dtype=dtype, trust_remote_code=config.trust_remote_code)
    return load_generator(name, backend=config.backend, dtype=dtype, trust_remote_code=config.trust_remote_code)


@dataclass
class RunContext:
    config: RunConfig
    store: Store
    task: Task
    run_id: str
    run_dir: Path
    reporter: Reporter
    models: ModelCache = field(init=False)

    def __post_init__(self) -> None:
        self.models = ModelCache(self.config)

    @property
    def prompts(self) -> TeacherPrompts:
        return TeacherPrompts(self.task, self.config.elicit.prompt_format, self.config.elicit.questions_per_call,
                              self.config.pairs.step_by_step_prompt)

    def student_dir(self, student: str) -> Path:
        """The run folder's subfolder of one student's adapters and models: two students never share one."""
        return self.run_dir / student_folder(student)

    @property
    def pref_items(self) -> list[dict]:
        return self.store.split(self.run_id, "pref_items")

    @property
    def test_items(self) -> list[dict]:
        return self.store.split(self.run_id, "test_items")


def open_run(config: RunConfig, store: Store, reporter: Reporter | None = None) -> RunContext:
    """Load the task, register the run (or check it matches), and store its splits once.

    Everything that can be checked without loading a model is checked before the store is touched.
    """
    for model in (config.teacher, config.student):
        check_model_name(model)
    task = load_task(config.task, config.task_dir, seed=config.seed, difficulty=config.task_difficulty,
                     min_examples=split_items_needed(config))
    run_id = config.resolved_run_name
    # A stored run keeps the splits it was made with, even where today's split rules would differ.
    stored = store.count_rows("pref_items", run_id) and store.count_rows("test_items", run_id)
    pref, test = ([], []) if stored else preference_and_test_split(config, task)
    store.ensure_run(run_id, task.name, task.source, config.teacher, config.student,
                     config.fingerprint(), config.to_yaml())
    if not stored:
        store.save_split(run_id, "pref_items", pref)
        store.save_split(run_id, "test_items", test)
    run_dir = Path(config.runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    reporter = reporter or Reporter(run_dir / "events.jsonl")
    return RunContext(config, store, task, run_id, run_dir, reporter)


def preference_and_test_split(config: RunConfig, task: Task) -> tuple[list[Example], list[Example]]:
    """The run's splits as `score.selection` asks: 'balanced' (stratified by label), 'random' (a plain seeded
    draw) or 'irt' (a stratified pool of n_candidates items, narrowed to n_pref by the score stage)."""
    score = config.score
    if score.selection != "irt":
        return task.split(score.n_pref, config.eval.n_test, seed=config.seed, stratify=score.selection == "balanced")
    n_candidates = candidate_count(score)
    if n_candidates <= score.n_pref:
        raise ArteError(f"score.n_candidates ({n_candidates}) must exceed score.n_pref ({score.n_pref}) for the "
                        "'irt' selection, which keeps the n_pref most informative of them; raise n_candidates "
                        "(0 = 4 × n_pref) or use selection 'balanced'.")
    n_pool = len(task.pool())
    if n_pool < n_candidates + 1:
        raise ArteError(f"task '{task.name}' has {n_pool} usable examples (distinct, seed exemplars left out), too "
                        f"few for {n_candidates} 'irt' candidate items plus a test split; lower score.n_candidates "
                        f"(0 = 4 × n_pref) or add examples ({task.source}).")
    return task.split(n_candidates, config.eval.n_test, seed=config.seed)


def student_folder(student: str) -> str:
    """A folder name for a student's model name or path: readable, and distinct for distinct names
    (a hash of the full name follows, so 'org/m' and 'org_m' differ)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._-")[-60:] or "student"
    return f"{readable}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"


def seeded(*parts: int) -> int:
    """A stable 63-bit seed from integers (Python's hash() of tuples is salted per process for str)."""
    value = 1469598103934665603
    for part in parts:
        value = ((value ^ (int(part) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return value


__all__ = ["RunContext", "ModelCache", "open_run", "seeded", "Example"]
