"""What the studio's server gives away and what it lets a visitor run: a login page that shows nothing of the
store or the server's paths, and launches limited to the models the server's owner allows, with no model code."""

import os
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from helpers import free_port, served_app, stop_leftovers
from studio_fixtures import OTHER_RUN, OTHER_STUDENT, RUN, STUDENT, TEACHER, build_fixture_file, copy_fixture_store

from arte_core.config import RunConfig
from arte_core.errors import ArteError
from arte_core.jobs import JobManager
from arte_core.store import Store, utcnow
from arte_core.studio import runs
from arte_core.studio.launch_rules import allowed_models_text

USER, PASSWORD = "alice", "wonderland"
OWNER_SETTINGS = ("ARTE_AUTH", "ARTE_READ_ONLY", "ARTE_MODELS_DIR", "ARTE_ALLOW_REMOTE_CODE", "GRADIO_SERVER_NAME")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def secrets_of(folder: Path) -> list[str]:
    """What a stranger must not learn: run ids, model names, and where the store and the runs live."""
    return [RUN, OTHER_RUN, STUDENT, OTHER_STUDENT, TEACHER, "smollm2-135m-instruct", str(folder)]


def leaked(body: str, folder: Path) -> list[str]:
    return [secret for secret in secrets_of(folder) if secret in body]


# -- the login page ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio_with_login(tmp_path_factory):
    """`python app.py` with ARTE_AUTH and ARTE_READ_ONLY on a copy of the fixture store: (url, folder)."""
    folder = tmp_path_factory.mktemp("login-studio")
    store_file = copy_fixture_store(build_fixture_file(folder), folder / "studio.duckdb")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in OWNER_SETTINGS}
    env.update(ARTE_DB=str(store_file), ARTE_RUNS_DIR=str(folder / "runs"), GRADIO_SERVER_PORT=str(port),
               ARTE_AUTH=f"{USER}:{PASSWORD}", ARTE_READ_ONLY="1", GRADIO_ANALYTICS_ENABLED="False")
    with served_app(env, folder / "app.log") as url:
        yield url, folder


def test_the_login_page_shows_a_stranger_nothing_of_the_store(studio_with_login):
    url, folder = studio_with_login
    with httpx.Client(base_url=url, timeout=30) as stranger:
        page = stranger.get("/")
        assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
        for path in ("/", "/?page=", "/?deep_link=x", "/config", "/gradio_api/info",
                     "/gradio_api/info?all_endpoints=true", "/gradio_api/openapi.json", "/gradio_api/runs"):
            body = stranger.get(path).text
            assert leaked(body, folder) == [], f"GET {path} without a login shows {leaked(body, folder)}"


def test_after_logging_in_the_studio_works_and_says_it_is_read_only(studio_with_login):
    url, folder = studio_with_login
    with httpx.Client(base_url=url, timeout=30) as person:
        assert person.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
        assert RUN in person.get("/").text  # the page a signed-in person gets still describes the app
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    history = client.predict(api_name="/runs_history")
    assert history["headers"] == runs.HISTORY_COLUMNS
    status, _ = client.predict("", "all", api_name="/runs_launch")
    assert "this studio is read-only" in status and "another process" not in status and "owns" not in status


@pytest.mark.browser
@pytest.mark.slow
def test_a_person_logs_in_through_the_page_without_the_api_description(studio_with_login):
    """The login page works in a browser without the API description it used to carry."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not found (install it: `make browser`)")
    from playwright.sync_api import expect, sync_playwright

    url, _ = studio_with_login
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"],
                                    headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            assert page.evaluate("Object.keys(window.gradio_api_info.named_endpoints).length") == 0
            page.get_by_label("username").fill(USER)
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()
            expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–24 of 24")
            assert page.evaluate("Object.keys(window.gradio_api_info.named_endpoints).length") > 10
        finally:
            browser.close()


def test_no_route_tells_a_stranger_about_the_store(tmp_path):
    """Every GET route of the app as `app.py` launches it, asked without a login."""
    from ui.app import build_app, launch_kwargs

    store = Store(copy_fixture_store(build_fixture_file(tmp_path), tmp_path / "studio.duckdb"))
    runs_dir = tmp_path / "runs"
    demo = build_app(store, JobManager(store, runs_dir), runs_dir=str(runs_dir))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                auth=[(USER, PASSWORD)], **launch_kwargs())
    try:
        paths = sorted({route.path for route in demo.app.routes
                        if "GET" in (getattr(route, "methods", None) or ()) and "{" not in route.path})
        assert "/" in paths and "/config" in paths and len(paths) > 10
        with httpx.Client(base_url=demo.local_url, timeout=30) as stranger:
            for path in paths:
                body = stranger.get(path).text
                assert leaked(body, tmp_path) == [], f"GET {path} without a login shows {leaked(body, tmp_path)}"
        client = Client(demo.local_url, auth=(USER, PASSWORD), verbose=False)
        assert [row[0] for row in client.predict(api_name="/runs_history")["data"]] == []
    finally:
        demo.close()
        store.close()


# -- what a launch may run -------------------------------------------------------------------------------


@pytest.fixture
def jobs(tmp_path):
    store = Store(tmp_path / "project.duckdb")
    jobs = JobManager(store, tmp_path / "runs")
    yield jobs
    stop_leftovers(jobs)
    store.close()


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """The server's models folder (ARTE_MODELS_DIR); remote code not allowed."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("ARTE_MODELS_DIR", str(folder))
    monkeypatch.delenv("ARTE_ALLOW_REMOTE_CODE", raising=False)
    return folder


