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
from studio_fixtures import (COPYING_DRAFT, OTHER_STUDENT, RUN, STUDENT, build_fixture_file, copy_fixture_store,
                             rationale_id, rescore_fixture)

from arte_core.store import Store
from paths import OLD_DEMO

REPO = Path(__file__).resolve().parents[1]
DRAFT_DEFAULTS = dict(technique="all", min_score="", max_score="", min_words="", max_words="", agrees="any",
                      solver="any", search="", sort="score", direction="desc", origin="draft", min_balanced="",
                      max_balanced="", copies_label="any")
PAIR_DEFAULTS = dict(kind="all", state="all", contested=False, max_margin=0.1, search="", sort="margin",
                     direction="asc", blind=False, evidence="all", noise_level=0.05)


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


def decide(client: Client, pair_id: str, action: str, why: str, who: str):
    """A decision on `pair_id`; its conflict check is the client's hidden state: the latest decision id of
    the pair this client opened last (0 before it opened any)."""
    return client.predict(pair_id, action, why, who, False, False, RUN, api_name="/pairs_decide")


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
                "/analysis_plots", "/signals_compare", "/signals_students", "/export_pairs", "/export_sft", "/export_drafts",
                "/export_push", "/runs_history", "/studio_load", "/health_view", "/drafts_health", "/pairs_health", "/items_view"}
    assert expected <= endpoints


def test_the_items_view_lists_each_preference_item_with_its_share_correct_and_n(served):
    _, client = served
    summary, table = client.predict(RUN, STUDENT, api_name="/items_view")
    assert "no IRT fit" in summary and table["data"]
    shares, ns = column(table, "share correct"), column(table, "n")
    assert all(0 <= float(share) <= 1 for share in shares) and all(int(n) > 0 for n in ns)


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
    assert column(items, "correct").count("yes") == 9
    assert set(column(items, "parse mode")) == {"—"}  # the fixture's answers were read before parse modes


def test_rescored_drafts_show_balanced_accuracy_the_copy_flag_and_parse_modes(served_fresh):
    store, client = served_fresh
    rescore_fixture(store)
    table, info, _ = drafts_query(client, copies_label="yes")
    assert column(table, "rationale_id") == [rationale_id(*COPYING_DRAFT)]
    assert (column(table, "label-copy rate"), column(table, "balanced accuracy")) == ([1.0], [0.5])
    assert "copies demo label: label-copy rate ≥ 0.9 with balanced accuracy within 0.50 ± 0.16" in info
    _, _, _, _, items = client.predict(rationale_id(0, 0), STUDENT, api_name="/drafts_detail")
    assert column(items, "parse mode")[-2:] == ["strict", "none"] and column(items, "cut off")[-2:] == ["no", "yes"]


def test_an_old_demo_export_shows_old_scores_as_a_dash_with_how_to_rescore(tmp_path):
    """A demo dataset an older version exported (imported into an empty store as app.py does) is all scored
    by an older version: the new columns read "—" with the note, never 0, and every figure still draws."""
    app = load_entry_point()
    with Store(tmp_path / "demo.duckdb") as store:
        assert "imported the demo dataset" in app.fill_empty_store(store, OLD_DEMO)
        run, student = store.scalar("SELECT run_id FROM runs"), store.scalar("SELECT DISTINCT student FROM icl_scores")
        demo, client = launch(store, read_only=True, runs_dir=tmp_path / "runs")
        try:
            values = {**DRAFT_DEFAULTS, "sort": "balanced accuracy"}
            table, info, _ = client.predict(run, student, *values.values(), 1, api_name="/drafts_query")
            assert "— : scored by an older version; `arte rescore` scores it anew (32 of this student's drafts)" in info
            for name in ("balanced accuracy", "label-copy rate", "copies demo label", "cut off", "lenient"):
                assert set(column(table, name)) == {"—"}, name
            assert set(column(table, "answer ok")) <= {"yes", "no"}
            first = column(table, "rationale_id")[0]
            _, _, _, _, items = client.predict(first, student, api_name="/drafts_detail")
            assert set(column(items, "parse mode")) == {"—"} and set(column(items, "cut off")) == {"—"}
            *_, label_copy, evaluation_table = client.predict(run, student, api_name="/analysis_plots")
            assert "32 drafts were scored by an older version" in json.dumps(json.loads(label_copy["plot"]))
            assert set(column(evaluation_table, "cut off")) == {"—"}
            assert all("–" in ci for ci in column(evaluation_table, "95% CI"))
        finally:
            demo.close()


