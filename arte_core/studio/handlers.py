"""What the studio's UI calls: plain functions from widget values to plain data.

Each handler takes the values a form holds (strings, numbers, None) and returns pandas DataFrames,
plotly Figures, strings or dicts of those; it raises ArteError with a message that says what to fix.
No Gradio here, so the same functions serve tests, notebooks and any other front end.
"""

from __future__ import annotations

import hashlib
import html
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.stats import binomial_sd, cohen_kappa, spearman
from arte_core.store import Store
from arte_core.store import signals
from arte_core.store import analysis as store_analysis, catalog
from arte_core.store import decisions as store_decisions
from arte_core.store import drafts as store_drafts
from arte_core.studio import export, plots

PAGE_SIZE = 25
YES_NO_ANY = ("any", "yes", "no")
DRAFT_SORT_CHOICES = tuple(store_drafts.DRAFT_SORTS)
PAIR_SORT_CHOICES = tuple(store_decisions.PAIR_SORTS)
PAIR_KINDS = ("all", "question", "rationale")
DEFAULT_CONTESTED_MARGIN = 0.1
EXPORT_KINDS = ("pairs", "sft", "drafts")
TEXT_PREVIEW = 160
NO_RUN = ("No run selected: the store has no runs yet. Launch one in the **Runs** tab (or `arte run`), "
          "then press ↻ Reload runs.")


# -- small conversions ---------------------------------------------------------------------------