def model_with_code(folder: Path, marker: Path) -> Path:
    """A model folder whose config asks transformers to import its own Python, which leaves `marker`."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",'
                                        ' "AutoModelForCausalLM": "modeling_evil.EvilModel"}}')
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (folder / "configuration_evil.py").write_text(code)
    (folder / "modeling_evil.py").write_text(code)
    return folder


def form(**fields) -> str:
    config = RunConfig()
    for name, value in fields.items():
        setattr(config, name, value)
    return config.to_yaml()


def test_the_studio_runs_no_model_code_unless_the_owner_allows_it(jobs, models_dir, tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    evil = str(model_with_code(models_dir / "evil", marker))
    with pytest.raises(ArteError, match="ARTE_ALLOW_REMOTE_CODE=1") as refused:
        runs.launch_job(jobs, False, form(teacher=evil, student=evil, trust_remote_code=True), "all")
    assert "trust_remote_code" in str(refused.value)
    assert jobs.jobs() == [] and not (jobs.runs_dir / "jobs").exists() and not marker.exists()

    # an earlier job with remote code (launched when it was allowed) is not relaunched once it is not
    job_dir = jobs.runs_dir / "jobs" / "20260101-000000-abcdef"
    job_dir.mkdir(parents=True)
    with jobs.store.transaction():
        jobs.store.insert("jobs", [dict(job_id=job_dir.name, run_id="r", stages="elicit", status="done", pid=None,
                                        job_dir=str(job_dir), config_yaml=form(trust_remote_code=True), who="ann",
                                        message="", started_at=utcnow(), finished_at=utcnow())])
    with pytest.raises(ArteError, match="ARTE_ALLOW_REMOTE_CODE=1"):
        runs.relaunch_job(jobs, False, None)
    assert len(jobs.jobs()) == 1

    monkeypatch.setenv("ARTE_ALLOW_REMOTE_CODE", "1")
    runs.check_launch_allowed(runs.parse_config(form(teacher=evil, student=evil, trust_remote_code=True)))


def test_studio_models_are_registry_names_hub_ids_or_folders_in_the_models_folder(jobs, models_dir, tmp_path,
                                                                                   monkeypatch):
    inside = models_dir / "tiny"
    outside = tmp_path / "elsewhere" / "tiny"
    for folder in (inside, outside):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (models_dir / "link").symlink_to(outside)
    allowed = ["smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", str(inside),
               os.path.relpath(inside)]
    for name in allowed:
        runs.check_launch_allowed(runs.parse_config(form(teacher=name, student=name)))
    refused = [str(outside), f"{models_dir}/../elsewhere/tiny", str(models_dir / "link"), os.path.relpath(outside),
               "~/model", "/", str(tmp_path)]
    for name in refused:
        for role in ("teacher", "student"):
            with pytest.raises(ArteError, match=f"The {role} .* outside this studio's models folder"):
                runs.launch_job(jobs, False, form(**{role: name}), "all")
    assert jobs.jobs() == [] and not (jobs.runs_dir / "jobs").exists()

    assert f"a model folder inside {models_dir}" in allowed_models_text()  # what the form tells the person

    monkeypatch.delenv("ARTE_MODELS_DIR")  # no models folder: no local folder at all
    assert "no local folder" in allowed_models_text()
    with pytest.raises(ArteError, match="ARTE_MODELS_DIR"):
        runs.launch_job(jobs, False, form(teacher=str(inside)), "all")
    runs.check_launch_allowed(runs.parse_config(form(teacher="smollm2-135m-instruct")))


def test_a_refused_launch_is_explained_on_the_page(jobs, models_dir):
    import gradio as gr

    from ui.runs import build_runs_tab

    with gr.Blocks() as demo:
        build_runs_tab(jobs, RunConfig(runs_dir=str(jobs.runs_dir)), read_only=False)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        status, _ = client.predict(form(trust_remote_code=True), "all", api_name="/runs_launch")
        assert status.startswith("⚠️") and "ARTE_ALLOW_REMOTE_CODE=1" in status
        status, _ = client.predict(form(student="/etc"), "all", api_name="/runs_launch")
        assert status.startswith("⚠️") and "outside this studio's models folder" in status
    finally:
        demo.close()
    assert jobs.jobs() == []