def test_pairs_show_and_filter_their_paired_test(served_fresh):
    store, client = served_fresh
    table, info, _, _ = pairs_query(client)  # built before pairs were tested, like the shipped demo: no p, no crash
    assert set(column(table, "p")) == {"—"} and set(column(table, "evidence")) == {"not tested"}
    assert "0 significant, 0 within noise, 9 not tested" in info
    store.execute("UPDATE pairs SET p_value = 0.0703125, n_shared = 10, n_chosen_only = 7, n_rejected_only = 1, "
                  "pair_test = 'mcnemar_exact' WHERE pair_id = 'pr-4'")
    table, info, _, _ = pairs_query(client, evidence="within noise")
    assert column(table, "pair_id") == ["pr-4"] and column(table, "discordant (chosen vs rejected)") == ["7 vs 1 of 10"]
    table, _, _, _ = pairs_query(client, evidence="significant", noise_level=0.1)
    assert column(table, "pair_id") == ["pr-4"] and column(table, "p") == ["0.0703"]
    table, info, _, _ = pairs_query(client, contested=True, max_margin=None)  # empty: the run's noise level
    assert column(table, "pair_id") == ["pr-2"] and "margin ≤ 0.158" in info
    header, *_ = client.predict("pr-4", False, False, RUN, api_name="/pairs_open")
    assert "**p = 0.0703** · within noise at p ≤ 0.05" in header


def test_pairs_query_decide_conflict_undo_and_trail(served_fresh):
    store, client = served_fresh
    table, info, agreement, page = pairs_query(client, contested=True)
    assert column(table, "pair_id") == ["pr-2"] and info.startswith("Pairs 1–1 of 1")
    before = {p["pair_id"]: p for p in store.training_pairs(RUN, STUDENT)}["pr-4"]
    alice = Client(client.src, verbose=False)  # a second visitor, with her own hidden conflict check
    alice.predict("pr-4", False, False, RUN, api_name="/pairs_open")  # alice opens the pair: no decision yet
    status, *_ = decide(client, "pr-4", "swap", "the shorter one is better", "bob")
    assert "Recorded decision" in status and "bob" in status
    after = {p["pair_id"]: p for p in store.training_pairs(RUN, STUDENT)}["pr-4"]
    assert (after["chosen"], after["rejected"]) == (before["rejected"], before["chosen"])
    status, header, *_rest = decide(alice, "pr-4", "accept", "no, keep it", "alice")  # alice saw no decision
    assert "⚠️" in status and "bob recorded 'swap'" in status
    trail = client.predict("pr-4", False, RUN, False, api_name="/pairs_trail")
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
    store, client = served_fresh  # (the latest id seen is hidden state now: handler tests refuse bad ones)
    decide(client, "pr-0", "accept", "", "bob")
    client.predict("pr-1", False, False, RUN, api_name="/pairs_open")  # the conflict check follows the open pair
    decide(client, "pr-1", "accept", "", "bob")
    for bad_id in (1.5, -1):  # refused in place: the status line says why
        status, *_ = client.predict(bad_id, "", "bob", "pr-1", False, False, RUN, api_name="/pairs_undo")
        assert "decision id to undo" in status
    assert [r["action"] for r in store.rows("SELECT action FROM pair_decisions")] == ["accept", "accept"]


def test_analysis_plots(served):
    _, client = served
    summary, length, technique, questions, teacher_answer, origin, evaluation, label_copy, table = client.predict(
        RUN, STUDENT, api_name="/analysis_plots")
    assert "24 scored drafts" in summary
    figure = json.loads(length["plot"])
    markers = [t for t in figure["data"] if "markers" in t.get("mode", "")]
    assert sum(array_length(t["x"]) for t in markers) == 24
    assert column(table, "variant") == ["untrained", "original", "arte"] * 2
    assert column(table, "95% CI")[0] == "0.191–0.438" and column(table, "unparsed rate")[0] == 0.04
    bars = json.loads(evaluation["plot"])["data"][0]
    assert bars["text"][0] == "0.300<br>n=50<br>unparsed 4%<br>cut off —"


