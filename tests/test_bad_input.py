"""Bad task files and bad store paths get one clear ArteError naming the file and the fix; a failing
command leaves no store file behind it did not find, and never writes ARTE tables into a foreign
DuckDB file."""

import json
import re
from pathlib import Path

import duckdb
import pytest

from arte_core.cli import main
from arte_core.errors import ArteError
from arte_core.store import SCHEMA_VERSION, Store
from arte_core.tasks import load_task

GOOD_PROMPT = ("Say whether a number is even.\n\nQ: Is 4 even?\nA: Let's think step by step. 4 = 2 x 2. "
               "So the answer is Yes.\n\nQ: Is 3 even?\nA: Let's think step by step. 3 is odd. So the answer is No.")


def good_examples(n: int = 20) -> list[dict]:
    return [{"input": f"Is {i} even?", "target": "Yes" if i % 2 == 0 else "No"} for i in range(n)]


def task_dir(root: Path, examples_json: bytes | str, prompt: bytes | str = GOOD_PROMPT, name: str = "even") -> Path:
    """A BBH-layout folder with the given raw file contents (bytes are written as they are)."""
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "cot-prompts").mkdir(parents=True, exist_ok=True)
    for path, content in ((root / "tasks" / f"{name}.json", examples_json),
                          (root / "cot-prompts" / f"{name}.txt", prompt)):
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


def cli_error(capsys, *args) -> str:
    """Run `arte`, check it failed with one line and status 2, return that line."""
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("arte: error:") and err.count("\n") == 1, err
    return err


def elicit_args(tmp_path: Path, db: Path, folder: Path) -> list[str]:
    return ["elicit", "--db", str(db), "--task", "even", "--task-dir", str(folder), "--runs-dir", str(tmp_path / "runs")]


# -- task files that are not UTF-8 -------------------------------------------------------------------


LATIN1_JSON = json.dumps({"examples": good_examples()}).replace("Is 1 even?", "Est-ce que 1 est pair\u00e9?").encode("latin-1")


@pytest.mark.parametrize("which", ["tasks", "cot-prompts"])
def test_a_task_file_that_is_not_utf8_names_the_file_and_the_fix(which, tmp_path, capsys):
    examples = json.dumps({"examples": good_examples()})
    prompt = GOOD_PROMPT
    if which == "tasks":
        examples = LATIN1_JSON
    else:
        prompt = GOOD_PROMPT.replace("Say whether", "Dites si l'entier \u00e9tait").encode("cp1252")
    folder = task_dir(tmp_path / "t", examples, prompt)
    bad_file = folder / which / ("even.json" if which == "tasks" else "even.txt")
    with pytest.raises(ArteError, match=re.escape(str(bad_file)) + r" is not UTF-8 text.*re-save it as UTF-8"):
        load_task("even", folder)
    err = cli_error(capsys, *elicit_args(tmp_path, tmp_path / "arte.duckdb", folder))
    assert str(bad_file) in err and "UTF-8" in err


