"""The analysis tab's aggregates and plot points over the facts table (facts.py).

Counts, means and bins use every scored draft; plot points are every draft, or a fixed pseudo-random
sample of them when there are more than a plot can draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from arte_core.stats import balanced_accuracy_noise, wilson_interval
from arte_core.store.core import Store
from arte_core.store.facts import FACTS, SAMPLE_KEYS, ensure_draft_facts

# Plots draw at most this many points per trace group; aggregates always use every row.
MAX_PLOT_POINTS = 20_000

# A draft whose student answers with the demo's own label on at least this share of the items, while
# scoring within noise of chance, measures the demo's label, not the rationale (issue 15).
COPY_RATE_FLAG = 0.9


@dataclass(frozen=True)
class LabelChance:
    """What a balanced accuracy scores by chance on a run's preference items: 1/k for k labels, and the
    binomial noise sd around it (stats.balanced_accuracy_noise). NaN without labels."""

    n_labels: int
    chance: float
    noise: float

    def near_chance(self, balanced_accuracy: float | None) -> bool:
        if balanced_accuracy is None or math.isnan(self.chance) or pd.isna(balanced_accuracy):
            return False
        return abs(float(balanced_accuracy) - self.chance) <= self.noise


def label_chance(store: Store, run_id: str) -> LabelChance:
    """Chance level of balanced accuracy over the run's preference labels (their targets' counts)."""
    counts = [r["n"] for r in store.rows("SELECT count(*) AS n FROM pref_items WHERE run_id = ? GROUP BY target",
                                         [run_id])]
    chance, noise = balanced_accuracy_noise(counts)
    return LabelChance(len(counts), chance, noise)


def copies_demo_label(label_copy_rate: float | None, balanced_accuracy: float | None, chance: LabelChance) -> bool:
    """The flag: the student mostly repeats the demo's label and scores no better than chance."""
    return (label_copy_rate is not None and not pd.isna(label_copy_rate)
            and float(label_copy_rate) >= COPY_RATE_FLAG and chance.near_chance(balanced_accuracy))


def copies_label_sql(chance: LabelChance) -> tuple[str, list]:
    """The same flag as a SQL expression over FACTS (alias f) with its parameters; NULL for drafts scored
    before label-copy rates existed (or tasks without labels), so it is never a false 'no'."""
    if math.isnan(chance.chance):
        return "CAST(NULL AS BOOLEAN)", []
    return ("(f.label_copy_rate >= ? AND abs(f.balanced_accuracy - ?) <= ?)",
            [COPY_RATE_FLAG, chance.chance, chance.noise])


def old_score_count(store: Store, run_id: str, student: str, origin: str = "draft") -> int:
    """Drafts scored by an older ARTE Studio (before parse modes: no label-copy rate, no truncation counts)."""
    ensure_draft_facts(store, run_id, student)
    return int(store.scalar(f"SELECT count(*) FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ? "
                            "AND accuracy IS NOT NULL AND n_lenient IS NULL", [run_id, student, origin]) or 0)


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


def copy_rate_vs_balanced(store: Store, run_id: str, student: str,
                          max_points: int | None = MAX_PLOT_POINTS) -> tuple[pd.DataFrame, int]:
    """(points, n): label-copy rate and balanced accuracy of the drafts that have both (scored since
    schema 3), every one or a fixed pseudo-random sample of `max_points`; n counts them all."""
    ensure_draft_facts(store, run_id, student)
    where = (f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' "
             "AND label_copy_rate IS NOT NULL AND balanced_accuracy IS NOT NULL")
    params = [run_id, student]
    n = int(store.scalar(f"SELECT count(*) {where}", params) or 0)
    select = f"SELECT rationale_id, technique, label_copy_rate, balanced_accuracy, accuracy, sample_key {where}"
    frame = _sampled(store, select, params, n, max_points)
    return frame.sort_values("rationale_id", ignore_index=True), n


def evaluation_table(store: Store, run_id: str, student: str | None = None) -> pd.DataFrame:
    """Each evaluation of the student (None: the run's) with its Wilson 95% interval and unparsed and
    truncated rates (truncation is NULL for evaluations run before schema 3, which did not record it)."""
    frame = store.df(
        "SELECT variant, shots, accuracy, n_correct, n_items, n_unparsed, n_truncated, model FROM evaluations "
        "WHERE run_id = ? AND student = ? ORDER BY shots, CASE variant WHEN 'untrained' THEN 0 WHEN 'original' "
        "THEN 1 WHEN 'arte' THEN 2 WHEN 'best_drafts' THEN 3 ELSE 4 END, variant",
        [run_id, store.student_of(run_id, student)],
    )
    intervals = [wilson_interval(c, n) for c, n in zip(frame["n_correct"], frame["n_items"])]
    frame["ci_low"] = [low for low, _ in intervals]
    frame["ci_high"] = [high for _, high in intervals]
    items = frame["n_items"].where(frame["n_items"] > 0)
    frame["unparsed_rate"] = frame["n_unparsed"] / items
    frame["truncated_rate"] = frame["n_truncated"].astype(float) / items
    return frame
