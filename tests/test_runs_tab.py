"""The Runs tab: its plain handlers, and the wired tab served by Gradio and called with gradio_client."""

import json
import os
import tempfile

import pytest
from helpers import free_port, make_config, populate_drafts, stop_leftovers, wait_until

from arte_core.config import RunConfig, demo_config_path, load_config
from arte_core.errors import ArteError
from arte_core.jobs import JobManager
from arte_core.stages.registry import STAGES
from arte_core.store import Store, utcnow
from arte_core.studio import runs
from ui.runs import build_runs_tab

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "project.duckdb")
    yield store
    store.close()


@pytest.fixture
def jobs(store, tmp_path):
    return JobManager(store, tmp_path / "runs")


def config_yaml(tmp_path, **changes) -> str:
    config = RunConfig(runs_dir=str(tmp_path / "runs"))
    config.score.n_pref, config.eval.n_test = 4, 4
    for key, value in changes.items():
        setattr(config, key, value)
    return config.to_yaml()


def fake_finished_job(jobs: JobManager, job_id: str = "20260101-000000-abcdef", status: str = "done",
                      student: str = "s") -> dict:
    """A jobs row and job folder as a finished child leaves them (no process needed); the run's own
    student is 's', the job ran for `student`."""
    job_dir = jobs.runs_dir / "jobs" / job_id
    job_dir.mkdir(parents=True)
    events = [{"stage_started": "align"}, {"stage": "DPO (teacher)", "done": 0, "total": 4},
              {"stage": "DPO (teacher)", "step": 1, "loss": 0.69}, {"stage": "DPO (teacher)", "done": 2, "total": 4},
              {"stage": "DPO (teacher)", "step": 2, "loss": 0.61}, {"stage_finished": "align", "seconds": 3.0}]
    (job_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (job_dir / "log.txt").write_text("".join(f"line {i}\n" for i in range(50)) + "arte: error: <boom>\n")
    (job_dir / "exit.json").write_text('{"code": 2}')
    row = dict(job_id=job_id, run_id="boolean_expressions-x", stages="align", status=status, pid=None,
               job_dir=str(job_dir), config_yaml=RunConfig(student=student).to_yaml(), who="ann", message="arte: error: <boom>",
               started_at=utcnow(), finished_at=utcnow())
    with jobs.store.transaction():
        jobs.store.ensure_run(row["run_id"], "boolean_expressions", "builtin", "t", "s", "x", row["config_yaml"])
        jobs.store.insert("jobs", [row])
    return row


def test_malformed_yaml_launches_nothing(jobs, tmp_path):
    with pytest.raises(ArteError, match="not valid YAML"):
        runs.launch_job(jobs, False, "task: [unclosed", "all")
    with pytest.raises(ArteError, match="must be a YAML mapping"):
        runs.launch_job(jobs, False, "- a list", "all")
    with pytest.raises(ArteError, match="unknown config field 'tsak'"):
        runs.launch_job(jobs, False, "tsak: boolean_expressions", "all")
    assert jobs.jobs() == [] and not jobs.lock_path.exists()
    assert not (jobs.runs_dir / "jobs").exists()


@pytest.mark.parametrize("form", ["", "  \n", "# nothing but a comment\n"])
def test_an_empty_form_launches_the_demo_config_like_the_cli(jobs, form):
    """`arte run` without --config runs the demo config; so does Launch with an empty form, never the
    built-in full-size defaults (250 questions, n_test 200)."""
    demo = load_config(demo_config_path())
    try:
        row = runs.launch_job(jobs, False, form, "pairs")
    finally:
        stop_leftovers(jobs)
    launched = runs.parse_config(row["config_yaml"])
    assert (launched.elicit.n_questions, launched.eval.n_test) == (demo.elicit.n_questions, demo.eval.n_test)
    assert launched.elicit.prompt_format == demo.elicit.prompt_format == "completion"
    assert row["run_id"] == demo.resolved_run_name  # the demo's run, which `arte run` would continue
    assert runs.field_values(form) == runs.field_values(demo.to_yaml())  # the form's fields show it too


def test_key_fields_rewrite_the_yaml(tmp_path):
    text = config_yaml(tmp_path)
    model = "smollm2-135m-instruct"
    assert runs.field_values(text)[:4] == ["boolean_expressions", None, model, model]
    assert runs.field_values(text)[-2:] == ["icl", "arte"]
    changed = runs.apply_fields(text, "navigate", "", "teacher-x", None, 3, 1e-4, "both", "montessori")
    assert runs.field_values(changed) == ["navigate", None, "teacher-x", "smollm2-135m-instruct", 3, 1e-4, "both",
                                          "montessori"]
    assert runs.parse_config(changed).score.n_pref == 4  # the rest of the YAML is kept
    with_folder = runs.apply_fields(changed, None, str(tmp_path), None, None, None, None, None, None)
    assert runs.field_values(with_folder)[1] == str(tmp_path)
    assert runs.field_values(runs.apply_fields(with_folder, None, " ", *[None] * 6))[1] is None  # emptied: cleared
    with pytest.raises(ArteError, match="elicit.n_questions"):
        runs.apply_fields(text, None, None, None, None, 0, None, None, None)
    with pytest.raises(ArteError, match="'pairs.style' is 'dpo'; choose one of arte, montessori"):
        runs.apply_fields(text, None, None, None, None, None, None, None, "dpo")


def test_read_only_refuses_every_action(jobs, tmp_path):
    fake_finished_job(jobs)
    for action in (lambda: runs.launch_job(jobs, True, config_yaml(tmp_path), "all"),
                   lambda: runs.stop_job(jobs, True, None),
                   lambda: runs.relaunch_job(jobs, True, None)):
        with pytest.raises(ArteError, match="read-only"):
            action()
    assert len(jobs.jobs()) == 1


def test_progress_and_history_views_of_a_finished_job(jobs):
    row = fake_finished_job(jobs)
    html, log, fig = runs.progress_view(jobs, None)  # nothing picked: the newest job
    assert row["job_id"] in html and "data-status='done'" in html
    assert "DPO (teacher) 2/4" in html and "width:50.0%" in html
    assert "&lt;boom&gt;" in html and "<boom>" not in html  # messages are escaped
    assert log.splitlines()[-1] == "arte: error: <boom>" and len(log.splitlines()) == 30
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [0.69, 0.61]
    table = runs.history_table(jobs)
    assert table.columns.tolist() == runs.HISTORY_COLUMNS
    assert table.iloc[0].tolist()[:5] == [row["job_id"], row["run_id"], "align", "done", "ann"]
    assert "no job &#x27;nope&#x27;" in runs.progress_view(jobs, "nope")[0]
    with pytest.raises(ArteError, match="nothing to stop"):
        runs.stop_job(jobs, False, None)


# The shipped demo's DPO (issue 16): 3 steps, the first at learning rate 0, a final margin of 0.0016 at beta 0.1.
DEMO_DPO_LOGS = [{"step": 1, "loss": 0.6931, "learning_rate": 0.0, "rewards/margins": 0.0, "rewards/accuracies": 0.0,
                  "rewards/chosen": 0.0, "rewards/rejected": 0.0},
                 {"step": 2, "loss": 0.6931, "learning_rate": 5e-5, "rewards/margins": 0.0, "rewards/accuracies": 0.0,
                  "rewards/chosen": 0.0, "rewards/rejected": 0.0},
                 {"step": 3, "loss": 0.6924, "learning_rate": 2.5e-5, "rewards/margins": 0.0016,
                  "rewards/accuracies": 0.75, "rewards/chosen": -0.0062, "rewards/rejected": -0.0078}]


def store_teacher_dpo(store, run_id: str, logs: list[dict], margin_nats: float, moved: bool) -> None:
    store.add_artifact(run_id, "teacher_adapter", "adapter", "/nowhere",
                       {"n_pairs": 12, "steps": len(logs), "final_reward_margin": logs[-1]["rewards/margins"],
                        "margin_nats": margin_nats, "moved": moved, "settings": {"beta": 0.1}}, logs)


def test_the_shown_runs_teacher_dpo_shows_loss_margin_and_accuracy_and_says_when_it_did_not_move(jobs):
    row = fake_finished_job(jobs)
    assert "no aligned teacher yet" in runs.dpo_view(jobs, None).layout.annotations[0].text
    key_before = runs.dpo_key(jobs, None)
    store_teacher_dpo(jobs.store, row["run_id"], DEMO_DPO_LOGS, 0.016, moved=False)
    assert runs.dpo_key(jobs, None) != key_before  # the tab redraws once the adapter is stored
    fig = runs.dpo_view(jobs, None)
    title = fig.layout.title.text
    assert "3 steps" in title and "n = 12 pairs" in title and "the teacher is unchanged" in title
    assert "0.016 nats at beta 0.1" in title
    by_name = {trace.name: list(trace.y) for trace in fig.data}
    assert by_name["loss"] == [0.6931, 0.6931, 0.6924]
    assert by_name["reward margin (chosen − rejected)"] == [0.0, 0.0, 0.0016]
    assert by_name["reward accuracy (batch mean)"] == [0.0, 0.0, 0.75]
    moved = [dict(r, **{"rewards/margins": 0.3}) for r in DEMO_DPO_LOGS]
    store_teacher_dpo(jobs.store, row["run_id"], moved, 3.0, moved=True)
    assert "unchanged" not in runs.dpo_view(jobs, None).layout.title.text


def test_the_dpo_figure_follows_the_shown_jobs_student(jobs):
    first = fake_finished_job(jobs)
    store_teacher_dpo(jobs.store, first["run_id"], DEMO_DPO_LOGS, 0.016, moved=False)  # aligned to student 's'
    second = fake_finished_job(jobs, "20260101-000001-bbbbbb", student="b")  # the same run, for student b
    empty = runs.dpo_view(jobs, second["job_id"]).layout.annotations[0].text
    assert "no aligned teacher yet (for student b)" in empty
    key_before = runs.dpo_key(jobs, second["job_id"])
    moved = [dict(r, **{"rewards/margins": 0.3}) for r in DEMO_DPO_LOGS]
    jobs.store.add_artifact(first["run_id"], "teacher_adapter", "adapter", "/b",
                            {"n_pairs": 5, "steps": 3, "final_reward_margin": 0.3, "margin_nats": 3.0, "moved": True,
                             "settings": {"beta": 0.1}}, moved, student="b")
    assert runs.dpo_key(jobs, second["job_id"]) != key_before
    title = runs.dpo_view(jobs, second["job_id"]).layout.title.text
    assert "n = 5 pairs" in title and "aligned to b" in title
    assert "n = 12 pairs" in runs.dpo_view(jobs, first["job_id"]).layout.title.text  # 's' keeps its own


def test_empty_views_and_launch_then_stop_through_the_handlers(jobs, tmp_path):
    html, log, fig = runs.progress_view(jobs, None)
    assert "No job yet" in html and log == "" and not fig.data
    assert runs.history_table(jobs).empty
    row = runs.launch_job(jobs, False, config_yaml(tmp_path), "score", who="ann")
    assert row["status"] == "running" and row["stages"] == "score" and row["who"] == "ann"
    stopped = runs.stop_job(jobs, False, None, who="ann")  # nothing picked: the running job
    assert stopped["job_id"] == row["job_id"] and stopped["status"] == "stopped"
    assert runs.history_table(jobs)["status"].tolist() == ["stopped"]
    again = runs.relaunch_job(jobs, False, None, who="bob")  # nothing picked: the newest job
    assert again["job_id"] != row["job_id"] and again["stages"] == "score" and again["run_id"] == row["run_id"]
    assert again["config_yaml"] == row["config_yaml"]
    runs.stop_job(jobs, False, again["job_id"])
    assert runs.history_table(jobs)["status"].tolist() == ["stopped", "stopped"]


def test_an_all_job_from_the_studio_runs_one_arte_run(jobs, tmp_path, tiny_model_dir, monkeypatch):
    """The studio's 'all' is `arte run` in one child process, not one process per stage."""
    from arte_core.jobs import job_paths, read_json, stage_commands
    from arte_core.stages.registry import RUN_ORDER

    monkeypatch.setenv("ARTE_MODELS_DIR", os.path.dirname(tiny_model_dir))  # the studio loads local models only from there

    assert runs.STAGE_CHOICES == ["all", *STAGES]  # the form's stages come from the registry
    text = make_config(tiny_model_dir, tmp_path).to_yaml()
    try:
        with pytest.raises(ArteError, match="Yes, run the whole loop"):  # 'all' asks first, and launches nothing
            runs.launch_job(jobs, False, text, "all", who="ann")
        assert jobs.jobs() == []
        row = runs.launch_job(jobs, False, text, "all", who="ann", confirmed_all=True)
        assert row["stages"] == ",".join(RUN_ORDER)
        paths = job_paths(row["job_dir"])
        commands = stage_commands(row["job_dir"], read_json(paths["spec"]))
        assert len(commands) == 1 and commands[0][0] == "run"
        started = wait_until(lambda: [line for line in paths["log"].read_text().splitlines() if "] arte " in line],
                             what="the child to start its command")
        assert len(started) == 1 and started[0].split("] ", 1)[1].startswith("arte run --config ")
        runs.stop_job(jobs, False, row["job_id"])
    finally:
        stop_leftovers(jobs)
    log = job_paths(row["job_dir"])["log"].read_text().splitlines()
    assert [line for line in log if "] arte " in line] == started  # no stage ran in a process of its own


def test_tab_served_by_gradio_answers_the_client(jobs, tmp_path):
    import gradio as gr
    from gradio_client import Client

    row = fake_finished_job(jobs)
    with gr.Blocks() as demo:
        with gr.Tab("Runs"):
            widgets = build_runs_tab(jobs, RunConfig(runs_dir=str(tmp_path / "runs")), read_only=False)
    assert widgets["launch"].interactive is not False
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, analytics_enabled=False)
        names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
        assert {"/runs_launch", "/runs_stop", "/runs_progress", "/runs_history", "/runs_relaunch", "/runs_dpo"} <= names

        html, log, _ = client.predict(row["job_id"], api_name="/runs_progress")
        store_teacher_dpo(jobs.store, row["run_id"], DEMO_DPO_LOGS, 0.016, moved=False)
        assert "the teacher is unchanged" in json.dumps(client.predict(row["job_id"], api_name="/runs_dpo"))
        assert "data-status='done'" in html and log.endswith("arte: error: <boom>")
        history = client.predict(api_name="/runs_history")
        assert [r[0] for r in history["data"]] == [row["job_id"]]

        status, _ = client.predict("task: [unclosed", "all", api_name="/runs_launch")
        assert "not valid YAML" in status
        assert len(jobs.jobs()) == 1  # nothing launched
    finally:
        demo.close()