def optional_number(value: Any, name: str) -> float | None:
    """A number typed into a box, or None when the box is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArteError(f"{name} must be a number, got {value!r}; clear the box to drop this filter.") from None


def yes_no(value: Any, name: str) -> bool | None:
    if value in (None, "", "any"):
        return None
    if value in ("yes", True):
        return True
    if value in ("no", False):
        return False
    raise ArteError(f"{name} must be one of {', '.join(YES_NO_ANY)}, got {value!r}.")


def page_number(value: Any) -> int:
    number = optional_number(value, "page")
    return max(1, int(number)) if number is not None else 1


def require(value: Any, what: str) -> str:
    if value in (None, ""):
        raise ArteError(f"choose {what} first.")
    return str(value)


def require_run(store: Store, run_id: Any) -> str:
    """A run id that exists in the store (the error lists the runs that do)."""
    return str(store.run(require(run_id, "a run"))["run_id"])


def preview(text: Any, limit: int = TEXT_PREVIEW) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_name(authenticated: str | None, typed: str | None) -> str:
    """Who a decision is recorded for: the logged-in user, else the name typed in, else 'anonymous'."""
    return (authenticated or "").strip() or (typed or "").strip() or "anonymous"


def table_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN and NA become empty cells (JSON has no NaN), floats are rounded for reading."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(4)
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


# -- runs and students ---------------------------------------------------------------------------

def run_choices(store: Store) -> list[tuple[str, str]]:
    """(label, run_id) for every run: the label names the task, teacher and student."""
    runs = catalog.list_runs(store)
    return [(f"{r.task} · {r.run_id} ({r.teacher} → {r.student})", r.run_id) for r in runs.itertuples()]


def default_run(store: Store) -> str | None:
    """The newest run with pairs, else with scores, else the newest: what a visitor most likely wants to see."""
    runs = catalog.list_runs(store)
    if runs.empty:
        return None
    for candidates in (runs[runs["pairs"] > 0], runs[runs["scores"] > 0], runs):
        if not candidates.empty:
            return str(candidates.iloc[-1]["run_id"])
    return None


def student_choices(store: Store, run_id: str | None) -> list[str]:
    return catalog.list_students(store, run_id) if run_id else []


def technique_choices(store: Store, run_id: str | None) -> list[str]:
    return ["all"] + (catalog.list_techniques(store, run_id) if run_id else [])


def store_summary(store: Store) -> str:
    runs = catalog.list_runs(store)
    if runs.empty:
        return ("The store is empty: launch a run in the **Runs** tab (or `arte run --db …` on the command line), "
                "then press ↻ Reload runs.")
    return f"{len(runs)} run(s) in the store; {int(runs['pairs'].sum())} pairs, {int(runs['scores'].sum())} draft scores."


# -- drafts ----------------------------------------------------------------------------------------

def draft_filter(technique: Any = None, min_score: Any = None, max_score: Any = None, min_words: Any = None,
                 max_words: Any = None, agrees: Any = None, solver: Any = None, search: Any = None,
                 sort: Any = "score", direction: Any = "desc", page: Any = 1, origin: str = "draft") -> store_drafts.DraftFilter:
    """A DraftFilter from form values, with each value checked and named on error."""
    if origin not in ("draft", "arte"):
        raise ArteError(f"data origin must be 'draft' or 'arte', got {origin!r}.")
    words = [optional_number(min_words, "min words"), optional_number(max_words, "max words")]
    return store_drafts.DraftFilter(
        technique=None if technique in (None, "", "all") else str(technique),
        min_score=optional_number(min_score, "min score"), max_score=optional_number(max_score, "max score"),
        min_words=None if words[0] is None else int(words[0]), max_words=None if words[1] is None else int(words[1]),
        matches_target=yes_no(agrees, "teacher answer matches target"), solver_agrees=yes_no(solver, "solver agrees"),
        search=(str(search) if search else None), origin=origin, sort=str(sort or "score"),
        direction=str(direction or "desc"), page=page_number(page), page_size=PAGE_SIZE)


def drafts_view(store: Store, run_id: Any, student: Any, flt: store_drafts.DraftFilter) -> dict:
    """One page of the drafts table and a line saying which rows it shows and how noisy scores are."""
    if not run_id:
        return dict(table=pd.DataFrame(), page=1, pages=1, total=0, info=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    result = store_drafts.drafts_page(store, run_id, student, flt)
    pages = result["pages"]
    if flt.page > pages:  # a filter shrank the result under the current page: show the last page
        flt.page = pages
        result = store_drafts.drafts_page(store, run_id, student, flt)
    return dict(table=table_ready(_draft_columns(result["rows"])), page=result["page"], pages=pages,
                total=result["total"], info=_drafts_info(store, run_id, student, result, flt.page_size))


def _draft_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Readable column names; the id stays last so a selected row can be opened."""
    shown = rows.rename(columns={"question_idx": "q", "word_count": "words", "matches_target": "answer ok",
                                 "solver_agrees": "solver ok", "accuracy": "score", "question_score": "question score",
                                 "teacher_answer": "teacher answer"})
    shown["question"] = shown["question"].map(lambda t: preview(t, 90))
    keep = ["q", "question", "target", "technique", "words", "teacher answer", "answer ok", "solver ok", "score",
            "question score", "influence"] + [c for c in shown.columns if c.startswith("acc:")] + ["rationale_id"]
    return shown[keep]


def _drafts_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        return "No drafts match these filters (text search is literal; clear filters to see all)."
    first = (page - 1) * page_size + 1
    last = min(total, page * page_size)
    n_pref = catalog.n_pref_items(store, run_id, student)
    mean = store_analysis.mean_accuracy(store, run_id, student)
    mean = float("nan") if mean is None else mean
    return (f"Drafts {first}–{last} of {total} · page {page} of {result['pages']} · "
            f"scores of **{html.escape(student)}**; {plots.noise_note(mean, n_pref)}")