def test_signals_tab_compares_icl_accuracy_with_influence(served):
    store, client = served
    from arte_core.store.signals import signal_comparison, signal_reliability

    summary, figure, disagreements = client.predict(RUN, STUDENT, api_name="/signals_compare")
    expected = signal_comparison(store, RUN, STUDENT)
    assert summary.startswith("24 drafts with both signals") and f"{expected['spearman']:.2f}" in summary
    # the correlation's CI, what unrelated signals would give, and each signal's reliability
    assert f"95% CI {expected['ci_low']:.2f}…{expected['ci_high']:.2f}" in summary
    assert f"between {expected['null']['low']:.2f} and {expected['null']['high']:.2f}" in summary
    icl = signal_reliability(store, RUN, STUDENT, "icl")
    assert f"split-half reliability {icl['reliability']:.2f} (95% CI {icl['ci_low']:.2f}…{icl['ci_high']:.2f})" in summary
    assert "influence: no per-item results stored" in summary  # the fixture's influence predates influence_items
    markers = [t for t in json.loads(figure["plot"])["data"] if "markers" in t.get("mode", "")]
    assert sum(array_length(t["x"]) for t in markers) == 24
    # disagreements farthest apart first, as the store ranks them
    assert column(disagreements, "rationale_id") == [r["rationale_id"] for r in expected["disagreements"]]
    distances = column(disagreements, "rank_distance")
    assert distances == sorted(distances, reverse=True) and len(distances) > 1
    summary, figure, _ = client.predict(RUN, OTHER_STUDENT, api_name="/signals_compare")
    assert "No drafts with both signals" in summary

    # student vs student: student-b's fixture scores are 1 − student-a's, so they rank the drafts oppositely
    summary, figure = client.predict(RUN, STUDENT, OTHER_STUDENT, api_name="/signals_students")
    assert summary.startswith("24 drafts scored by both students") and "ρ = -1.00" in summary
    markers = [t for t in json.loads(figure["plot"])["data"] if "markers" in t.get("mode", "")]
    assert sum(array_length(t["x"]) for t in markers) == 24
    summary, _ = client.predict(RUN, STUDENT, STUDENT, api_name="/signals_students")
    assert "Pick a second student" in summary

    table, _, _ = drafts_query(client)  # the drafts table shows influence beside the accuracies
    influence = dict(zip(column(table, "rationale_id"), column(table, "influence")))
    stored = {r["rationale_id"]: r["influence"] for r in expected["rows"]}
    assert influence == pytest.approx(stored)


def test_health_view_and_the_pointers_above_the_drafts_and_pairs_tables(served):
    _, client = served
    summary, table = client.predict(RUN, STUDENT, api_name="/health_view")
    assert summary.startswith("Signal health of **student-s**'s preferences in run `bool-fixture`: "
                              "1 bad · 4 warn · 4 ok · 2 n/a.")
    assert column(table, "check")[:3] == ["label balance of the preference set", "student above chance", "label copying"]
    assert column(table, "status")[:3] == ["✅ ok", "❌ bad", "⚠️ warn"]
    # 5 True / 5 False preference items; every draft right on the first items, whatever their label: J ≈ 0.
    assert column(table, "value")[:2] == ["0.5", "0.0083"] and column(table, "n")[:2] == [10, 240]
    assert column(table, "95% CI")[1] == "-0.49 … 0.53"
    assert client.predict(RUN, STUDENT, api_name="/drafts_health") == (
        "**Signal health:** 1 bad (student above chance); 2 to watch (label copying, truncated answers) — see the "
        "**Health** tab.")
    assert client.predict(RUN, STUDENT, api_name="/pairs_health") == (
        "**Signal health:** 2 to watch (label copying, significant pairs) — see the **Health** tab.")


def test_export_pairs_gives_files(served):
    _, client = served
    files, message = client.predict(RUN, STUDENT, ["jsonl", "parquet"], api_name="/export_pairs")
    names = sorted(str(f).rsplit("/", 1)[-1] for f in files)
    assert names == ["health.json", "pairs_bool-fixture_student-s.jsonl", "pairs_bool-fixture_student-s.parquet"]
    health = json.loads(Path(next(str(f) for f in files if str(f).endswith("health.json"))).read_text(encoding="utf-8"))
    assert (health["student"], health["lines"][1]["key"], health["lines"][1]["status"]) == (STUDENT, "above_chance", "bad")
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
    _, question = client.predict(RUN, STUDENT, *filters.values(), "exclude", api_name="/pairs_bulk_preview")
    assert "**4 pair(s)**" in question and not store.scalar("SELECT count(*) FROM pair_decisions")
    status, *_ = client.predict("question pairs are off-task", "carol", "", False, False, RUN,
                                api_name="/pairs_decide_bulk")
    assert "Recorded **exclude** on 4 pair(s) by carol" in status
    assert not [p for p in store.training_pairs(RUN, STUDENT) if p["kind"] == "question"]


def test_read_only_app_refuses_decisions(served_read_only):
    store, client = served_read_only
    with pytest.raises(Exception, match="read-only"):
        decide(client, "pr-0", "swap", "nope", "mallory")
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
        status, *_ = decide(client, "pr-1", "exclude", "off-task", "mallory")
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
