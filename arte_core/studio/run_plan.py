"""What a launch from the Runs tab will do, shown before it does it: which run the form's config is (one
already in the store, which a launch continues, or a new one), how long each stage will take, and the
confirmation the whole loop needs.

Times come from measured rates: the seconds each stage took in the jobs this store ran (their
`stage_finished` events), divided by the stage's amount of work under that job's config (STAGE_WORK),
and the influence stage's own measured seconds per probe (stage_status info). When nothing was measured
yet, the demo's documented rates (DEMO_SECONDS) stand in and the page says so.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Callable

import yaml

from arte_core.config import TECHNIQUES, RunConfig, config_from_dict
from arte_core.errors import ArteError
from arte_core.jobs import JobManager, job_paths
from arte_core.stages.registry import RUN_ORDER, STAGES
from arte_core.store import Store, catalog

# The amount of work of each stage under a config, in the unit its time grows with.
STAGE_WORK: dict[str, tuple[str, Callable[[RunConfig], float]]] = {
    "elicit": ("teacher generations", lambda c: c.elicit.n_questions * (1 + len(TECHNIQUES))),
    "score": ("draft × preference-item answers", lambda c: c.elicit.n_questions * len(TECHNIQUES) * c.score.n_pref),
    "rescore": ("draft × preference-item answers", lambda c: c.elicit.n_questions * len(TECHNIQUES) * c.score.n_pref),
    "influence": ("drafts probed", lambda c: c.elicit.n_questions * len(TECHNIQUES)),
    "pairs": ("runs", lambda c: 1),
    "align": ("DPO trainings", lambda c: 1),
    # Two like-for-like arms (base and aligned teacher), each a question and one rationale per example.
    "regenerate": ("teacher generations", lambda c: 2 * 2 * (c.regenerate.n_examples or c.elicit.n_questions)),
    "check": ("draft × check-item answers",
              lambda c: 2 * (c.check.n_drafts or c.regenerate.n_examples or c.elicit.n_questions) * c.check.n_items),
    "distill": ("examples distilled", lambda c: len(c.distill.arms) * c.elicit.n_questions),
    "evaluate": ("test answers", lambda c: c.eval.n_test * len(c.eval.shots) * (1 + len(c.distill.arms))),
}
# The demo's seconds per stage, the stand-in until this store has measured its own: measured 2026-12-02 with
# `arte run --config assets/configs/demo.yaml` (8 questions × 4 techniques, 12 preference, 24 check and 300
# test items, SmolLM2-135M as teacher and student; 15 min 18 s on 2 CPU cores). Rescore is the score stage
# again; influence: the demo's stored 3.17 s per probe × 32 drafts.
DEMO_SECONDS = {"elicit": 179, "score": 90, "rescore": 90, "influence": 101, "pairs": 1, "align": 51,
                "regenerate": 141, "check": 91, "distill": 15, "evaluate": 348}
FINISHED = ("done", "failed", "stopped")
# A stage without a work measure here (a stage added to the registry later) is timed per run of it.
PER_RUN = ("runs of the stage", lambda c: 1)


@dataclass
class StageEstimate:
    stage: str
    seconds: float
    n_measured: int  # measured stage runs behind the rate; 0 = the demo's documented rate
    low_s: float  # fastest and slowest rate measured, scaled to this config (= seconds when n_measured < 2)
    high_s: float


def config_of(yaml_text: str) -> RunConfig:
    data = yaml.safe_load(yaml_text or "") or {}
    if not isinstance(data, dict):
        raise ArteError("the config must be a YAML mapping of fields.")
    return config_from_dict(data)


def run_identity(store: Store, config: RunConfig) -> dict:
    """Which run this config is: {run_id, exists, listed, stages_done, text} (text worded for the page)."""
    run_id = config.resolved_run_name
    known = set(catalog.list_runs(store)["run_id"])
    listed = set(catalog.runs_with_data(store)["run_id"])
    done = store.stages_done(run_id) if run_id in known else []
    if run_id in listed:
        text = (f"This config = run `{run_id}` (exists; stages done: {', '.join(done) or 'none yet'}). Launch "
                "continues it and skips what is done.")
    elif run_id in known:
        text = (f"This config = run `{run_id}` (registered by an earlier launch, nothing stored yet). Launch "
                "starts it again.")
    else:
        text = (f"This config = a **NEW** run `{run_id}`: any change to the task, teacher, seed, draft settings, "
                "n_pref or n_test makes a new run. It appears in the Run picker once its first stage stores "
                "something.")
    return dict(run_id=run_id, exists=run_id in known, listed=run_id in listed, stages_done=done, text=text)


def measured_rates(jobs: JobManager) -> dict[str, list[float]]:
    """Seconds per unit of work of each stage, one per finished stage run of this store's jobs."""
    rates: dict[str, list[float]] = {}
    jobs.refresh()
    for row in jobs.jobs():
        if row["status"] not in FINISHED:
            continue
        try:
            config = config_of(row["config_yaml"])
            lines = job_paths(row["job_dir"])["events"].read_text(encoding="utf-8").splitlines()
        except (ArteError, OSError, yaml.YAMLError):
            continue  # a job folder cleaned away or an old config: nothing to learn from it
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            stage, seconds = event.get("stage_finished"), event.get("seconds")
            if stage in STAGES and isinstance(seconds, (int, float)) and seconds > 0:
                rates.setdefault(stage, []).append(seconds / max(1.0, STAGE_WORK.get(stage, PER_RUN)[1](config)))
    for run in catalog.list_runs(jobs.store)["run_id"]:  # the influence stage stores its own rate
        info = jobs.store.stage_info(run, "influence", jobs.store.run(run)["student"]) or {}
        if isinstance(info.get("seconds_per_probe"), (int, float)):
            rates.setdefault("influence", []).append(float(info["seconds_per_probe"]))
    return rates