def test_read_only_tab_disables_the_buttons(jobs, tmp_path):
    import gradio as gr

    with gr.Blocks():
        widgets = build_runs_tab(jobs, RunConfig(), read_only=True)
    assert widgets["launch"].interactive is False and widgets["stop"].interactive is False
    assert runs.READ_ONLY_REASON in widgets["status"].value
    assert "studio is read-only" in runs.READ_ONLY_REASON and "another process" not in runs.READ_ONLY_REASON


def test_pairs_job_builds_from_the_signal_and_style_picked_in_the_form(store, jobs, tmp_path, tiny_model_dir,
                                                                       monkeypatch):
    """The whole path a person takes: pick signal and style, launch `pairs`, a real child job builds them."""
    import gradio as gr
    from gradio_client import Client

    from arte_core.context import open_run

    monkeypatch.setenv("ARTE_MODELS_DIR", os.path.dirname(tiny_model_dir))

    config = make_config(tiny_model_dir, tmp_path)
    run_id = open_run(config, store).run_id
    populate_drafts(store, run_id, config.student, n_questions=4)
    ids = [r["rationale_id"] for r in store.rows("SELECT rationale_id FROM rationales ORDER BY rationale_id")]
    with store.transaction():  # odd drafts help the student, even ones hurt it
        store.insert("influence_scores", [dict(rationale_id=rid, student=config.student, run_id=run_id, loss_before=1.0,
                                               loss_after=1.0 + (-0.1 if i % 2 else 0.1), influence=-0.1 if i % 2 else 0.1,
                                               mode="lora", learning_rate=1e-4, n_reference=4, created_at=utcnow())
                                          for i, rid in enumerate(ids)])
    with gr.Blocks() as demo:
        with gr.Tab("Runs"):
            build_runs_tab(jobs, config, read_only=False)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, analytics_enabled=False)
        text = config.to_yaml()
        fields = runs.field_values(text)
        fields[-2:] = ["influence", "montessori"]
        text = client.predict(text, *fields, api_name="/runs_field_pairs_style")
        assert "signal: influence" in text and "style: montessori" in text
        status, job_id = client.predict(text, "pairs", api_name="/runs_launch")
        assert job_id and "Launched job" in status
        wait_until(lambda: jobs.refresh() or jobs.job(job_id)["status"] != "running", what="the pairs job")
        assert jobs.job(job_id)["status"] == "done", jobs.job(job_id)["message"]
    finally:
        demo.close()
        stop_leftovers(jobs)
    pairs = store.pairs(run_id, config.student)
    assert pairs and {(p["signal"], p["style"]) for p in pairs} == {("influence", "montessori")}
    helpful = set(ids[1::2])
    assert all(p["chosen_ref"] in helpful and p["rejected_ref"] not in helpful for p in pairs if p["kind"] == "rationale")