def draft_detail(store: Store, rationale_id: Any, student: Any) -> dict:
    """A draft in full: metadata (markdown), its question and rationale text, and the student's answers."""
    rationale_id = require(rationale_id, "a draft (click a row of the table)")
    detail = store_drafts.rationale_detail(store, rationale_id, require(student, "a student"))
    r = detail["rationale"]
    scores = ", ".join(f"{html.escape(s.student)} {s.accuracy:.2f} ({s.n_correct}/{s.n_items}, "
                       f"unparsed {s.n_unparsed})" for s in detail["scores"].itertuples()) or "not scored"
    influence = ", ".join(f"{html.escape(i['student'])} {i['influence']:+.4f}" for i in detail["influence"])
    solver = {True: "agrees", False: "disagrees", None: "no solver"}[r["solver_agrees"]]
    meta = (f"**{html.escape(r['technique'])}** · question {r['question_idx']} · {r['word_count']} words · "
            f"teacher answer `{html.escape(str(r['answer']))}` vs target `{html.escape(r['target'])}` "
            f"({'matches' if r['matches_target'] else 'does not match'}) · solver {solver}\n\n"
            f"One-shot accuracy: {scores}" + (f"\n\nInfluence: {influence}" if influence else "")
            + f"\n\n<small>{html.escape(rationale_id)} · origin {html.escape(r['origin'])}</small>")
    return dict(meta=meta, question=f"{r['question']}\n\n(target: {r['target']})", rationale=r["text"],
                prompt=r["prompt"], items=table_ready(_item_columns(detail["items"])))


def _item_columns(items: pd.DataFrame) -> pd.DataFrame:
    shown = items.copy()
    shown["correct"] = shown["correct"].map({True: "✓ right", False: "✗ wrong"})
    shown["student_output"] = shown["student_output"].map(lambda t: preview(t, 200))
    return shown.rename(columns={"item_index": "item", "preference_question": "preference question"})


# -- pairs -----------------------------------------------------------------------------------------

def pair_filter(kind: Any = "all", contested: Any = False, max_margin: Any = DEFAULT_CONTESTED_MARGIN,
                state: Any = "all", search: Any = None, sort: Any = "margin", direction: Any = "asc",
                page: Any = 1) -> store_decisions.PairFilter:
    margin = optional_number(max_margin, "contested margin") if contested else None
    if contested and margin is None:
        raise ArteError("'contested only' needs a margin: type the largest margin that counts as contested.")
    return store_decisions.PairFilter(kind=None if kind in (None, "", "all") else str(kind), max_margin=margin,
                        state=str(state or "all"), search=str(search) if search else None, sort=str(sort or "margin"),
                        direction=str(direction or "asc"), page=page_number(page), page_size=PAGE_SIZE)


def presentation_swapped(pair_id: str) -> bool:
    """Whether blind mode shows this pair's rejected text on the left: fixed per pair, like a seeded coin."""
    return int(hashlib.sha256(pair_id.encode()).hexdigest(), 16) % 2 == 1


def pairs_view(store: Store, run_id: Any, student: Any, flt: store_decisions.PairFilter, blind: bool = False) -> dict:
    """One page of pairs (scores and sides hidden in blind mode) with counts and agreement numbers."""
    if not run_id:
        return dict(table=pd.DataFrame(), page=1, pages=1, total=0, info=NO_RUN, agreement="")
    run_id, student = require_run(store, run_id), require(student, "a student")
    result = store_decisions.pairs_page(store, run_id, student, flt)
    if flt.page > result["pages"]:
        flt.page = result["pages"]
        result = store_decisions.pairs_page(store, run_id, student, flt)
    return dict(table=table_ready(_pair_columns(result["rows"], blind)), page=result["page"], pages=result["pages"],
                total=result["total"], info=_pairs_info(store, run_id, student, result, flt.page_size),
                agreement=agreement_markdown(agreement(store, run_id, student)))


def _pair_columns(rows: pd.DataFrame, blind: bool) -> pd.DataFrame:
    """Numbers and the decision first (they fit), then text previews; the id last so a row can be opened."""
    shown = pd.DataFrame({"kind": rows["kind"], "margin": rows["margin"]})
    if not blind:
        shown["chosen score"] = rows["chosen_score"]
        shown["rejected score"] = rows["rejected_score"]
    shown["decision"] = rows["decision"].fillna("—")
    shown["by"] = rows["decided_by"]
    shown["notes"] = rows["n_notes"]
    if not blind:
        shown["chosen"] = rows["chosen"].map(lambda t: preview(t, 60))
        shown["rejected"] = rows["rejected"].map(lambda t: preview(t, 60))
    shown["prompt"] = rows["prompt"].map(lambda t: preview(t, 50))
    shown["pair_id"] = rows["pair_id"]
    return shown


