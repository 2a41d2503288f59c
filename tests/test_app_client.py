"""The real studio app, served in-process on a copy of the fixture store, driven through gradio_client."""

import base64
import contextlib
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

import pytest
from gradio_client import Client
from helpers import free_port
from studio_fixtures import OTHER_STUDENT, RUN, STUDENT, build_fixture_file, copy_fixture_store, rationale_id

from arte_core.store import Store

REPO = Path(__file__).resolve().parents[1]
DRAFT_DEFAULTS = dict(technique="all", min_score="", max_score="", min_words="", max_words="", agrees="any",
                      solver="any", search="", sort="score", direction="desc", origin="draft")
PAIR_DEFAULTS = dict(kind="all", state="all", contested=False, max_margin=0.1, search="", sort="margin",
                     direction="asc", blind=False)


def launch(store: Store, read_only: bool, runs_dir) -> tuple:
    from arte_core.jobs import JobManager
    from ui.app import build_app

    demo = build_app(store, JobManager(store, runs_dir), read_only=read_only, runs_dir=str(runs_dir))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    return build_fixture_file(tmp_path_factory.mktemp("studio-app"))


@contextlib.contextmanager
def serve(fixture_file, folder: Path, read_only: bool = False):
    """(store, client) of the app served on a fresh copy of the fixture store in `folder`."""
    store = Store(copy_fixture_store(fixture_file, folder / "store.duckdb"))
    demo, client = launch(store, read_only=read_only, runs_dir=folder / "runs")
    try:
        yield store, client
    finally:
        demo.close()
        store.close()


# Tests pass in any order: the tests that only read share one app (`served`), and each test that records
# decisions gets an app on its own copy of the store (`served_fresh`, about 2 s to launch), so no test
# sees another's decisions. The shared app's teardown checks that no test wrote to it.
@pytest.fixture(scope="module")
def served(fixture_file, tmp_path_factory):
    with serve(fixture_file, tmp_path_factory.mktemp("served")) as (store, client):
        yield store, client
        assert store.scalar("SELECT count(*) FROM pair_decisions") == 0, "a test wrote to the shared app"


@pytest.fixture
def served_fresh(fixture_file, tmp_path):
    with serve(fixture_file, tmp_path) as served_app:
        yield served_app


@pytest.fixture(scope="module")
def served_read_only(fixture_file, tmp_path_factory):
    with serve(fixture_file, tmp_path_factory.mktemp("served-ro"), read_only=True) as served_app:
        yield served_app


def drafts_query(client: Client, page: int = 1, **overrides):
    values = {**DRAFT_DEFAULTS, **overrides}
    return client.predict(RUN, STUDENT, *values.values(), page, api_name="/drafts_query")


def pairs_query(client: Client, page: int = 1, **overrides):
    values = {**PAIR_DEFAULTS, **overrides}
    return client.predict(RUN, STUDENT, *values.values(), page, api_name="/pairs_query")


def decide(client: Client, pair_id: str, action: str, why: str, who: str, expected_last: int):
    return client.predict(pair_id, action, why, who, expected_last, False, False, RUN, api_name="/pairs_decide")


def array_length(value) -> int:
    """Length of a plotly JSON array: a list, or a typed array {"dtype": …, "bdata": base64}."""
    if isinstance(value, dict) and "bdata" in value:
        return len(np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])))
    return len(value)


def column(table: dict, name: str) -> list:
    index = table["headers"].index(name)
    return [row[index] for row in table["data"]]


def test_every_tab_has_its_endpoints(served):
    _, client = served
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/drafts_query", "/drafts_apply", "/drafts_detail", "/drafts_select", "/pairs_query", "/pairs_apply",
                "/pairs_open", "/pairs_decide", "/pairs_decide_bulk", "/pairs_undo", "/pairs_trail",
                "/analysis_plots", "/signals_compare", "/export_pairs", "/export_sft", "/export_drafts",
                "/export_push", "/runs_history", "/studio_load"}
    assert expected <= endpoints


def test_drafts_query_filters_and_pages(served):
    _, client = served
    table, info, page = drafts_query(client, technique="common_sense", min_score="0.5")
    assert column(table, "rationale_id") == [rationale_id(0, 1), rationale_id(5, 1), rationale_id(1, 1),
                                              rationale_id(2, 1)]
    assert info.startswith("Drafts 1–4 of 4") and page == 1
    table, info, page = drafts_query(client, page=7)
    assert page == 1 and len(table["data"]) == 24  # past the end: the last page


def test_quotes_and_sql_in_filters_are_literal(served):
    store, client = served
    table, _, _ = drafts_query(client, search="O'Brien")
    assert len(table["data"]) == 4
    table, info, _ = drafts_query(client, search="'; DROP TABLE pairs; --")
    assert table["data"] == [] and "No drafts match" in info
    assert store.scalar("SELECT count(*) FROM pairs") == 9


