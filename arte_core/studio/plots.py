"""Plotly figures of the studio's analysis view; each takes a query result and returns a Figure.

The figures carry the paper's findings where the data shows them: length vs one-shot accuracy with a
binned mean and 95% band (Figure 2), accuracy by reasoning technique, the spread of question scores,
teacher answers that miss the target, draft vs regenerated scores and the final evaluation. Every
score plot states the binomial noise level sqrt(p(1-p)/n_pref): a spread smaller than that is noise.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from arte_core.stats import binomial_sd, ci_half_width
from arte_core.store.analysis import COPY_RATE_FLAG, copies_demo_label

BIN_WORDS = 25  # the paper reports length effects in 25-word bins (50–75, 75–100 words)
VARIANT_ORDER = ("untrained", "original", "arte", "best_drafts")
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")


def noise_note(mean_accuracy: float, n_pref: int) -> str:
    """One line saying how much of a score difference is binomial noise."""
    if not n_pref or mean_accuracy is None or math.isnan(mean_accuracy):
        return "binomial noise: unknown (no scores)"
    sd = binomial_sd(mean_accuracy, n_pref)
    return f"binomial noise sd ≈ {sd:.3f} at mean accuracy {mean_accuracy:.2f} over n_pref = {n_pref}"


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#666"))
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=320, template="plotly_white")
    return fig


def _layout(fig: go.Figure, title: str, subtitle: str = "", **axes) -> go.Figure:
    text = f"{title}<br><sup>{subtitle}</sup>" if subtitle else title
    fig.update_layout(title=dict(text=text, x=0.01), template="plotly_white", height=420,
                      margin=dict(l=60, r=20, t=80, b=50), legend=dict(orientation="h", y=-0.2), **axes)
    return fig


def with_band(bins: pd.DataFrame, bin_words: int = BIN_WORDS) -> pd.DataFrame:
    """Add each bin's 95% half width and center to (bin_start, mean, count, std) rows (the store's
    `length_bins`); a bin of one draft gets no band."""
    bins = bins.copy()
    bins["half_width"] = ci_half_width(bins["std"], bins["count"])
    bins["center"] = bins["bin_start"] + bin_words / 2
    return bins


def length_accuracy_figure(df: pd.DataFrame, n_pref: int, bins: pd.DataFrame, mean: float | None,
                           total: int | None = None, bin_words: int = BIN_WORDS) -> go.Figure:
    """Rationale length vs one-shot accuracy: one point per draft, binned mean and 95% band (paper Fig. 2).

    `df` holds the points (perhaps a sample of `total` drafts); `bins` and `mean` are computed over
    every draft (the store's `length_bins` and `mean_accuracy`).
    """
    if df.empty:
        return empty_figure("No scored drafts for this run and student yet.")
    bins = with_band(bins, bin_words)
    fig = go.Figure()
    for i, (technique, part) in enumerate(df.groupby("technique", sort=True)):
        fig.add_trace(go.Scatter(
            x=part["word_count"], y=part["accuracy"], mode="markers", name=technique,
            marker=dict(size=8, opacity=0.7, color=PALETTE[i % len(PALETTE)]),
            customdata=part[["rationale_id"]], hovertemplate="%{x} words, accuracy %{y:.2f}<br>%{customdata[0]}"))
    _add_binned_mean(fig, bins)
    _add_noise_band(fig, mean, n_pref)
    subtitle = f"binned mean per {bin_words} words with 95% band · {noise_note(mean, n_pref)}"
    if total is not None and total > len(df):
        subtitle += f" · points: a random {len(df):,} of {total:,} drafts"
    return _layout(fig, "Rationale length vs one-shot accuracy", subtitle,
                   xaxis_title="rationale length (words)", yaxis_title="one-shot accuracy", yaxis_range=[-0.05, 1.05])


def _add_binned_mean(fig: go.Figure, bins: pd.DataFrame) -> None:
    banded = bins[bins["count"] > 1]
    if not banded.empty:
        upper = (banded["mean"] + banded["half_width"]).clip(upper=1.0)
        lower = (banded["mean"] - banded["half_width"]).clip(lower=0.0)
        fig.add_trace(go.Scatter(x=list(banded["center"]) + list(banded["center"])[::-1],
                                 y=list(upper) + list(lower)[::-1], fill="toself", mode="lines",
                                 line=dict(width=0), fillcolor="rgba(60,60,60,0.15)", name="95% band",
                                 hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=bins["center"], y=bins["mean"], mode="lines", name="binned mean",
                             line=dict(color="#222", width=2), customdata=bins[["count"]],
                             hovertemplate="bin around %{x} words: mean %{y:.2f} over %{customdata[0]} drafts"))


def _add_noise_band(fig: go.Figure, mean_accuracy: float, n_pref: int) -> None:
    """Shade mean ± one binomial sd: drafts inside it are indistinguishable from an average draft."""
    sd = binomial_sd(mean_accuracy, n_pref)
    if math.isnan(sd):
        return
    fig.add_hrect(y0=max(0.0, mean_accuracy - sd), y1=min(1.0, mean_accuracy + sd), fillcolor="#E45756",
                  opacity=0.07, line_width=0, annotation_text="mean ± binomial noise sd",
                  annotation_position="top left", annotation_font_size=10)


def technique_figure(df: pd.DataFrame, n_pref: int) -> go.Figure:
    """Mean accuracy per reasoning technique with 95% intervals over its drafts."""
    if df.empty:
        return empty_figure("No scored drafts for this run and student yet.")
    fig = go.Figure(go.Bar(
        x=df["technique"], y=df["mean_accuracy"], marker_color=PALETTE[0],
        error_y=dict(type="data", array=ci_half_width(df["sd"], df["n"]), visible=True),
        customdata=df[["n", "mean_words"]],
        hovertemplate="%{x}: %{y:.3f} over %{customdata[0]} drafts, %{customdata[1]:.0f} words on average"
                      "<extra></extra>"))  # no trace name ("trace 0") beside the technique's
    overall = float((df["mean_accuracy"] * df["n"]).sum() / df["n"].sum())
    return _layout(fig, "One-shot accuracy by reasoning technique", noise_note(overall, n_pref),
                   yaxis_title="mean accuracy", yaxis_range=[0, 1.05])


def question_histogram(df: pd.DataFrame, quantile: float = 0.25) -> go.Figure:
    """How question scores spread, with the cut-offs of the top and bottom groups used for pairs."""
    if df.empty:
        return empty_figure("No scored questions yet.")
    fig = go.Figure(go.Histogram(x=df["score"], nbinsx=20, marker_color=PALETTE[2], name="questions"))
    low, high = df["score"].quantile(quantile), df["score"].quantile(1 - quantile)
    for value, label in ((low, f"bottom {quantile:.0%}"), (high, f"top {quantile:.0%}")):
        fig.add_vline(x=float(value), line_dash="dash", line_color="#666", annotation_text=label)
    subtitle = f"{len(df)} questions; score = mean over its rationales; spread sd {df['score'].std(ddof=0):.3f}"
    return _layout(fig, "Question scores", subtitle, xaxis_title="question score", yaxis_title="questions")


def teacher_answer_figure(df: pd.DataFrame) -> go.Figure:
    """Do drafts whose own answer is wrong still teach? Mean accuracy by teacher answer right/wrong."""
    if df.empty:
        return empty_figure("No scored drafts yet.")
    labels = df["matches_target"].map({True: "teacher answer right", False: "teacher answer wrong"})
    fig = go.Figure(go.Bar(
        x=labels, y=df["mean_accuracy"], marker_color=[PALETTE[2] if m else PALETTE[3] for m in df["matches_target"]],
        error_y=dict(type="data", array=ci_half_width(df["sd"], df["n"]), visible=True),
        text=[f"n = {n}" for n in df["n"]], textposition="outside"))
    return _layout(fig, "Drafts with a wrong vs right teacher answer", "mean one-shot accuracy with 95% interval",
                   yaxis_title="mean accuracy", yaxis_range=[0, 1.1])


def origin_figure(df: pd.DataFrame) -> go.Figure:
    """Score distribution of the draft data vs the regenerated (ARTE) data, when the latter is scored."""
    if df.empty or df["origin"].nunique() < 2:
        return empty_figure("No alignment check for this student yet: run `arte check` (after `arte regenerate`) "
                            "to score base and aligned teacher drafts on held-out items.")
    fig = go.Figure()
    for i, origin in enumerate(sorted(df["origin"].unique(), key=lambda o: (o != "draft", o))):
        part = df[df["origin"] == origin]
        n = int(part["n_origin"].iloc[0]) if "n_origin" in part else len(part)
        label = f"{origin} (n = {n:,})" if n == len(part) else f"{origin} (n = {n:,}; {len(part):,} sampled)"
        fig.add_trace(go.Box(y=part["accuracy"], name=label, boxpoints="all",
                             jitter=0.4, marker_color=PALETTE[i % len(PALETTE)], boxmean=True))
    return _layout(fig, "Before vs after alignment: one-shot accuracy of the data", "box = quartiles, dashed = mean",
                   yaxis_title="one-shot accuracy", yaxis_range=[-0.05, 1.05])


def alignment_figure(check: dict, drafts: pd.DataFrame) -> go.Figure:
    """The alignment check (stages/check.py): each arm's per-draft accuracy on the held-out check items (`drafts`:
    the store's check_draft_scores) beside the paired difference aligned − base with its 95% bootstrap
    interval over items, n and p (`check`: the stored summary)."""
    from plotly.subplots import make_subplots

    names = {"base": "base teacher", "arte": "aligned teacher"}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.12)
    for i, origin in enumerate(("base", "arte")):
        part, arm = drafts[drafts["origin"] == origin], check["arms"].get(origin)
        if part.empty or arm is None:
            continue
        accuracy = arm["accuracy"]
        fig.add_trace(go.Box(y=part["accuracy"], name=f"{names[origin]} (n = {arm['n_drafts']} drafts)",
                             boxpoints="all", jitter=0.4, boxmean=True, marker_color=PALETTE[i],
                             hovertemplate=f"{names[origin]}: mean {accuracy['value']:.3f} "
                                           f"[{interval_text(accuracy)}]<extra></extra>"), row=1, col=1)
    if "difference" in check:
        low, high = check["ci_low"], check["ci_high"]
        d = check["difference"]
        fig.add_trace(go.Scatter(x=["aligned − base"], y=[d], mode="markers", name="difference (95% CI)",
                                 marker=dict(size=12, color=PALETTE[2]),
                                 error_y=dict(type="data", visible=low is not None,
                                              array=[(high - d) if high is not None else 0],
                                              arrayminus=[(d - low) if low is not None else 0])), row=1, col=2)
        fig.add_hline(y=0, line_dash="dash", line_color="#666", row=1, col=2)
        subtitle = (f"aligned − base {d:+.3f} [{interval_text(check)}] over n = {check['n_items']} held-out items "
                    f"(paired bootstrap) · {check['n_better']} better, {check['n_worse']} worse, "
                    f"{check['n_tied']} tied · Wilcoxon p = {check['wilcoxon_p']:.3g}, sign p = {check['sign_p']:.3g}")
    else:
        subtitle = f"one arm only, over n = {check['n_items']} held-out items"
    fig.update_yaxes(title_text="accuracy on check items (per draft)", range=[-0.05, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="difference in accuracy", row=1, col=2)
    return _layout(fig, "Alignment check: does the aligned teacher write what the student learns from?", subtitle)


def interval_text(values: dict) -> str:
    low, high = values["ci_low"], values["ci_high"]
    return "CI undefined" if low is None or high is None else f"95% CI {low:+.3f} … {high:+.3f}"


def evaluation_figure(df: pd.DataFrame) -> go.Figure:
    """Test accuracy of the untrained, original-teacher-trained and ARTE-trained student, per shot count,
    with Wilson 95% intervals (`ci_low`, `ci_high` of the store's evaluation_table) and, in each bar, its
    n and unparsed and cut-off rates ("—" where an older version did not record truncation)."""
    if df.empty:
        return empty_figure("No evaluation yet: run the 'evaluate' stage.")
    fig = go.Figure()
    for i, variant in enumerate(sorted(df["variant"].unique(), key=_variant_rank)):
        part = df[df["variant"] == variant].sort_values("shots")
        fig.add_trace(go.Bar(x=[f"{s}-shot" for s in part["shots"]], y=part["accuracy"], name=variant,
                             marker_color=PALETTE[i % len(PALETTE)],
                             error_y=dict(type="data", array=part["ci_high"] - part["accuracy"],
                                          arrayminus=part["accuracy"] - part["ci_low"], visible=True),
                             text=[_evaluation_label(row) for row in part.itertuples()], textposition="inside",
                             insidetextanchor="start", textangle=0))
    sizes = sorted({int(n) for n in df["n_items"]})
    n = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return _layout(fig, "Student test accuracy",
                   f"error bars: Wilson 95% interval · n = {n} test items · in each bar: n, unparsed and cut-off "
                   "rates (cut off —: evaluated by an older version, which did not record it)",
                   barmode="group", yaxis_title="accuracy", yaxis_range=[0, 1.1])


def _evaluation_label(row) -> str:
    cut_off = "—" if pd.isna(row.truncated_rate) else f"{row.truncated_rate:.0%}"
    return f"{row.accuracy:.3f}<br>n={row.n_items}<br>unparsed {row.unparsed_rate:.0%}<br>cut off {cut_off}"


def copy_rate_figure(df: pd.DataFrame, n: int, chance, n_old: int = 0) -> go.Figure:
    """Label-copy rate vs balanced accuracy per draft: drafts at the right, inside the chance band, score
    by repeating the demo's label (flagged in red). `chance` is the store's LabelChance; `n` counts every
    draft with both numbers (the points may be a sample); `n_old` those an older version scored."""
    if df.empty:
        reason = (f"{n_old} drafts were scored by an older version, which kept no label-copy rate; "
                  "`arte rescore` scores them anew." if n_old else "No draft has a label-copy rate and a "
                  "balanced accuracy (tasks without labels have none).")
        return empty_figure(reason)
    flagged = pd.Series([copies_demo_label(copy_rate, balanced, chance)
                         for copy_rate, balanced in zip(df["label_copy_rate"], df["balanced_accuracy"])],
                        index=df.index, dtype=bool)
    fig = go.Figure()
    for mask, name, color in ((~flagged, "drafts", PALETTE[0]), (flagged, "copies demo label", PALETTE[3])):
        part = df[mask]
        if not part.empty:
            fig.add_trace(go.Scatter(x=part["label_copy_rate"], y=part["balanced_accuracy"], mode="markers",
                                     name=f"{name} ({len(part):,})", marker=dict(size=8, color=color, opacity=0.7),
                                     customdata=part[["rationale_id"]],
                                     hovertemplate="copies %{x:.2f}, balanced accuracy %{y:.2f}<br>%{customdata[0]}"))
    fig.add_hrect(y0=max(0.0, chance.chance - chance.noise), y1=min(1.0, chance.chance + chance.noise),
                  fillcolor="#E45756", opacity=0.07, line_width=0, annotation_font_size=10,
                  annotation_text=f"chance {chance.chance:.2f} ± binomial noise sd {chance.noise:.2f}",
                  annotation_position="top left")
    fig.add_vline(x=COPY_RATE_FLAG, line_dash="dash", line_color="#666", annotation_text=f"copy rate {COPY_RATE_FLAG}")
    sample = f" (points: a random {len(df):,})" if n > len(df) else ""
    old = f" · {n_old} scored by an older version not shown (`arte rescore`)" if n_old else ""
    return _layout(fig, f"Label-copy rate vs balanced accuracy (n = {n:,} drafts){sample}",
                   f"red: copies the demo's label on ≥ {COPY_RATE_FLAG:.0%} of items at chance level{old}",
                   xaxis_title="label-copy rate (answers equal to the demo's own)",
                   yaxis_title="balanced accuracy", xaxis_range=[-0.05, 1.05], yaxis_range=[-0.05, 1.05])


def _variant_rank(variant: str) -> tuple:
    return (VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER), variant)


def signals_figure(rows: pd.DataFrame, disagreements: set[str] | None = None, score_name: str = "accuracy",
                   correlation: str = "") -> go.Figure:
    """ICL score (`icl_score`, else `accuracy`) vs local data influence per draft; disagreeing drafts
    highlighted; the subtitle carries n and `correlation` (the rank correlation with its CI)."""
    if rows.empty:
        return empty_figure("No draft has both an ICL score and an influence score for this student.")
    x = "icl_score" if "icl_score" in rows else "accuracy"
    flagged = rows["rationale_id"].isin(disagreements or set())
    fig = go.Figure()
    for mask, name, color in ((~flagged, "signals agree", PALETTE[0]), (flagged, "signals disagree", PALETTE[3])):
        part = rows[mask]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(x=part[x], y=part["influence"], mode="markers", name=name,
                                 marker=dict(size=9, color=color, opacity=0.8), customdata=part[["rationale_id"]],
                                 hovertemplate=f"{score_name} %{{x:.2f}}, influence %{{y:.4f}}<br>%{{customdata[0]}}"))
    return _layout(fig, f"One-shot ICL {score_name} vs local data influence",
                   f"n = {len(rows)} drafts{' · ' + correlation if correlation else ''} · influence < 0: one step "
                   "on the draft lowered the reference loss (the student prefers it)",
                   xaxis_title=f"one-shot {score_name}", yaxis_title="influence (Δ reference loss)")


def students_figure(rows: pd.DataFrame, student: str, other: str, score_name: str, correlation: str) -> go.Figure:
    """Each draft's one-shot score for one student (x) against another (y), with the diagonal; the subtitle
    carries n and `correlation` (the rank correlation with its CI)."""
    fig = go.Figure(go.Scatter(x=rows["score_a"], y=rows["score_b"], mode="markers", name="drafts",
                               marker=dict(size=9, color=PALETTE[0], opacity=0.8),
                               customdata=rows[["rationale_id", "technique"]],
                               hovertemplate="%{x:.2f} vs %{y:.2f}<br>%{customdata[0]} (%{customdata[1]})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="same score",
                             line=dict(color="#999", dash="dot"), hoverinfo="skip"))
    return _layout(fig, f"Do the two students prefer the same drafts? One-shot {score_name}",
                   f"n = {len(rows)} drafts · {correlation}", xaxis_title=f"{student}: {score_name}",
                   yaxis_title=f"{other}: {score_name}")


def marker_point_count(fig: go.Figure) -> int:
    """Points drawn as markers (drafts) in a figure; lines and bands are not counted."""
    total = 0
    for trace in fig.data:
        mode = getattr(trace, "mode", None) or ""
        if trace.type == "scatter" and "markers" in mode:
            total += len(trace.x)
    return total


def dpo_figure(logs: list[dict], metrics: dict) -> go.Figure:
    """The teacher's DPO by step: loss against ln 2 (the loss of an unchanged teacher) above, TRL's reward
    margin and reward accuracy below; the title gives the steps and pairs, and says when the final margin
    means the teacher did not move. `logs`: each logged step's numbers; `metrics`: the adapter's record."""
    from plotly.subplots import make_subplots

    if not logs:
        return empty_figure("no DPO log yet: run `arte align`")
    steps = [row["step"] for row in logs]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        specs=[[{}], [{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=steps, y=[row.get("loss") for row in logs], mode="lines+markers", name="loss",
                             line=dict(color=PALETTE[0])), row=1, col=1)
    fig.add_hline(y=math.log(2), line=dict(dash="dot", color="#999"), annotation_text="ln 2: teacher unchanged",
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[row.get("rewards/margins") for row in logs], mode="lines+markers",
                             name="reward margin (chosen − rejected)", line=dict(color=PALETTE[2])), row=2, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[row.get("rewards/accuracies") for row in logs], mode="lines+markers",
                             name="reward accuracy (batch mean)", line=dict(color=PALETTE[1], dash="dash")),
                  row=2, col=1, secondary_y=True)
    n_pairs = metrics.get("n_pairs")
    title = f"Teacher DPO · {len(steps)} steps · n = {n_pairs} pairs"
    nats = metrics.get("margin_nats")
    if nats is None:
        subtitle = "no reward margin recorded (an older version trained this adapter)"
    else:
        subtitle = f"final margin {metrics['final_reward_margin']:.4f} = {nats:.3f} nats at beta " \
                   f"{(metrics.get('settings') or {}).get('beta', '?')}; TRL logs batch means (no interval)"
        if not metrics.get("moved"):
            subtitle = "⚠ the teacher is unchanged: " + subtitle
    _layout(fig, title, subtitle)
    fig.update_yaxes(title_text="DPO loss", row=1, col=1)
    fig.update_yaxes(title_text="margin", row=2, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1], row=2, col=1, secondary_y=True)
    fig.update_xaxes(title_text="step", tickformat="d", row=2, col=1)
    return fig