# -- the safe form (issue 19): task list, which run, how long, no empty runs, words for the page ----------


def bbh_folder(root, *names: str):
    """A task folder in the BBH layout holding `names` (and one half-task, a JSON without its prompt)."""
    for name in names:
        (root / "tasks").mkdir(parents=True, exist_ok=True)
        (root / "cot-prompts").mkdir(parents=True, exist_ok=True)
        (root / "tasks" / f"{name}.json").write_text('{"examples": []}')
        (root / "cot-prompts" / f"{name}.txt").write_text("Q: x\nA: y")
    (root / "tasks" / "half_task.json").write_text('{"examples": []}')
    return root


def test_the_task_list_offers_the_builtin_tasks_and_the_folders_tasks(tmp_path):
    from arte_core.tasks import builtin_task_names

    assert runs.task_choices(None) == builtin_task_names() and "boolean_expressions" in runs.task_choices("")
    folder = bbh_folder(tmp_path / "bbh", "causal_judgement", "date_understanding")
    choices = runs.task_choices(str(folder))
    assert choices == builtin_task_names() + ["causal_judgement", "date_understanding"]  # not the half task
    assert runs.task_dir_note(str(folder)) == "" and runs.task_dir_note("") == ""
    assert "no folder" in runs.task_dir_note(str(tmp_path / "nowhere"))
    assert "holds no task in the BBH layout" in runs.task_dir_note(str(tmp_path))


