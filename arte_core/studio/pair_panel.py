"""One pair as the Pairs tab's panel shows it: the two sides (rendered, in blind order when asked), their
labels and decision choices, the header with the paired test, and the evidence behind each side (its
target with the solver's agreement, and the student's answer on each preference item, side by side).

Blind mode shows the sides as A (left) and B (right) in a per-pair seeded order and hides margin, scores,
decisions, reviewers and the per-item answers (which give the scores away) until the pair is decided;
after that it reveals them but keeps the A/B labels and wording, so the sides stay where they were.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

import pandas as pd

from arte_core.config import PairConfig
from arte_core.parsing import parse_question_blocks
from arte_core.store import Store, decisions, pair_sides
from arte_core.studio.common import MISSING, preview, require, yes_no_cell

# The noise level the table marks pairs at unless told otherwise: the level pairs are built at by default.
DEFAULT_NOISE_LEVEL = PairConfig().max_p
TEST_NAMES = {"mcnemar_exact": "McNemar's exact test", "item_sign_test": "exact sign test over items"}
BLIND_LABELS = ("A (left)", "B (right)")


def presentation_swapped(pair_id: str) -> bool:
    """Whether blind mode shows this pair's rejected text on the left: fixed per pair, like a seeded coin."""
    return int(hashlib.sha256(pair_id.encode()).hexdigest(), 16) % 2 == 1


def evidence(row: dict | pd.Series, level: float) -> str:
    """'significant', 'within noise' or 'not tested' (no p: influence or 'both' pairs, or built before
    pairs were tested), by the rule the filter and the pairs stage use."""
    p = row["p_value"]
    if p is None or pd.isna(p):
        return "not tested"
    return "significant" if p <= level and row["n_chosen_only"] > row["n_rejected_only"] else "within noise"


def discordant_text(row: dict | pd.Series) -> str:
    """'7 vs 1 of 12': the shared items only the chosen / only the rejected side got right; '—' untested."""
    if row["p_value"] is None or pd.isna(row["p_value"]):
        return MISSING
    return f"{int(row['n_chosen_only'])} vs {int(row['n_rejected_only'])} of {int(row['n_shared'])}"


def rendered_side(text: Any) -> str:
    """A side as a person reads it: a question pair's `<input>…</input><target>…</target>` block becomes
    the question and a 'Target:' line; any other text is shown as it is."""
    parsed = parse_question_blocks(str(text or ""))
    if len(parsed.questions) != 1:
        return str(text or "")
    question, target = parsed.questions[0]
    return f"{question}\n\nTarget: {target}"


def pair_panel(store: Store, pair_id: Any, blind: bool = False) -> dict:
    """The two sides of a pair, their labels, the decision choices, the latest decision id seen and the
    evidence behind each side (`sides`: markdown; `items`: the per-item answers side by side)."""
    p = decisions.pair(store, require(pair_id, "a pair (click a row of the table)"))
    revealed = not blind or p["decision"] is not None
    swapped = blind and presentation_swapped(p["pair_id"])
    order = ("rejected", "chosen") if swapped else ("chosen", "rejected")
    labels = _labels(p, order, blind, revealed)
    names = BLIND_LABELS if blind else order  # what the evidence calls the two sides
    return dict(pair_id=p["pair_id"], prompt=p["prompt"], left=rendered_side(p[order[0]]),
                right=rendered_side(p[order[1]]), left_label=labels[0], right_label=labels[1],
                header=_pair_header(p, revealed, blind), expected_last=int(p["last_decision_id"]),
                choices=action_choices(blind, swapped), revealed=revealed,
                sides=_sides_markdown(store, p, order, names)
                + ("" if revealed else "\n\nThe student's answers per item appear after your decision: they "
                                       "give the scores away."),
                items=_items_side_by_side(store, p, order, names, revealed))


def _labels(p: dict, order: tuple[str, str], blind: bool, revealed: bool) -> tuple[str, str]:
    """'A (left)' / 'B (right)' in blind mode (with the real side once revealed); else the real sides."""
    def real(side: str) -> str:
        return f"student's {side.upper()} · score {p[side + '_score']:.3f}"
    if not blind:
        return real(order[0]), real(order[1])
    if not revealed:
        return BLIND_LABELS
    return f"{BLIND_LABELS[0]} · {real(order[0])}", f"{BLIND_LABELS[1]} · {real(order[1])}"


def _pair_header(p: dict, revealed: bool, blind: bool) -> str:
    if not revealed:
        return (f"**{p['kind']} pair**, blind: which side is the better training example? Margin, scores, "
                f"decisions and reviewers are revealed after your decision. · no decision yet\n\n{test_line(p)}")
    state = (f"decision in force: **{p['decision']}** by {html.escape(str(p['decided_by']))}" if p["decision"]
             else "no decision yet")
    sides = " (blind order: the sides stay as they were shown)" if blind else ""
    return (f"**{p['kind']} pair** · margin {p['margin']:.3f} · signal {html.escape(p['signal'])}, "
            f"{html.escape(str(p.get('style') or 'arte'))} style{sides} · {state} · "
            f"{p['n_notes']} note(s)\n\n{test_line(p)}")