def _pairs_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        others = [s for s in catalog.pair_students(store, run_id) if s != student]
        hint = f" Pairs exist for: {', '.join(others)}." if others else ""
        return f"No pairs match for student **{html.escape(student)}**.{hint}"
    first, last = (page - 1) * page_size + 1, min(total, page * page_size)
    return f"Pairs {first}–{last} of {total} · page {page} of {result['pages']}"


def pair_panel(store: Store, pair_id: Any, blind: bool = False) -> dict:
    """The two sides of a pair, their labels, the decision choices and the latest decision id seen.

    In blind mode the sides are shown as A (left) and B (right) in a per-pair seeded order with no
    scores, until the pair has a decision; then the real sides are revealed.
    """
    p = store_decisions.pair(store, require(pair_id, "a pair (click a row of the table)"))
    revealed = not blind or p["decision"] is not None
    swapped = blind and presentation_swapped(p["pair_id"])
    left, right = (p["rejected"], p["chosen"]) if swapped else (p["chosen"], p["rejected"])
    if revealed:
        labels = _revealed_labels(p, swapped)
    else:
        labels = ("A (left)", "B (right)")
    return dict(pair_id=p["pair_id"], prompt=p["prompt"], left=left, right=right, left_label=labels[0],
                right_label=labels[1], header=_pair_header(p, revealed, blind), expected_last=int(p["last_decision_id"]),
                choices=action_choices(blind and not revealed, swapped), revealed=revealed)


def _revealed_labels(p: dict, swapped: bool) -> tuple[str, str]:
    chosen = f"student's CHOSEN · score {p['chosen_score']:.3f}"
    rejected = f"student's REJECTED · score {p['rejected_score']:.3f}"
    return (rejected, chosen) if swapped else (chosen, rejected)


def _pair_header(p: dict, revealed: bool, blind: bool) -> str:
    state = f"decision in force: **{p['decision']}** by {html.escape(str(p['decided_by']))}" if p["decision"] \
        else "no decision yet"
    if not revealed:
        return (f"**{p['kind']} pair**, blind: which side is the better training example? "
                f"Sides and scores are revealed after your decision. · {state}")
    sides = " (blind order: the sides are as they were shown)" if blind else ""
    return (f"**{p['kind']} pair** · margin {p['margin']:.3f} · signal {html.escape(p['signal'])}, {html.escape(str(p.get('style') or 'arte'))} style{sides} · {state} · "
            f"{p['n_notes']} note(s)")


def action_choices(blind_unrevealed: bool, swapped: bool) -> list[tuple[str, str]]:
    """(label, action) pairs for the decision radio. Blind: 'A/B is better' mapped onto accept/swap."""
    if blind_unrevealed:
        a_action, b_action = ("swap", "accept") if swapped else ("accept", "swap")
        return [("A (left) is better", a_action), ("B (right) is better", b_action),
                ("Exclude from training", "exclude"), ("Note only", "note")]
    return [("Accept: chosen is better", "accept"), ("Swap: rejected is better", "swap"),
            ("Exclude from training", "exclude"), ("Note only", "note")]


def decide(store: Store, pair_id: Any, action: Any, who: str, why: Any, expected_last: Any = None) -> dict:
    """Record one decision; the message warns when someone else decided the pair since it was opened."""
    pair_id = require(pair_id, "a pair (click a row of the table)")
    action = require(action, "a decision (accept, swap, exclude or note)")
    expected = optional_number(expected_last, "expected last decision")
    result = store_decisions.add_decision(store, pair_id, action, who, str(why or ""), None if expected is None else int(expected))
    decision = result["decision"]
    message = f"Recorded decision {decision['decision_id']}: **{action}** on {pair_id} by {html.escape(decision['who'])}."
    warning = None
    if result["conflict"]:
        prev = result["previous"]
        warning = (f"{prev['who']} recorded '{prev['action']}' (decision {prev['decision_id']}) on this pair after you "
                   f"opened it. Both decisions are kept in the trail; yours is the latest and wins. Check the trail.")
    return dict(decision=decision, conflict=result["conflict"], message=message, warning=warning)