def test_the_teacher_and_student_lists_offer_the_installed_models(monkeypatch):
    from arte_core.models import registry

    installed = {"smollm2-135m-instruct"}  # as on a machine without the second-student extra
    monkeypatch.setattr(runs, "is_installed", lambda name: name in installed)
    assert runs.model_choices("smollm2-135m-instruct") == ["smollm2-135m-instruct"]
    assert runs.model_choices("org/some-hub-model") == ["smollm2-135m-instruct", "org/some-hub-model"]
    installed.add("gemma3-270m")  # `make second-student`
    assert runs.model_choices(None) == sorted(installed) == sorted(registry.registry_names())


def test_the_form_says_whether_its_config_is_an_existing_run_or_a_new_one(store, jobs, tmp_path):
    text = config_yaml(tmp_path)
    run_id = runs.parse_config(text).resolved_run_name
    identity, _, whole_loop = runs.launch_plan(jobs, text, "score")
    assert "NEW" in identity and run_id in identity and not whole_loop
    config = runs.parse_config(text)
    store.ensure_run(run_id, config.task, "builtin", config.teacher, config.student, config.fingerprint(),
                     config.to_yaml())
    assert "nothing stored yet" in runs.launch_plan(jobs, text, "score")[0]  # registered, still empty
    populate_drafts(store, run_id, config.student)
    identity = runs.launch_plan(jobs, text, "score")[0]
    assert f"run `{run_id}` (exists; stages done: elicit, score:" in identity and "NEW" not in identity
    edited = runs.apply_fields(text, None, None, None, None, config.elicit.n_questions + 1, None, None, None)
    other = runs.launch_plan(jobs, edited, "score")[0]  # one more draft question: another run
    assert "NEW" in other and runs.parse_config(edited).resolved_run_name in other and run_id not in other