def test_line(p: dict) -> str:
    """The pair's paired test in words: the test, the discordant items, p, and whether it is within noise."""
    if p.get("p_value") is None or pd.isna(p["p_value"]):
        why = str(p.get("pair_test") or "none: built before pairs were tested; rebuild them (`arte pairs`) to test them")
        return f"Paired test: **not tested** ({html.escape(why.removeprefix('none: '))})."
    verdict = evidence(p, DEFAULT_NOISE_LEVEL)
    return (f"Paired test: {TEST_NAMES.get(p['pair_test'], html.escape(str(p['pair_test'])))} on "
            f"{p['n_shared']} shared preference items: {p['n_chosen_only']} favour the chosen side, "
            f"{p['n_rejected_only']} the rejected · **p = {p['p_value']:.3g}** · {verdict} at p ≤ "
            f"{DEFAULT_NOISE_LEVEL:g}.")


def action_choices(blind: bool, swapped: bool) -> list[tuple[str, str]]:
    """(label, action) pairs for the decision radio. Blind: 'A/B is better' mapped onto accept/swap, before
    and after the decision (the sides stay in blind order, so the wording must too)."""
    if blind:
        a_action, b_action = ("swap", "accept") if swapped else ("accept", "swap")
        return [("A (left) is better", a_action), ("B (right) is better", b_action),
                ("Exclude from training", "exclude"), ("Note only", "note")]
    return [("Accept: chosen is better", "accept"), ("Swap: rejected is better", "swap"),
            ("Exclude from training", "exclude"), ("Note only", "note")]


def side_line(side: dict | None) -> str:
    """'target `True` · solver agrees: yes' (or what the solver says instead, or that there is none)."""
    if side is None:
        return "its question is not in the store"
    line = f"target `{html.escape(str(side['target']))}`"
    agrees = side["solver_agrees"]
    if agrees is None or pd.isna(agrees):
        line += " · solver agrees: — (no solver for this task)"
    elif agrees:
        line += " · solver agrees: yes"
    else:
        line += (f" · solver agrees: **no** (the solver says `{html.escape(str(side['solver_target']))}`): "
                 "⚠️ a wrong target")
    if side.get("technique"):
        answer = side["teacher_answer"]
        line += (f" · teacher answer `{html.escape(MISSING if answer is None else str(answer))}` "
                 f"(matches target: {yes_no_cell(side['matches_target']) or MISSING})")
    return line


def _sides_markdown(store: Store, p: dict, order: tuple[str, str], names: tuple[str, str]) -> str:
    lines = []
    for side, name in zip(order, names):
        found = pair_sides.pair_side(store, p[side + "_ref"])
        lines.append(f"- **{html.escape(name)}**: {side_line(found)}")
    return "**Targets**\n\n" + "\n".join(lines)


ITEM_HEADERS = ("#", "question", "target")


def _items_side_by_side(store: Store, p: dict, order: tuple[str, str], names: tuple[str, str],
                        revealed: bool) -> pd.DataFrame:
    """Per preference item: its question, target and each side's answer and whether it is correct (a
    question side: how many of its scored drafts got the item right). Empty until a blind pair is decided."""
    per_side = (("drafts right",) if p["kind"] == "question" else ("answer", "correct"))
    columns = [*ITEM_HEADERS, *(f"{name} {what}" for name in names for what in per_side)]
    if not revealed:
        return pd.DataFrame(columns=columns)
    frames = [pair_sides.side_item_answers(store, p["run_id"], p["student"], p["kind"], p[side + "_ref"])
              for side in order]
    merged = frames[0].merge(frames[1], on="item_index", how="outer", suffixes=("_l", "_r")).sort_values("item_index")
    question = merged["question_l"].fillna(merged["question_r"])
    shown = pd.DataFrame({"#": merged["item_index"].astype(int),
                          "question": [preview(t, 80) if isinstance(t, str) else MISSING for t in question],
                          "target": merged["target_l"].fillna(merged["target_r"]).fillna(MISSING)})
    for name, suffix in zip(names, ("_l", "_r")):
        n_correct, n_drafts = merged["n_correct" + suffix], merged["n_drafts" + suffix]
        if p["kind"] == "question":
            shown[f"{name} drafts right"] = [MISSING if pd.isna(n) else f"{int(c)}/{int(n)}"
                                             for c, n in zip(n_correct, n_drafts)]
        else:
            shown[f"{name} answer"] = [MISSING if not isinstance(a, str) else preview(a, 30)
                                       for a in merged["answer" + suffix]]
            shown[f"{name} correct"] = [None if pd.isna(n) else yes_no_cell(bool(c)) for c, n in zip(n_correct, n_drafts)]
    return shown[columns].reset_index(drop=True)