def decide_bulk(store: Store, run_id: Any, student: Any, flt: store_decisions.PairFilter, action: Any, who: str, why: Any) -> dict:
    """The same decision on every pair the filter matches (all pages)."""
    run_id, student = require_run(store, run_id), require(student, "a student")
    action = require(action, "a bulk action")
    ids = store_decisions.matching_pair_ids(store, run_id, student, flt)
    decisions = store_decisions.add_decisions(store, ids, action, who, str(why or ""))
    return dict(decisions=decisions, message=f"Recorded **{action}** on {len(decisions)} pair(s) by {html.escape(who)}.")


def undo_decision(store: Store, decision_id: Any, who: str, why: Any = "") -> dict:
    number = optional_number(decision_id, "decision id")
    if number is None:
        raise ArteError("type the id of the decision to undo (see the trail).")
    row = store_decisions.undo(store, int(number), who, str(why or ""))
    return dict(decision=row, message=f"Decision {int(number)} undone (undo recorded as {row['decision_id']}).")


def trail_view(store: Store, pair_id: Any, run_id: Any, whole_run: bool = False) -> pd.DataFrame:
    """The audit trail of one pair, or of the whole run."""
    if whole_run:
        trail = store_decisions.decision_trail(store, run_id=require_run(store, run_id))
    else:  # no pair selected: an empty table that still has the right columns
        trail = store_decisions.decision_trail(store, pair_id=str(pair_id) if pair_id else "\0none")
    return table_ready(_trail_columns(trail))