def test_a_run_is_listed_only_once_a_stage_stored_something(store, tmp_path):
    from arte_core.studio import common

    config = runs.parse_config(config_yaml(tmp_path))
    run_id = config.resolved_run_name
    store.ensure_run(run_id, config.task, "builtin", config.teacher, config.student, config.fingerprint(),
                     config.to_yaml())
    assert common.run_choices(store) == [] and common.default_run(store) is None  # a launch registered it only
    populate_drafts(store, run_id, config.student)
    assert [value for _, value in common.run_choices(store)] == [run_id] and common.default_run(store) == run_id
    assert "1 run(s) in the store" in common.store_summary(store)


def test_run_labels_are_short_enough_for_a_phone():
    from arte_core.studio.common import run_label

    assert run_label("boolean_expressions-fccdeae4", "boolean_expressions", "smollm2", "smollm2") == \
        "boolean_expressions-fccdeae4 (smollm2 as both)"
    assert run_label("my-run", "navigate", "big", "small") == "navigate · my-run (big → small)"


def test_the_estimate_uses_measured_rates_and_falls_back_to_the_demos(jobs, tmp_path):
    from arte_core.studio import run_plan

    config = runs.parse_config(config_yaml(tmp_path))
    fallback = run_plan.estimate(jobs, config, "score")
    work = config.elicit.n_questions * 4 * config.score.n_pref
    demo = runs.parse_config("")  # the demo: 8 questions × 4 techniques × 12 items in 90 s
    assert fallback[0].n_measured == 0
    assert fallback[0].seconds == pytest.approx(90 / (demo.elicit.n_questions * 4 * demo.score.n_pref) * work)
    assert "the demo's rate" in run_plan.estimate_markdown(fallback)
    # two finished jobs scored 4 questions × 4 techniques × 4 items (64 answers) in 32 s and 64 s: 0.5 and 1 s each
    for i, seconds in enumerate((32.0, 64.0)):
        measured = RunConfig(runs_dir=str(tmp_path / "runs"))
        measured.elicit.n_questions, measured.score.n_pref = 4, 4
        row = fake_finished_job(jobs, f"20260101-00000{i}-abcdef")
        with jobs.store.transaction():
            jobs.store.execute("UPDATE jobs SET config_yaml = ? WHERE job_id = ?", [measured.to_yaml(), row["job_id"]])
        (jobs.runs_dir / "jobs" / row["job_id"] / "events.jsonl").write_text(
            json.dumps({"stage_finished": "score", "seconds": seconds}) + "\n")
    estimate = run_plan.estimate(jobs, config, "score")[0]
    assert estimate.n_measured == 2 and estimate.seconds == pytest.approx(0.75 * work)
    assert (estimate.low_s, estimate.high_s) == (pytest.approx(0.5 * work), pytest.approx(1.0 * work))
    assert "n = 2 measured runs" in run_plan.estimate_markdown([estimate])
    whole = run_plan.estimate(jobs, config, "all")
    assert [e.stage for e in whole] == list(run_plan.RUN_ORDER)
    assert runs.launch_plan(jobs, config.to_yaml(), "all")[2] is True  # 'all' shows its confirmation


