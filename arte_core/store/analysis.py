"""The analysis tab's aggregates and plot points over the facts table (facts.py).

Counts, means and bins use every scored draft; plot points are every draft, or a fixed pseudo-random
sample of them when there are more than a plot can draw.
"""

from __future__ import annotations

import pandas as pd

from arte_core.store.core import Store
from arte_core.store.facts import FACTS, SAMPLE_KEYS, ensure_draft_facts

# Plots draw at most this many points per trace group; aggregates always use every row.
MAX_PLOT_POINTS = 20_000


def mean_accuracy(store: Store, run_id: str, student: str, origin: str = "draft") -> float | None:
    """Mean one-shot accuracy of the scored drafts (None when none are scored)."""
    ensure_draft_facts(store, run_id, student)
    return store.scalar(f"SELECT avg(accuracy) FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ?",
                   [run_id, student, origin])


def _sampled(store: Store, select: str, params: list, n_rows: int, max_points: int | None) -> pd.DataFrame:
    """`select`'s rows (facts columns, `sample_key` among them), or a fixed pseudo-random `max_points`
    of them when there are more: those with the smallest sample keys."""
    if max_points is None or n_rows <= max_points:
        return store.df(select, params).drop(columns="sample_key")
    # keep a little over the expected share, then cut to exactly max_points by key
    threshold = min(SAMPLE_KEYS, int(SAMPLE_KEYS * max_points / n_rows * 1.1) + 1)
    frame = store.df(f"{select} AND sample_key < ?", params + [threshold])
    if len(frame) < max_points:  # an unlucky spread of keys: take them all by key
        frame = store.df(f"{select} ORDER BY sample_key LIMIT ?", params + [max_points])
    return frame.nsmallest(max_points, ["sample_key"]).drop(columns="sample_key")


def scored_count(store: Store, run_id: str, student: str, origin: str = "draft") -> int:
    ensure_draft_facts(store, run_id, student)
    return int(store.scalar(f"SELECT count(accuracy) FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ?",
                       [run_id, student, origin]) or 0)


def length_accuracy(store: Store, run_id: str, student: str, origin: str = "draft",
                    max_points: int | None = MAX_PLOT_POINTS) -> pd.DataFrame:
    """(words, accuracy) of the scored drafts, for the paper's Figure 2: every draft, or a fixed pseudo-random
    sample of `max_points` when there are more (aggregates come from `length_bins`)."""
    ensure_draft_facts(store, run_id, student)
    select = ("SELECT rationale_id, technique, word_count, accuracy, n_items, matches_target, sample_key "
              f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL")
    frame = _sampled(store, select, [run_id, student, origin], scored_count(store, run_id, student, origin), max_points)
    return frame.sort_values(["word_count", "rationale_id"], ignore_index=True)


def length_bins(store: Store, run_id: str, student: str, bin_words: int, origin: str = "draft") -> pd.DataFrame:
    """Mean accuracy, count and sample sd per `bin_words`-word bin over every scored draft."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT (word_count // ?) * ? AS bin_start, avg(accuracy) AS mean, count(*) AS count, "
        "  coalesce(stddev_samp(accuracy), 0) AS std "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL "
        "GROUP BY bin_start ORDER BY bin_start",
        [bin_words, bin_words, run_id, student, origin],
    )


def accuracy_by_technique(store: Store, run_id: str, student: str) -> pd.DataFrame:
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT technique, count(*) AS n, avg(accuracy) AS mean_accuracy, "
        "  coalesce(stddev_samp(accuracy), 0) AS sd, avg(word_count) AS mean_words "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND accuracy IS NOT NULL "
        "GROUP BY technique ORDER BY technique",
        [run_id, student],
    )


def question_scores(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """A question's score is the mean of its rationales' scores (as pairs.py computes it)."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT question_idx AS idx, question_score AS score, question_n_scored AS n_rationales "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND first_of_question "
        "AND question_score IS NOT NULL ORDER BY question_idx",
        [run_id, student],
    )


def teacher_answer_accuracy(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Score of drafts whose teacher answer matches the target vs those that do not."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT matches_target, count(*) AS n, avg(accuracy) AS mean_accuracy, "
        "  coalesce(stddev_samp(accuracy), 0) AS sd "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND accuracy IS NOT NULL "
        "GROUP BY matches_target ORDER BY matches_target",
        [run_id, student],
    )


def origin_scores(store: Store, run_id: str, student: str, max_points: int | None = MAX_PLOT_POINTS) -> pd.DataFrame:
    """Scores of draft and regenerated ('arte') rationales, where the regenerated ones were scored; each
    origin's rows, or a fixed pseudo-random sample of `max_points` of them, with the origin's count in `n_origin`."""
    ensure_draft_facts(store, run_id, student)
    counts = store.rows(
        f"SELECT origin, count(accuracy) AS n FROM {FACTS} WHERE run_id = ? AND student = ? "
        "GROUP BY origin HAVING count(accuracy) > 0 ORDER BY origin", [run_id, student])
    parts = []
    for row in counts:
        select = (f"SELECT origin, rationale_id, accuracy, sample_key FROM {FACTS} "
                  "WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL")
        part = _sampled(store, select, [run_id, student, row["origin"]], row["n"], max_points)
        parts.append(part.assign(n_origin=row["n"]))
    if not parts:
        return pd.DataFrame(columns=["origin", "rationale_id", "accuracy", "n_origin"])
    return pd.concat(parts, ignore_index=True).sort_values(["origin", "rationale_id"], ignore_index=True)


def evaluation_table(store: Store, run_id: str) -> pd.DataFrame:
    return store.df(
        "SELECT variant, shots, accuracy, n_correct, n_items, n_unparsed, model FROM evaluations "
        "WHERE run_id = ? ORDER BY shots, CASE variant WHEN 'untrained' THEN 0 WHEN 'original' THEN 1 "
        "WHEN 'arte' THEN 2 ELSE 3 END, variant",
        [run_id],
    )