def stages_of(stage: str | None) -> list[str]:
    return list(RUN_ORDER) if stage in (None, "", "all") else [stage]


def estimate(jobs: JobManager, config: RunConfig, stage: str | None) -> list[StageEstimate]:
    """The expected seconds of each stage a launch of `stage` runs, under `config`."""
    rates = measured_rates(jobs)
    out = []
    for name in stages_of(stage):
        if name not in STAGES:
            raise ArteError(f"unknown stage {name!r}; choose one of: all, {', '.join(STAGES)}.")
        work = max(1.0, STAGE_WORK.get(name, PER_RUN)[1](config))
        measured = rates.get(name, [])
        if measured:
            out.append(StageEstimate(name, statistics.median(measured) * work, len(measured),
                                     min(measured) * work, max(measured) * work))
        elif name not in DEMO_SECONDS:  # nothing measured, and the demo's timing predates the stage
            out.append(StageEstimate(name, math.nan, 0, math.nan, math.nan))
        else:
            demo_work = STAGE_WORK[name][1](_demo_config())
            seconds = DEMO_SECONDS[name] / max(1.0, demo_work) * work
            out.append(StageEstimate(name, seconds, 0, seconds, seconds))
    return out


def _demo_config() -> RunConfig:
    from arte_core.config import demo_config_path, load_config

    return load_config(demo_config_path())


def minutes(seconds: float) -> str:
    if math.isnan(seconds):
        return "not known yet"
    return "under 1 min" if seconds < 60 else f"{seconds / 60:.0f} min"


def _total(estimates: list[StageEstimate]) -> str:
    known = [e.seconds for e in estimates if not math.isnan(e.seconds)]
    unknown = [e.stage for e in estimates if math.isnan(e.seconds)]
    text = minutes(sum(known)) if known else "not known yet"
    return text + (f" plus {', '.join(unknown)} (never timed here)" if unknown and known else "")


def estimate_markdown(estimates: list[StageEstimate]) -> str:
    """The per-stage estimate as a short table, with where each number comes from."""
    rows = ["| stage | expected time | from |", "|---|---|---|"]
    for e in estimates:
        if math.isnan(e.seconds):
            source = "no run of this stage was timed in this store, and the demo has no rate for it"
        elif e.n_measured == 0:
            source = "the demo's rate (nothing measured in this store yet)"
        elif e.n_measured == 1:
            source = "1 measured run"
        else:
            source = f"n = {e.n_measured} measured runs, range {minutes(e.low_s)} – {minutes(e.high_s)}"
        rows.append(f"| {e.stage} | {minutes(e.seconds)} | {source} |")
    total = _total(estimates)
    total = total if total.startswith("not known") else f"about {total}"
    return f"**Expected time: {total}** (stages already done are skipped)\n\n" + "\n".join(rows)


def check_all_confirmed(stage: str | None, confirmed: bool, estimates: list[StageEstimate]) -> None:
    """The whole loop launches only once its expected time was confirmed."""
    if stage in (None, "", "all") and not confirmed:
        total = _total(estimates)
        raise ArteError(f"'all' runs every stage ({' → '.join(RUN_ORDER)}), about {total}. Tick "
                        "'Yes, run the whole loop' and press Launch again, or pick one stage.")