def test_a_config_file_that_is_not_utf8_names_the_file_and_the_fix(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_bytes("task: boolean_expressions\nrun_name: caf\u00e9\n".encode("latin-1"))
    err = cli_error(capsys, "config", "--config", str(config))
    assert f"{config} is not UTF-8 text" in err and "re-save it as UTF-8" in err


def test_a_utf8_file_with_a_byte_order_mark_loads(tmp_path):
    """Windows editors save UTF-8 with a BOM; it is still UTF-8 text."""
    bom = b"\xef\xbb\xbf"
    folder = task_dir(tmp_path / "t", bom + json.dumps({"examples": good_examples()}).encode(), bom + GOOD_PROMPT.encode())
    task = load_task("even", folder)
    assert task.description == "Say whether a number is even."
    assert len(task.examples) == 20


# -- examples with unusable targets or inputs -----------------------------------------------------


@pytest.mark.parametrize("bad, expected", [
    ({"input": "Is 7 even?", "target": None}, r"examples\[7\]: 'target' is null"),
    ({"input": "Is 7 even?", "target": ["No"]}, r"examples\[7\]: 'target' is a list"),
    ({"input": "Is 7 even?", "target": {"answer": "No"}}, r"examples\[7\]: 'target' is an object"),
    ({"input": "Is 7 even?", "target": "  "}, r"examples\[7\]: 'target' is empty"),
    ({"input": "", "target": "No"}, r"examples\[7\]: 'input' is empty"),
    ({"input": "Is 7 even?"}, r"examples\[7\] has no 'target'"),
    ({"input": "Is 7 even? \ud800", "target": "No"}, r"examples\[7\]: 'input' holds an unpaired surrogate"),
])
def test_an_example_without_a_usable_target_is_refused_with_its_index(bad, expected, tmp_path):
    examples = good_examples()
    examples[7] = bad
    folder = task_dir(tmp_path / "t", json.dumps({"examples": examples}))
    with pytest.raises(ArteError) as info:
        load_task("even", folder)
    message = str(info.value)
    assert re.search(expected, message), message
    assert str(folder / "tasks" / "even.json") in message
    assert "fix" in message or "give" in message or "remove" in message, message


def test_numeric_and_boolean_targets_are_read_as_their_text(tmp_path):
    examples = [{"input": f"{i} + 1 =", "target": i + 1} for i in range(10)]
    examples += [{"input": f"is {i} > 4?", "target": i > 4} for i in range(10)]
    task = load_task("even", task_dir(tmp_path / "t", json.dumps({"examples": examples})))
    assert [e.target for e in task.examples[:2]] == ["1", "2"]
    assert task.examples[15].target == "True"


# -- store paths ----------------------------------------------------------------------------------


def test_a_store_path_under_a_file_is_refused(tmp_path, capsys):
    config = tmp_path / "some.yaml"
    config.write_text("task: boolean_expressions\n")
    db = config / "x.duckdb"
    with pytest.raises(ArteError, match=re.escape(str(db)) + r".*some\.yaml is a file"):
        Store(db)
    err = cli_error(capsys, "elicit", "--db", str(db), "--runs-dir", str(tmp_path / "runs"))
    assert str(db) in err
    assert config.read_text() == "task: boolean_expressions\n"


def test_a_store_folder_that_cannot_be_created_is_refused(tmp_path, capsys):
    db = tmp_path / ("x" * 300) / "arte.duckdb"  # a folder name longer than any file system allows
    with pytest.raises(ArteError, match=r"cannot create the folder .* for the store"):
        Store(db)
    assert "cannot create the folder" in cli_error(capsys, "elicit", "--db", str(db), "--runs-dir", str(tmp_path / "runs"))


def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path, capsys):
    db = tmp_path / "notes.duckdb"
    db.write_text("these are my notes\n" * 100)
    with pytest.raises(ArteError, match=re.escape(str(db)) + r" is not a DuckDB database"):
        Store(db)
    assert "is not a DuckDB database" in cli_error(capsys, "elicit", "--db", str(db), "--runs-dir", str(tmp_path / "runs"))
    assert db.read_text() == "these are my notes\n" * 100


def foreign_duckdb(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (day DATE, amount DOUBLE)")
    con.execute("INSERT INTO sales VALUES ('2024-01-01', 9.5)")
    con.close()
    return path


def tables_of(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


@pytest.mark.parametrize("command", [["elicit"], ["run"], ["status"]])
def test_a_duckdb_file_that_is_not_an_arte_store_is_refused_and_left_alone(command, tmp_path, capsys):
    db = foreign_duckdb(tmp_path / "sales.duckdb")
    with pytest.raises(ArteError, match=re.escape(str(db)) + r" is not an ARTE Studio store"):
        Store(db)
    err = cli_error(capsys, *command, "--db", str(db),
                    *([] if command == ["status"] else ["--runs-dir", str(tmp_path / "runs")]))
    assert "is not an ARTE Studio store" in err and str(db) in err
    assert tables_of(db) == {"sales"}


def test_a_store_of_a_newer_schema_is_refused_before_anything_is_written_to_it(tmp_path, capsys):
    db = tmp_path / "future.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    con.execute("CREATE TABLE future_table (x INTEGER)")
    con.close()
    err = cli_error(capsys, "elicit", "--db", str(db), "--runs-dir", str(tmp_path / "runs"))
    assert "was written by a newer ARTE Studio" in err
    assert tables_of(db) == {"schema_version", "future_table"}


def test_an_empty_duckdb_file_becomes_a_store(tmp_path):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with Store(db) as store:
        assert store.list_runs() == []
    assert "schema_version" in tables_of(db)


# -- a failed command leaves no file behind ----------------------------------------------------------


def test_a_command_that_fails_before_writing_leaves_no_store_file(tmp_path, capsys):
    folder = task_dir(tmp_path / "t", '{"examples": [')  # malformed JSON: the command fails on the task
    db = tmp_path / "new" / "arte.duckdb"
    err = cli_error(capsys, *elicit_args(tmp_path, db, folder))
    assert "is not valid JSON" in err
    assert not db.exists() and not Path(f"{db}.wal").exists()


def test_a_failing_command_keeps_a_store_that_existed_before(tmp_path, capsys):
    folder = task_dir(tmp_path / "t", '{"examples": [')
    db = tmp_path / "arte.duckdb"
    Store(db).close()  # an empty store the user made earlier
    cli_error(capsys, *elicit_args(tmp_path, db, folder))
    assert db.exists()
    with Store(db, read_only=True) as store:
        assert store.list_runs() == []


def test_a_store_that_got_rows_before_the_failure_is_kept(tmp_path):
    db = tmp_path / "arte.duckdb"
    with pytest.raises(ArteError, match="late failure"):
        with Store(db) as store:
            store.ensure_run("r", "t", "builtin", "teacher", "student", "fp", "task: t\n")
            raise ArteError("late failure")
    with Store(db, read_only=True) as store:
        assert [r["run_id"] for r in store.list_runs()] == ["r"]
