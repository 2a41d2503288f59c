"""The stage registry: one record per stage, from which the CLI, `arte run`'s order, the studio's stage
list, the job runner and `arte status` are derived.

Adding a stage: write `arte_core/stages/NAME.py` with `run_NAME(ctx[, student])`, then add one `Stage`
below (its reads, writes and help). Nothing else lists stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from arte_core.config import RunConfig


@dataclass(frozen=True)
class Rows:
    """Rows of one store table that belong to a run (and to the student, for a per-student stage),
    optionally narrowed by column values, e.g. `Rows("rationales", origin="arte")`."""

    table: str
    where: tuple[tuple[str, str], ...] = ()

    def __init__(self, table: str, **where: str):
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "where", tuple(sorted(where.items())))

    def __str__(self) -> str:
        narrowed = ", ".join(f"{k}={v}" for k, v in self.where)
        return f"{self.table}[{narrowed}]" if narrowed else self.table


@dataclass(frozen=True)
class Stage:
    name: str
    function: str  # "module:function", imported on use: a `pairs` job need not import TRL and peft
    help: str
    reads: tuple[Rows, ...]  # inputs that must hold rows before the stage runs
    writes: tuple[Rows, ...]  # outputs that must hold rows before the stage is marked done
    per_student: bool  # scores and results of one student (done once per student)
    optional: bool = False  # runs only when named, never as part of `arte run`
    # Config values that define the stage's output: a stage done with other values is redone.
    settings: Callable[[RunConfig], dict] | None = field(default=None, compare=False)
    # The config sections the stage runs with: recorded with its status, and written into the run's stored
    # config, when it runs (pipeline.run_stage).
    sections: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.function.partition(":")[0]


def _score_settings(config: RunConfig) -> dict:
    """A run scored for accuracy is scored again (log-probabilities only) when answer_logprob is asked for;
    accuracy asks nothing, so every score done before the metric existed stays done."""
    return {"metric": config.score.metric} if config.score.metric != "accuracy" else {}


def _pair_settings(config: RunConfig) -> dict:
    settings = {"signal": config.pairs.signal, "style": config.pairs.style, "neutral": config.pairs.neutral}
    if config.pairs.signal != "influence":  # the ICL score ranks the 'icl' and 'both' signals' drafts
        settings["score"] = config.pairs.score
    if config.pairs.signal == "icl":  # only ICL pairs are tested on their items (stages/pair_evidence.py)
        settings["max_p"] = config.pairs.max_p
    return settings


def _sections(config: RunConfig, *names: str) -> dict:
    """Config sections as the stage info stores them (JSON values, so a stored and a fresh copy compare equal)."""
    values = config.to_dict()
    return json.loads(json.dumps({name: values[name] for name in names}))


# Each stage after pairs is redone when its own settings or those of a stage it builds on change: the
# teacher adapter depends on the pairs, the arms on the adapter, the students on the arms.
def _align_settings(config: RunConfig) -> dict:
    return {"pair_set": _pair_settings(config), **_sections(config, "align")}


def _regenerate_settings(config: RunConfig) -> dict:
    return {**_align_settings(config), **_sections(config, "regenerate")}


def _distill_settings(config: RunConfig) -> dict:
    return {**_regenerate_settings(config), **_sections(config, "distill")}


def _evaluate_settings(config: RunConfig) -> dict:
    return {**_distill_settings(config), **_sections(config, "eval")}


DRAFT_QUESTIONS, DRAFT_RATIONALES = Rows("questions", origin="draft"), Rows("rationales", origin="draft")

_STAGES = (
    Stage("elicit", "arte_core.stages.elicit:run_elicit",
          "step 1: the teacher writes draft questions and rationales",
          reads=(Rows("pref_items"), Rows("test_items")),
          # Not generation_calls: with elicit.question_source 'pool' no teacher call writes questions
          # (with 'teacher', every kept question is stored with the call that wrote it).
          writes=(DRAFT_QUESTIONS, DRAFT_RATIONALES),
          per_student=False, sections=("elicit",)),
    Stage("score", "arte_core.stages.score:run_score",
          "step 2: one-shot ICL accuracy of every draft for the student",
          reads=(DRAFT_QUESTIONS, DRAFT_RATIONALES, Rows("pref_items")),
          writes=(Rows("icl_scores"), Rows("icl_items")),
          per_student=True, sections=("score",), settings=_score_settings),
    Stage("rescore", "arte_core.stages.rescore:run_rescore",
          "step 2 again: score anew the drafts an older ARTE Studio scored (answers read before parse modes)",
          reads=(DRAFT_QUESTIONS, DRAFT_RATIONALES, Rows("pref_items"), Rows("icl_scores")),
          writes=(Rows("icl_scores"), Rows("icl_items")),
          per_student=True, sections=("score",), optional=True),
    Stage("influence", "arte_core.stages.influence:run_influence",
          "optional signal: Montessori-Instruct's local data influence of every draft",
          reads=(DRAFT_QUESTIONS, DRAFT_RATIONALES, Rows("pref_items")),
          writes=(Rows("influence_scores"),),
          per_student=True, sections=("influence",), optional=True),
    Stage("pairs", "arte_core.stages.pairs:run_pairs",
          "step 3: question and rationale preference pairs",
          # The scores it reads depend on pairs.signal; the stage names the command that makes them.
          reads=(DRAFT_QUESTIONS, DRAFT_RATIONALES),
          writes=(Rows("pairs"),),
          per_student=True, sections=("pairs",), settings=_pair_settings),
    Stage("align", "arte_core.stages.align:run_align",
          "step 4: DPO of the teacher on the pairs (LoRA)",
          reads=(Rows("pairs"),),
          writes=(Rows("artifacts", name="teacher_adapter"), Rows("train_logs", name="teacher_adapter")),
          per_student=True, sections=("align",), settings=_align_settings),
    Stage("regenerate", "arte_core.stages.regenerate:run_regenerate",
          "step 5a: the aligned teacher ('arte') and the unaligned one ('base') write data alike",
          reads=(Rows("artifacts", name="teacher_adapter"), Rows("icl_scores")),
          writes=(Rows("questions", origin="arte"), Rows("rationales", origin="arte"),
                  Rows("questions", origin="base"), Rows("rationales", origin="base")),
          per_student=True, sections=("regenerate",), settings=_regenerate_settings),
    Stage("check", "arte_core.stages.check:run_check",
          "step 5a check: the student scores base and aligned teacher drafts on held-out check items",
          reads=(Rows("rationales", origin="base"), Rows("rationales", origin="arte")),
          writes=(Rows("check_items"), Rows("alignment_scores")),
          # Part of `arte run`: the direct test of alignment, before any SFT (issue 16).
          per_student=True, sections=("score", "check")),
    Stage("distill", "arte_core.stages.distill:run_distill",
          "step 5b: fine-tune the student on each arm of distill.arms (same size, same settings)",
          reads=(Rows("icl_scores"), Rows("rationales", origin="arte"), Rows("rationales", origin="base")),
          # 'arte' is always an arm; the stage itself refuses to finish without every arm asked for.
          writes=(Rows("sft_examples", dataset="arte"), Rows("artifacts", name="student_arte")),
          per_student=True, sections=("distill",), settings=_distill_settings),
    Stage("evaluate", "arte_core.stages.evaluate:run_evaluate",
          "zero-/few-shot accuracy of untrained and fine-tuned students",
          reads=(Rows("test_items"),),
          writes=(Rows("evaluations"), Rows("eval_items")),
          per_student=True, sections=("eval",), settings=_evaluate_settings),
)

# Every stage by name, in the order a job runs them (influence feeds pairs built from that signal).
STAGES: dict[str, Stage] = {stage.name: stage for stage in _STAGES}
# The stages `arte run` (and the studio's "all") runs.
RUN_ORDER: list[str] = [stage.name for stage in _STAGES if not stage.optional]


def run_help() -> str:
    return "the whole loop: " + " → ".join(RUN_ORDER)


def producer(rows: Rows) -> str | None:
    """The stage that writes `rows` (the split tables come with every run: None)."""
    for stage in _STAGES:
        if rows in stage.writes:
            return stage.name
    for stage in _STAGES:
        if any(w.table == rows.table for w in stage.writes):
            return stage.name
    return None
