"""The second shipped dataset, `assets/demo_students/` (issue 17): the two-student transfer study of
`make study-students`, with two real students (SmolLM2-135M-Instruct and Gemma 3 270M) in each run. The app
imports it beside the demo; the studio shows both students' draft scores side by side, their scatter and the
measured transfer table; docs/results.md quotes the same numbers."""

from __future__ import annotations

import re

import pytest
import yaml
from paths import REPO
from test_app_client import load_entry_point

from arte_core.config import load_config
from arte_core.store import Store
from arte_core.store.study import evaluated_students
from arte_core.store.transfer import read_manifest
from arte_core.studio.drafts import draft_filter, drafts_view
from arte_core.studio.signals import students_view
from arte_core.studio.study import FROM_STORE, study_view

SHIPPED = REPO / "assets" / "demo_students"
STUDENTS = ["smollm2-135m-instruct", "gemma3-270m"]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """A fresh store filled as `make demo` fills it: the demo loop, then the two-student runs."""
    folder = tmp_path_factory.mktemp("demo-students")
    store = Store(folder / "arte.duckdb")
    notice = load_entry_point().fill_empty_store(store)
    assert "assets/demo_students" in notice
    yield store
    store.close()


def shipped_runs() -> list[str]:
    return list(read_manifest(SHIPPED)["run_ids"])


def test_the_app_imports_the_two_student_runs_beside_the_demo(demo_store):
    runs = {r["run_id"]: r for r in demo_store.list_runs()}
    assert set(shipped_runs()) < set(runs) and len(shipped_runs()) >= 2  # one run per seed, plus the demo run
    students = evaluated_students(demo_store)
    for run_id in shipped_runs():
        assert runs[run_id]["student"] == STUDENTS[0]
        assert sorted(students[run_id]) == sorted(STUDENTS)


def test_the_drafts_and_signals_tabs_show_both_real_students(demo_store):
    run_id = shipped_runs()[0]
    view = drafts_view(demo_store, run_id, STUDENTS[0], draft_filter())
    other = f"acc:{STUDENTS[1]}"
    assert other in view["table"].columns and view["table"][other].notna().all()  # the page's drafts, both scores
    shown = students_view(demo_store, run_id, STUDENTS[0], STUDENTS[1])
    assert shown["summary"].startswith(f"{view['total']} drafts scored by both students")  # every draft, both


def test_the_study_tab_shows_the_measured_transfer_table(demo_store):
    shown = study_view(demo_store, REPO / "runs-that-do-not-exist", FROM_STORE)
    table = shown["transfer"]
    cells = list(table["teacher aligned to"] + "→" + table["student"])
    a, b = STUDENTS
    assert sorted(cells) == sorted([f"{a}→{a}", f"{b}→{a}", f"{a}→{b}", f"{b}→{b}"])
    assert set(table["n items"].astype(int)) == {150 * len(shipped_runs())}  # every cell pairs all test items
    for text in table["vs original [95% CI]"]:
        difference, low, high = map(float, re.findall(r"[-+]?\d+\.\d+", text))
        assert low <= difference <= high
    assert "Spearman" in shown["transfer_note"]


def test_results_md_quotes_the_shipped_transfer_table(demo_store):
    """docs/results.md's transfer table is this data's: every cell's difference and interval appear in it."""
    results = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    section = results[results.index("## Transfer between students"):]
    table = study_view(demo_store, REPO / "runs-that-do-not-exist", FROM_STORE)["transfer"]
    for row in table.to_dict(orient="records"):
        assert row["vs original [95% CI]"] in section, row


def test_the_shipped_runs_are_make_study_students_on_the_study_config(demo_store):
    """The shipped rows come from the Makefile's `study-students` command: its students, task and seeds, and
    the shipped study config (plus the transfer arm that `--students` adds)."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    command = re.search(r"^study-students:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1).replace("\\\n", " ")
    assert re.search(r"--students ([\w.-]+) ([\w.-]+)", command).groups() == tuple(STUDENTS)
    assert "--config assets/configs/study.yaml" in command
    seeds = sorted(int(s) for s in re.search(r"--seeds ([\d ]+)", command).group(1).split())
    study = load_config(REPO / "assets" / "configs" / "study.yaml").to_dict()
    study.pop("seed"), study["distill"].pop("transfer_from")
    study["task"] = re.search(r"--tasks (\w+)\s", command).group(1)
    runs = {r["run_id"]: r for r in demo_store.list_runs()}
    shipped = [yaml.safe_load(runs[run_id]["config_yaml"]) for run_id in shipped_runs()]
    assert sorted(c.pop("seed") for c in shipped) == seeds
    for config in shipped:
        assert config["distill"].pop("transfer_from") == [STUDENTS[1]]
        assert config == study


def test_the_banner_points_a_newcomer_to_the_second_student(demo_store):
    from arte_core.studio.guide import store_banner

    banner = store_banner(demo_store, on_space=False)
    assert f"second real student, **{STUDENTS[1]}**" in banner and "transfer table" in banner
    assert "optional install" not in banner  # the shipped rows need no install to be inspected