def test_drafts_detail(served):
    _, client = served
    meta, question, rationale, prompt, items = client.predict(rationale_id(0, 0), STUDENT, api_name="/drafts_detail")
    assert "**expert_procedure**" in meta and question.startswith("True and not False")
    assert rationale.startswith("Using expert_procedure on question 0")
    assert column(items, "correct").count("✓ right") == 9


def test_pairs_query_decide_conflict_undo_and_trail(served_fresh):
    store, client = served_fresh
    table, info, agreement, page = pairs_query(client, contested=True)
    assert column(table, "pair_id") == ["pr-2"] and info.startswith("Pairs 1–1 of 1")
    before = {p["pair_id"]: p for p in store.training_pairs(RUN, STUDENT)}["pr-4"]
    status, *_ = decide(client, "pr-4", "swap", "the shorter one is better", "bob", 0)
    assert "Recorded decision" in status and "bob" in status
    after = {p["pair_id"]: p for p in store.training_pairs(RUN, STUDENT)}["pr-4"]
    assert (after["chosen"], after["rejected"]) == (before["rejected"], before["chosen"])
    status, header, *_rest = decide(client, "pr-4", "accept", "no, keep it", "alice", 0)  # alice saw no decision
    assert "⚠️" in status and "bob recorded 'swap'" in status
    trail = client.predict("pr-4", False, RUN, api_name="/pairs_trail")
    assert column(trail, "who")[:2] == ["alice", "bob"]
    latest = column(trail, "decision_id")[0]
    status, *_ = client.predict(latest, "misclick", "alice", "pr-4", False, False, RUN, api_name="/pairs_undo")
    assert f"Decision {latest} undone" in status
    decided = store.rows("SELECT action FROM pair_decisions WHERE pair_id = 'pr-4' ORDER BY decision_id")
    assert [d["action"] for d in decided] == ["swap", "accept", "undo"]
    table, _, agreement, _ = pairs_query(client, state="swap")
    assert column(table, "pair_id") == ["pr-4"] and "1 swapped" in agreement


def test_decide_and_undo_refuse_impossible_ids_and_store_nothing(served_fresh):
    """Before: a decision with a latest-seen id of 7 on an undecided pair was stored, then the call failed
    (a retry stored it twice); undo of 1.5 was rounded by the number box and undid decision 2."""
    store, client = served_fresh
    for seen in (7, -1):
        with pytest.raises(Exception, match="latest decision id you saw"):
            decide(client, "pr-0", "accept", "", "bob", seen)
    assert store.scalar("SELECT count(*) FROM pair_decisions") == 0
    decide(client, "pr-0", "accept", "", "bob", 0)
    decide(client, "pr-1", "accept", "", "bob", 0)
    for bad_id in (1.5, -1):
        with pytest.raises(Exception, match="decision id to undo"):
            client.predict(bad_id, "", "bob", "pr-1", False, False, RUN, api_name="/pairs_undo")
    assert [r["action"] for r in store.rows("SELECT action FROM pair_decisions")] == ["accept", "accept"]


def test_analysis_plots(served):
    _, client = served
    summary, length, technique, questions, teacher_answer, origin, evaluation, table = client.predict(
        RUN, STUDENT, api_name="/analysis_plots")
    assert "24 scored drafts" in summary
    figure = json.loads(length["plot"])
    markers = [t for t in figure["data"] if "markers" in t.get("mode", "")]
    assert sum(array_length(t["x"]) for t in markers) == 24
    assert column(table, "variant") == ["untrained", "original", "arte"] * 2


def test_signals_tab_compares_icl_accuracy_with_influence(served):
    store, client = served
    from arte_core.store.signals import signal_comparison

    summary, figure, disagreements = client.predict(RUN, STUDENT, api_name="/signals_compare")
    expected = signal_comparison(store, RUN, STUDENT)
    assert summary.startswith("24 drafts with both signals") and f"{expected['spearman']:.2f}" in summary
    markers = [t for t in json.loads(figure["plot"])["data"] if "markers" in t.get("mode", "")]
    assert sum(array_length(t["x"]) for t in markers) == 24
    assert sorted(column(disagreements, "rationale_id")) == sorted(r["rationale_id"] for r in expected["disagreements"])
    summary, figure, _ = client.predict(RUN, OTHER_STUDENT, api_name="/signals_compare")
    assert "No drafts with both signals" in summary

    table, _, _ = drafts_query(client)  # the drafts table shows influence beside the accuracies
    influence = dict(zip(column(table, "rationale_id"), column(table, "influence")))
    stored = {r["rationale_id"]: r["influence"] for r in expected["rows"]}
    assert influence == pytest.approx(stored)


