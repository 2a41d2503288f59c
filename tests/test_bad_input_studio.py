"""Bad values from the browser reach the studio's handlers (arte_core.studio) and are refused with an
ArteError that names the field, before anything is stored; exports always get valid file names and
clean up after themselves."""

import os
import time
from pathlib import Path

import pytest
from studio_fixtures import OTHER_STUDENT, RUN, STUDENT, build_fixture_file, copy_fixture_store

from arte_core.errors import ArteError
from arte_core.store import Store
from arte_core.studio import drafts, export, pairs

NOT_WHOLE = [1.5, "1.5", "abc", float("nan"), "nan", float("inf"), "-1e309", True]


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    return build_fixture_file(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture
def store(fixture_file, tmp_path):
    with Store(copy_fixture_store(fixture_file, tmp_path / "store.duckdb")) as opened:
        yield opened


def n_decisions(store: Store) -> int:
    return store.scalar("SELECT count(*) FROM pair_decisions")


# -- decisions: store and report success, or store nothing -----------------------------------------

@pytest.mark.parametrize("seen", [7, -1, 1.5, "abc", float("nan"), "nan", float("inf"), "-1e309", True])
def test_decide_with_an_impossible_expected_id_stores_nothing(store, seen):
    """Before: 7 or -1 on an undecided pair stored the decision, then crashed ('NoneType' object is not
    subscriptable), so a retry recorded it twice; nan was taken as 'no check'."""
    with pytest.raises(ArteError, match="latest decision id"):
        pairs.decide(store, "pr-0", "accept", "bob", "", expected_last=seen)
    assert n_decisions(store) == 0


def test_expected_id_zero_empty_or_the_latest_seen(store):
    """0 = 'I saw no decision', empty = no check, an id of this pair = the conflict check."""
    first = pairs.decide(store, "pr-0", "accept", "bob", "", expected_last=0)
    assert first["warning"] is None and first["decision"]["decision_id"] == 1
    assert pairs.decide(store, "pr-0", "swap", "bob", "", expected_last=None)["warning"] is None
    assert pairs.decide(store, "pr-0", "swap", "bob", "", expected_last="")["warning"] is None
    seen_then = pairs.decide(store, "pr-0", "exclude", "alice", "", expected_last=1.0)  # a Number box sends floats
    assert seen_then["conflict"] and "decision 3" in seen_then["warning"]
    pairs.decide(store, "pr-1", "accept", "carol", "", expected_last=0)  # decision 5, on another pair
    with pytest.raises(ArteError, match="not a decision on pair pr-0"):
        pairs.decide(store, "pr-0", "accept", "alice", "", expected_last=5)
    with pytest.raises(ArteError, match="not a decision on pair pr-0"):
        pairs.decide(store, "pr-0", "accept", "alice", "", expected_last=99)
    assert n_decisions(store) == 5


@pytest.mark.parametrize("bad_id", NOT_WHOLE + [-1, 0])
def test_undo_takes_whole_decision_ids_only(store, bad_id):
    """Before: undo of 1.5 undid decision 1 (int() truncates), nan and inf raised raw errors."""
    pairs.decide(store, "pr-0", "accept", "bob", "")
    pairs.decide(store, "pr-1", "accept", "bob", "")
    with pytest.raises(ArteError, match="decision id"):
        pairs.undo_decision(store, bad_id, "bob")
    assert n_decisions(store) == 2 and pairs.latest_undoable(store, "pr-0") == 1
    undone = pairs.undo_decision(store, "2", "bob")  # a whole number typed as text is fine
    assert "Decision 2 undone" in undone["message"] and pairs.latest_undoable(store, "pr-1") is None


# -- filters and pages -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["min_words", "max_words"])
@pytest.mark.parametrize("value", ["nan", "-1e309", "inf", 2.5, "-3", float("nan")])
def test_word_filters_refuse_what_is_not_a_word_count(field, value):
    """Before: 'nan' and '-1e309' raised 'cannot convert float NaN/infinity to integer'."""
    with pytest.raises(ArteError, match=field.replace("_", " ")):
        drafts.draft_filter(**{field: value})


@pytest.mark.parametrize("field", ["min_score", "max_score"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1e309", "1.5", -0.1])
def test_score_filters_refuse_non_finite_and_out_of_range(field, value):
    with pytest.raises(ArteError, match=field.replace("_", " ")):
        drafts.draft_filter(**{field: value})


def test_filters_that_make_sense_still_work(store):
    flt = drafts.draft_filter(min_score="0.5", max_score=1, min_words="25", max_words=60.0)
    assert (flt.min_score, flt.max_score, flt.min_words, flt.max_words) == (0.5, 1.0, 25, 60)
    assert drafts.draft_filter(min_words="", max_words=None).min_words is None


@pytest.mark.parametrize("page", ["nan", "inf", "-1e309", 2.5, "abc"])
def test_pages_refuse_what_is_not_a_page(page):
    with pytest.raises(ArteError, match="page"):
        drafts.draft_filter(page=page)
    with pytest.raises(ArteError, match="page"):
        pairs.pair_filter(page=page)


def test_a_huge_page_shows_the_last_page(store):
    """Before: page 1e300 made an OFFSET DuckDB cannot hold."""
    assert drafts.drafts_view(store, RUN, STUDENT, drafts.draft_filter(page="1e300"))["page"] == 1
    assert pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(page=10**30))["page"] == 1
    assert drafts.draft_filter(page=-4).page == 1


@pytest.mark.parametrize("margin", ["nan", "inf", "-0.1", float("nan")])
def test_contested_margin_must_be_a_margin(margin):
    with pytest.raises(ArteError, match="contested margin"):
        pairs.pair_filter(contested=True, max_margin=margin)


# -- exports ---------------------------------------------------------------------------------------

def test_export_file_names_stay_valid_for_any_student_name(store, tmp_path):
    """Before: a 5,000-character student name gave '[Errno 36] File name too long'."""
    long_name = "a-very-patient-student " * 220
    store.execute("UPDATE icl_scores SET student = ? WHERE student = ?", [long_name, OTHER_STUDENT])
    result = export.export_files(store, "drafts", RUN, long_name, ["jsonl", "hf"], folder=tmp_path / "out")
    names = [Path(f).name for f in result["files"]]
    assert all(len(name) < 150 for name in names) and all(Path(f).is_file() for f in result["files"])
    assert names[0].startswith("drafts_bool-fixture_a-very-patient-student_")
    similar = long_name[:-1] + "!"  # differs only at the end: the short hash keeps the names apart
    assert export.safe_name(long_name) != export.safe_name(similar)
    assert export.safe_name(STUDENT) == STUDENT  # a plain name stays as it is
    assert export.safe_name("élève") != export.safe_name("学生")  # names with no safe letters stay apart


@pytest.mark.parametrize("what", ["drafts", "pairs"])
def test_export_for_a_student_without_data_is_refused(store, tmp_path, what):
    """Before: drafts for a student that does not exist were 'exported with scores', all empty."""
    with pytest.raises(ArteError, match=f"for student 'nobody' in run {RUN}; students with .*{STUDENT}"):
        export.export_files(store, what, RUN, "nobody", ["jsonl"], folder=tmp_path)
    with pytest.raises(ArteError, match="'nobody'"):
        export.push_export(store, what, RUN, "nobody", "me/arte")
    assert not list(tmp_path.glob("*.jsonl"))


def test_pairs_export_for_a_student_without_pairs_names_those_with_pairs(store, tmp_path):
    with pytest.raises(ArteError, match=f"no pairs for student '{OTHER_STUDENT}'.*{STUDENT}"):
        export.export_files(store, "pairs", RUN, OTHER_STUDENT, ["jsonl"], folder=tmp_path)


def test_old_export_folders_are_removed(store, tmp_path, monkeypatch):
    """Before: every export left an arte-export-* folder in the temp directory for good."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    first = Path(export.export_files(store, "sft", RUN, STUDENT, ["jsonl"])["files"][0]).parent
    whole = Path(export.export_store(store, RUN)["files"][0]).parent
    assert first.name.startswith("arte-export-") and whole.name.startswith("arte-export-")
    recent = Path(export.export_files(store, "sft", RUN, STUDENT, ["jsonl"])["files"][0]).parent
    assert first.exists() and whole.exists()  # recent exports stay: Gradio may still be copying them
    long_ago = time.time() - export.EXPORT_FOLDER_LIFETIME_S - 60
    for folder in (first, whole):
        os.utime(folder, (long_ago, long_ago))
    latest = Path(export.export_files(store, "sft", RUN, STUDENT, ["jsonl"])["files"][0])
    assert not first.exists() and not whole.exists()
    assert recent.exists() and latest.is_file()
    unrelated = tmp_path / "someone-else"
    unrelated.mkdir()
    os.utime(unrelated, (long_ago, long_ago))
    export.export_files(store, "sft", RUN, STUDENT, ["jsonl"])
    assert unrelated.exists()  # only the studio's own export folders are removed
