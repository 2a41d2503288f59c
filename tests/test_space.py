"""The studio as a public Hugging Face Space (`SPACE_ID` set): each visitor decides in a private copy of the
store, nothing public changes, and launching runs is off unless the owner turns it on.

Handler tests drive arte_core.studio.sandbox with sessions named by the test; the served tests build the
whole app and talk to it as two visitors with two gradio_client sessions."""

import os

import pytest
from helpers import free_port
from studio_fixtures import RUN, build_fixture_file, copy_fixture_store

from arte_core.errors import ArteError
from arte_core.store import Store
from arte_core.studio import pairs
from arte_core.studio.sandbox import SessionRoutedStore, SessionStores

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
PAIR = "pq-0-3"


@pytest.fixture
def shared(tmp_path):
    store = Store(copy_fixture_store(build_fixture_file(tmp_path), tmp_path / "shared.duckdb"))
    yield store
    store.close()


class Visitor:
    """Which session the routed store serves: the test switches it as Gradio would per request."""

    def __init__(self):
        self.session = None

    def __call__(self):
        return self.session


def shared_decisions(path) -> int:
    with Store(path, read_only=True) as store:
        return int(store.scalar("SELECT count(*) FROM pair_decisions"))


def test_a_visitors_decision_lands_in_their_sandbox_only(shared, tmp_path):
    stores = SessionStores(shared, tmp_path / "sandboxes")
    visitor = Visitor()
    routed = SessionRoutedStore(stores, visitor)
    visitor.session = "alice123"
    assert pairs.trail_view(routed, None, RUN, whole_run=True).empty and not stores.sessions()  # reads copy nothing
    result = pairs.decide(routed, PAIR, "exclude", "alice", "wrong target", expected_last=0)
    assert "exclude" in result["message"].lower() and stores.sessions() == ["alice123"]
    assert pairs.trail_view(routed, None, RUN, whole_run=True)["who"].tolist() == ["alice"]

    visitor.session = "bob456"  # a second visitor sees the shared data, without alice's decision
    assert pairs.trail_view(routed, None, RUN, whole_run=True).empty
    assert int(shared.scalar("SELECT count(*) FROM pair_decisions")) == 0
    pairs.decide(routed, PAIR, "accept", "bob", "", expected_last=0)  # bob's own copy, from the shared data
    assert pairs.trail_view(routed, None, RUN, whole_run=True)["who"].tolist() == ["bob"]
    visitor.session = "alice123"
    assert pairs.trail_view(routed, None, RUN, whole_run=True)["who"].tolist() == ["alice"]

    sandbox_folder = tmp_path / "sandboxes" / "alice123"
    assert sandbox_folder.is_dir()
    stores.discard("alice123")  # alice left: her copy goes
    assert not sandbox_folder.exists() and stores.sessions() == ["bob456"]
    stores.close()
    shared.close()
    assert shared_decisions(tmp_path / "shared.duckdb") == 0  # the shared file never took a decision


def test_the_engines_caches_never_mistake_one_visitors_store_for_anothers(shared, tmp_path):
    """Caches key on (store, write_count): the routed store's counts differ per store it routes to."""
    stores = SessionStores(shared, tmp_path / "sandboxes")
    visitor = Visitor()
    routed = SessionRoutedStore(stores, visitor)
    visitor.session = "alice123"
    shared_count = routed.write_count
    pairs.decide(routed, PAIR, "exclude", "alice", "", expected_last=0)
    assert routed.write_count != shared_count
    visitor.session = "bob456"
    assert routed.write_count == shared_count
    stores.close()


def test_a_request_without_a_usable_session_writes_nothing(shared, tmp_path):
    stores = SessionStores(shared, tmp_path / "sandboxes")
    visitor = Visitor()
    routed = SessionRoutedStore(stores, visitor)
    with pytest.raises(ArteError, match="no visitor's session"):
        pairs.decide(routed, PAIR, "exclude", "x", "", expected_last=0)
    visitor.session = "../../etc"
    with pytest.raises(ArteError, match="session id"):
        pairs.decide(routed, PAIR, "exclude", "x", "", expected_last=0)
    assert stores.sessions() == [] and int(shared.scalar("SELECT count(*) FROM pair_decisions")) == 0
    stores.close()


def test_the_oldest_sandbox_goes_beyond_the_limit(shared, tmp_path):
    stores = SessionStores(shared, tmp_path / "sandboxes", max_sandboxes=2)
    for session in ("s1", "s2", "s3"):
        stores.writing(session)
    assert stores.sessions() == ["s2", "s3"] and not (tmp_path / "sandboxes" / "s1").exists()
    stores.close()


@pytest.fixture
def space_app(shared, tmp_path, monkeypatch):
    from arte_core.jobs import JobManager
    from ui.app import build_app

    monkeypatch.setenv("SPACE_ID", "someone/arte-studio")
    monkeypatch.delenv("ARTE_ALLOW_RUNS", raising=False)
    monkeypatch.delenv("OAUTH_CLIENT_ID", raising=False)
    demo = build_app(shared, JobManager(shared, tmp_path / "runs"), runs_dir=tmp_path / "runs")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        yield demo
    finally:
        demo.close()


def test_served_on_a_space_two_visitors_never_see_each_others_decisions(space_app, shared):
    from gradio_client import Client

    alice = Client(space_app.local_url, verbose=False, analytics_enabled=False)
    bob = Client(space_app.local_url, verbose=False, analytics_enabled=False)
    status = alice.predict(pair_id=PAIR, action="exclude", why="the target is wrong", typed_user="alice",
                           run_id=RUN, api_name="/pairs_decide")[0]
    assert "exclude" in status.lower()

    def trail(client):
        return client.predict(pair_id=PAIR, whole_run=True, run_id=RUN, api_name="/pairs_trail")["data"]

    assert [row[4] for row in trail(alice)] == ["alice"]
    assert trail(bob) == []  # bob reads the shared data: alice's decision is hers alone
    assert int(shared.scalar("SELECT count(*) FROM pair_decisions")) == 0


def test_served_on_a_space_launching_is_refused_and_says_why(space_app, tmp_path):
    from gradio_client import Client

    client = Client(space_app.local_url, verbose=False, analytics_enabled=False)
    status, _ = client.predict("", "score", api_name="/runs_launch")
    assert "off on this public Space" in status and "ARTE_ALLOW_RUNS=1" in status
    assert not (tmp_path / "runs" / "jobs").exists()


def test_the_space_page_warns_about_compute_and_persistence(space_app):
    import httpx

    page = httpx.get(space_app.local_url, timeout=30).text
    assert "Public Space" in page and "private copy" in page and "launching runs is off" in page
    assert "Launching runs is off on this public Space" in page  # the Runs tab says why, above its form


def test_the_reviewer_is_named_by_the_hugging_face_login_on_a_space_only(shared, monkeypatch):
    from ui.space import oauth_enabled, signed_in_name, tab_store

    profile = {"preferred_username": "hf-alice", "name": "Alice"}
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert tab_store(shared) is shared and not oauth_enabled()  # off a Space: the store itself, the typed name
    assert signed_in_name(None, profile) is None
    monkeypatch.setenv("SPACE_ID", "someone/arte-studio")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "client-id")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())  # as if gradio[oauth] were installed
    assert isinstance(tab_store(shared), SessionRoutedStore) and oauth_enabled()
    assert signed_in_name(None, profile) == "hf-alice"
    assert signed_in_name(None, None) is None  # not signed in: the typed name stays