def test_a_stage_never_timed_is_not_given_a_made_up_time(jobs, tmp_path, monkeypatch):
    from arte_core.studio import run_plan

    monkeypatch.delitem(run_plan.DEMO_SECONDS, "pairs")  # as for a stage newer than the demo's timing
    config = runs.parse_config(config_yaml(tmp_path))
    text = run_plan.estimate_markdown(run_plan.estimate(jobs, config, "pairs"))
    assert "**Expected time: not known yet**" in text and "no run of this stage was timed" in text
    whole = run_plan.estimate_markdown(run_plan.estimate(jobs, config, "all"))
    assert "plus pairs (never timed here)" in whole and "**Expected time: about " in whole


def test_errors_and_logs_are_worded_for_the_page(jobs, tmp_path):
    message = "arte: error: run 'r' has no draft scores for student s; run `arte score` first."
    worded = runs.page_message(message)
    assert "arte score" not in worded and "launch the score stage first (Stages: score, then Launch)" in worded
    assert not worded.startswith("arte:")
    assert runs.page_message("Score them anew with `arte rescore`.") == \
        "Score them anew with the rescore stage (Stages: rescore, then Launch)."
    row = fake_finished_job(jobs)
    with jobs.store.transaction():
        jobs.store.execute("UPDATE jobs SET message = ? WHERE job_id = ?", [message, row["job_id"]])
    assert "Stages: score" in runs.history_table(jobs)["message"].iloc[0]
    job_dir = jobs.runs_dir / "jobs" / row["job_id"]
    (job_dir / "log.txt").write_text(f"[12:00:00] arte run --config {job_dir}/config.yaml --db {job_dir}/job.duckdb\n"
                                     f"scratch in {tempfile.gettempdir()}/tmpab12cd/part.json\n")
    _, log, _ = runs.progress_view(jobs, row["job_id"])
    assert str(jobs.runs_dir) not in log and tempfile.gettempdir() + "/" not in log
    assert "--config …/config.yaml --db …/job.duckdb" in log and "…/part.json" in log
    loss = runs.loss_figure({"loss": []})  # a job that trained nothing yet: a message, not empty axes
    assert not loss.data and "No training loss yet" in loss.layout.annotations[0].text


def test_on_a_space_launching_is_off_unless_the_owner_allows_it(jobs, tmp_path, monkeypatch):
    from arte_core.studio.launch_rules import ALLOW_RUNS_ENV

    monkeypatch.setenv("SPACE_ID", "someone/arte-studio")
    monkeypatch.delenv(ALLOW_RUNS_ENV, raising=False)
    with pytest.raises(ArteError, match=f"off on this public Space.*{ALLOW_RUNS_ENV}=1"):
        runs.launch_job(jobs, False, config_yaml(tmp_path), "score")
    fake_finished_job(jobs)
    with pytest.raises(ArteError, match="off on this public Space"):
        runs.relaunch_job(jobs, False, None)
    assert len(jobs.jobs()) == 1
    assert "off on this public Space" in runs.launch_off_reason(False)
    monkeypatch.setenv(ALLOW_RUNS_ENV, "1")
    assert runs.launch_off_reason(False) is None