def _trail_columns(trail: pd.DataFrame) -> pd.DataFrame:
    shown = trail.rename(columns={"undone_by": "undone by", "decided_at": "when (UTC)"})
    shown["when (UTC)"] = pd.to_datetime(shown["when (UTC)"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    return shown


def latest_undoable(store: Store, pair_id: Any) -> int | None:
    """The newest decision of a pair that can still be undone (what the undo box offers)."""
    if not pair_id:
        return None
    trail = store_decisions.decision_trail(store, pair_id=str(pair_id))
    live = trail[(trail["action"] != "undo") & trail["undone_by"].isna()]
    return int(live.iloc[0]["decision_id"]) if not live.empty else None


# -- agreement between people and the student proxy ----------------------------------------------------

def agreement(store: Store, run_id: str, student: str | None = None) -> dict:
    """How often people agree with the student's preference on the pairs they decided.

    accept = the person agrees with the proxy, swap = disagrees; excluded pairs count apart. Kappa
    treats the sides of the seeded blind presentation as labels (the proxy picks a side, the person
    picks a side), so chance agreement is about one half and kappa is defined whenever both raters
    use both sides.
    """
    decided = store_decisions.decided_pairs(store, run_id, student)
    total = store_decisions.pair_count(store, run_id, student)
    judged = decided[decided["decision"].isin(["accept", "swap"])]
    out = dict(n_pairs=total, n_decided=len(decided), n_accept=int((decided["decision"] == "accept").sum()),
               n_swap=int((decided["decision"] == "swap").sum()), n_exclude=int((decided["decision"] == "exclude").sum()))
    out["agreement"] = out["n_accept"] / len(judged) if len(judged) else None
    proxy = ["right" if presentation_swapped(pid) else "left" for pid in judged["pair_id"]]
    human = [side if d == "accept" else ("left" if side == "right" else "right")
             for side, d in zip(proxy, judged["decision"])]
    out["kappa"] = cohen_kappa(proxy, human)
    out["by_kind"] = {kind: (float((part["decision"] == "accept").mean()), len(part))
                      for kind, part in judged.groupby("kind")}
    return out


def agreement_markdown(stats: dict) -> str:
    if not stats["n_decided"]:
        return f"No decisions yet on the {stats['n_pairs']} pairs: agreement with the student proxy is not measured."
    share = "—" if stats["agreement"] is None else f"{stats['agreement']:.0%}"
    kappa = "undefined" if stats["kappa"] is None else f"{stats['kappa']:.2f}"
    kinds = "; ".join(f"{k} {v:.0%} of {n}" for k, (v, n) in sorted(stats["by_kind"].items()))
    return (f"**Agreement with the student proxy:** {share} of judged pairs accepted "
            f"({stats['n_accept']} accepted, {stats['n_swap']} swapped, {stats['n_exclude']} excluded; "
            f"{stats['n_decided']} of {stats['n_pairs']} pairs decided) · Cohen's κ {kappa}"
            + (f" · by kind: {kinds}" if kinds else ""))


# -- analysis -------------------------------------------------------------------------------------------

def analysis_view(store: Store, run_id: Any, student: Any) -> dict:
    """Every analysis figure for a run and student, a summary and the evaluation table."""
    if not run_id:
        blank = plots.empty_figure("No run yet.")
        return dict(length=blank, technique=blank, questions=blank, teacher_answer=blank, origin=blank,
                    evaluation=blank, evaluation_table=pd.DataFrame(), summary=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    n_pref = catalog.n_pref_items(store, run_id, student)
    lengths = store_analysis.length_accuracy(store, run_id, student)
    totals = dict(total=store_analysis.scored_count(store, run_id, student), mean=store_analysis.mean_accuracy(store, run_id, student),
                  bins=store_analysis.length_bins(store, run_id, student, plots.BIN_WORDS))
    techniques = store_analysis.accuracy_by_technique(store, run_id, student)
    questions = store_analysis.question_scores(store, run_id, student)
    evaluation = store_analysis.evaluation_table(store, run_id)
    return dict(
        length=plots.length_accuracy_figure(lengths, n_pref, **totals),
        technique=plots.technique_figure(techniques, n_pref),
        questions=plots.question_histogram(questions),
        teacher_answer=plots.teacher_answer_figure(store_analysis.teacher_answer_accuracy(store, run_id, student)),
        origin=plots.origin_figure(store_analysis.origin_scores(store, run_id, student)),
        evaluation=plots.evaluation_figure(evaluation),
        evaluation_table=table_ready(evaluation),
        summary=_analysis_summary(lengths, totals, techniques, questions, n_pref),
    )


def _analysis_summary(lengths: pd.DataFrame, totals: dict, techniques: pd.DataFrame, questions: pd.DataFrame,
                      n_pref: int) -> str:
    """Bullet points on the figures; counts, means and bins over every draft, ρ over the plotted ones."""
    if lengths.empty:
        return "No scored drafts for this run and student yet: run the 'score' stage."
    rho = spearman(lengths["word_count"], lengths["accuracy"])
    sampled = f" (on the {len(lengths):,} plotted)" if totals["total"] > len(lengths) else ""
    bins = totals["bins"]
    best_bin = bins.sort_values(["mean", "count"], ascending=False).iloc[0]
    best_tech = techniques.sort_values("mean_accuracy", ascending=False).iloc[0]
    noise = binomial_sd(totals["mean"], n_pref)
    lines = [
        f"- {totals['total']} scored drafts over {n_pref} preference questions; {plots.noise_note(totals['mean'], n_pref)}.",
        f"- Length vs accuracy: Spearman ρ = {'undefined' if rho is None else f'{rho:.2f}'}{sampled}; "
        f"best {plots.BIN_WORDS}-word bin "
        f"{int(best_bin['bin_start'])}–{int(best_bin['bin_start']) + plots.BIN_WORDS} words "
        f"(mean {best_bin['mean']:.2f} over {int(best_bin['count'])} drafts).",
        f"- Best technique: **{html.escape(best_tech['technique'])}** ({best_tech['mean_accuracy']:.3f}); "
        f"technique means spread {techniques['mean_accuracy'].max() - techniques['mean_accuracy'].min():.3f}.",
        f"- Question scores spread sd {questions['score'].std(ddof=0):.3f} vs rationale noise sd {noise:.3f}"
        + (" — questions differ more than noise." if questions['score'].std(ddof=0) > noise else
           " — question differences are within noise."),
    ]
    return "\n".join(lines)


# -- signals: ICL accuracy vs influence -----------------------------------------------------------------

def signals_view(store: Store, run_id: Any, student: Any) -> dict:
    """Compare the two preference signals: scatter, Spearman, the drafts they disagree on most."""
    if not run_id:
        return dict(figure=plots.empty_figure("No run yet."), summary=NO_RUN, disagreements=pd.DataFrame())
    run_id, student = require_run(store, run_id), require(student, "a student")
    comparison = signals.signal_comparison(store, run_id, student)
    rows = pd.DataFrame(comparison.get("rows") or [],
                        columns=["rationale_id", "question", "technique", "word_count", "accuracy", "influence"])
    disagreements = pd.DataFrame(comparison.get("disagreements") or [])
    flagged = set(disagreements["rationale_id"]) if "rationale_id" in disagreements else set()
    rho = comparison.get("spearman")
    if rows.empty:
        summary = (f"No drafts with both signals for **{html.escape(student)}** in this run: run the `influence` "
                   "stage (Runs tab, or `arte influence`) after `score` to compare the two signals.")
    else:
        summary = (f"{comparison.get('n', len(rows))} drafts with both signals · Spearman ρ(accuracy, −influence) = "
                   f"{'undefined' if rho is None else f'{rho:.2f}'} · {len(flagged)} drafts that one signal ranks in "
                   "its top half and the other in its bottom half (listed below).")
    if "question" in disagreements:
        disagreements["question"] = disagreements["question"].map(lambda t: preview(t, 80))
    return dict(figure=plots.signals_figure(rows, flagged), summary=summary, disagreements=table_ready(disagreements))


# -- export ---------------------------------------------------------------------------------------------

def export_files(store: Store, what: Any, run_id: Any, student: Any, formats: Any = None,
                 folder: str | Path | None = None) -> dict:
    """Write one export (pairs, sft or drafts) in the chosen formats; returns the files and a message."""
    run_id = require_run(store, run_id)
    what = require(what, "what to export")
    formats = tuple(formats or export.FORMATS)
    folder = Path(folder or tempfile.mkdtemp(prefix="arte-export-"))
    if what == "pairs":
        files = export.export_pairs(store, run_id, require(student, "a student"), folder, formats)
        frame = export.pair_records(store, run_id, student)
        detail = f"{len(frame)} training pairs ({int(frame['swapped_by_human'].sum())} swapped by people; excluded pairs left out)"
    elif what == "sft":
        files = export.export_sft(store, run_id, folder, None, formats)
        detail = f"{len(export.sft_records(store, run_id))} SFT examples"
    elif what == "drafts":
        files = export.export_drafts(store, run_id, require(student, "a student"), folder, formats)
        detail = f"{len(export.draft_records(store, run_id, student))} drafts with scores"
    else:
        raise ArteError(f"cannot export {what!r}; choose one of {', '.join(EXPORT_KINDS)}.")
    return dict(files=[str(f) for f in files], message=f"Exported {detail}: {', '.join(Path(f).name for f in files)}.")


def push_export(store: Store, what: Any, run_id: Any, student: Any, repo_id: Any) -> str:
    run_id, what = require_run(store, run_id), require(what, "what to export")
    frames = {
        "pairs": lambda: export.pair_records(store, run_id, require(student, "a student")),
        "sft": lambda: export.sft_records(store, run_id),
        "drafts": lambda: export.draft_records(store, run_id, require(student, "a student")),
    }
    if what not in frames:
        raise ArteError(f"cannot push {what!r}; choose one of {', '.join(EXPORT_KINDS)}.")
    return export.push_to_hub(frames[what](), str(repo_id or "").strip())