def test_export_pairs_gives_files(served):
    _, client = served
    files, message = client.predict(RUN, STUDENT, ["jsonl", "parquet"], api_name="/export_pairs")
    names = sorted(str(f).rsplit("/", 1)[-1] for f in files)
    assert names == ["pairs_bool-fixture_student-s.jsonl", "pairs_bool-fixture_student-s.parquet"]
    jsonl = next(str(f) for f in files if str(f).endswith(".jsonl"))
    with open(jsonl, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    assert {"prompt", "chosen", "rejected", "pair_id", "decision"} <= set(rows[0])
    assert "Exported" in message


def test_old_export_folders_are_removed_and_downloads_still_work(served, tmp_path, monkeypatch):
    """Before: every export left an arte-export-* folder in the temp directory for good."""
    from arte_core.studio import export

    _, client = served
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the handler runs in this process
    client.predict(RUN, STUDENT, ["jsonl"], api_name="/export_sft")
    (first,) = tmp_path.glob("arte-export-*")
    long_ago = time.time() - export.EXPORT_FOLDER_LIFETIME_S - 60
    os.utime(first, (long_ago, long_ago))
    files, message = client.predict(RUN, STUDENT, ["jsonl"], api_name="/export_sft")
    assert not first.exists() and len(list(tmp_path.glob("arte-export-*"))) == 1
    with open(files[0], encoding="utf-8") as fh:  # Gradio serves its own copy of the file
        assert len(fh.readlines()) == 6 and "6 SFT examples" in message


def test_runs_history(served):
    _, client = served
    history = client.predict(api_name="/runs_history")
    assert "headers" in history and isinstance(history["data"], list)


def test_bulk_decision_on_the_filtered_pairs(served_fresh):
    store, client = served_fresh
    filters = {**PAIR_DEFAULTS, "kind": "question"}
    status, *_ = client.predict(RUN, STUDENT, *filters.values(), "exclude", "question pairs are off-task", "carol",
                                "", False, api_name="/pairs_decide_bulk")
    assert "Recorded **exclude** on 4 pair(s) by carol" in status
    assert not [p for p in store.training_pairs(RUN, STUDENT) if p["kind"] == "question"]


def test_read_only_app_refuses_decisions(served_read_only):
    store, client = served_read_only
    with pytest.raises(Exception, match="read-only"):
        decide(client, "pr-0", "swap", "nope", "mallory", 0)
    assert store.scalar("SELECT count(*) FROM pair_decisions") == 0
    table, _, _ = drafts_query(client)  # browsing still works
    assert len(table["data"]) == 24


def test_signed_in_user_is_recorded_not_the_typed_name(fixture_file, tmp_path):
    from ui.app import build_app

    store = Store(copy_fixture_store(fixture_file, tmp_path / "auth.duckdb"))
    demo = build_app(store, None, runs_dir=str(tmp_path / "runs"))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                auth=[("alice", "wonderland")])
    try:
        client = Client(f"http://127.0.0.1:{port}/", auth=("alice", "wonderland"), verbose=False)
        status, *_ = decide(client, "pr-1", "exclude", "off-task", "mallory", 0)
        assert "by alice" in status
        assert store.rows("SELECT who FROM pair_decisions") == [{"who": "alice"}]
    finally:
        demo.close()
        store.close()


def load_entry_point():
    """The repository's app.py as a module (it is a script, not part of an installed package)."""
    spec = importlib.util.spec_from_file_location("arte_studio_app", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_entry_point_helpers(fixture_file, tmp_path, monkeypatch):
    from arte_core.store.transfer import export_parquet

    app = load_entry_point()
    assert app.parse_auth("alice:pw, bob:secret") == [("alice", "pw"), ("bob", "secret")]
    assert app.parse_auth("") is None
    with pytest.raises(SystemExit, match="not 'user:password'"):
        app.parse_auth("alice")
    monkeypatch.delenv("ARTE_DB", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app.default_db_path() == "arte.duckdb"
    monkeypatch.setenv("ARTE_DB", str(tmp_path / "x.duckdb"))
    assert app.default_db_path() == str(tmp_path / "x.duckdb")
    with Store(fixture_file, read_only=True) as source:
        export_parquet(source, tmp_path / "demo")
    with Store(tmp_path / "empty.duckdb") as empty:
        assert "no demo dataset" in app.fill_empty_store(empty, tmp_path / "missing")
        assert "imported the demo dataset" in app.fill_empty_store(empty, tmp_path / "demo")
        assert empty.scalar("SELECT count(*) FROM pairs") == 9
        assert app.fill_empty_store(empty, tmp_path / "demo") == ""  # not empty any more: nothing imported
