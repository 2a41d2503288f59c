"""The studio's onboarding text: ARTE in one paragraph with its paper, the loop as a figure (inline SVG, no
network), the glossary every tab's tooltips reuse (GLOSSARY, `term_info`), a three-step tour for educators,
and the banner that says what the demo shows and why its teacher and student are one model.

Plain strings and functions, no Gradio: the Guide tab (ui/guide.py) shows them, other tabs import
`term_info` for their `info=` texts, and tests check the words.
"""

from __future__ import annotations

import html

PAPER_URL = "https://arxiv.org/abs/2406.19227"
PAPER = ("Liu, Zhang, Yao, Cao, Hou and Li (2024): *Aligning Teacher with Student Preferences for Tailored Training "
         f"Data Generation*, arXiv:2406.19227 — [{PAPER_URL}]({PAPER_URL})")
SECOND_STUDENT = "gemma3-270m"  # the registry's optional second student: `pip install -e '.[second-student]'`

ARTE_PARAGRAPH = (
    "**ARTE** (*Aligning TeacheR with StudenT PreferencEs*) makes a large **teacher** model write training data "
    "that a small **student** model actually learns from. The teacher first writes **drafts**: practice questions, "
    "each with a worked reasoning (a *rationale*). Each draft is tried on the student as a one-shot example; the "
    "student's accuracy on held-out questions with that example in front of it is the draft's **one-shot (ICL) "
    "score**. Drafts the student did better with are paired against drafts it did worse with, and the teacher is "
    "trained on these **pairs** with **DPO** to prefer what helps this student. The aligned teacher then writes "
    "the tailored data, the student is fine-tuned on it (**SFT**), and its test accuracy is compared with the "
    f"student trained on the unaligned teacher's data. Paper: {PAPER}."
)

# One definition per term the studio shows; the tabs' tooltips (`info=`) read them through term_info.
GLOSSARY: dict[str, str] = {
    "run": "One pass of the ARTE loop under one config (task, teacher, student, sizes, seed); its id ends in a "
           "hash of that config, so a changed config is a new run.",
    "teacher": "The larger model that writes the training data (questions and rationales).",
    "student": "The small model the data is for: its answers decide which drafts are better.",
    "draft": "One question written by the teacher together with one rationale (worked reasoning) for it, in one "
             "of four reasoning techniques. Drafts are what ARTE scores and pairs.",
    "rationale": "The teacher's step-by-step reasoning for a question, ending in its answer.",
    "technique": "The style of reasoning the teacher was asked for: expert procedure, common sense, task "
                 "description or eliminating options.",
    "one-shot score": "A draft's ICL score: the share of the held-out preference questions the student answers "
                      "correctly when the draft is shown to it once as a worked example (in-context learning, no "
                      "training). Higher means the draft helps this student more.",
    "ICL": "In-context learning: the student sees an example in its prompt and learns from it without any "
           "change to its weights.",
    "preference items": "The held-out questions every draft is scored on (n_pref of them); a score's n.",
    "balanced accuracy": "Accuracy averaged over the answer labels (e.g. True and False) so that a student "
                         "always answering the same label scores at chance, not at the share of that label.",
    "pair": "Two drafts of the same task with different one-shot scores: the better one is 'chosen', the worse "
            "'rejected'. DPO trains the teacher to prefer the chosen side. A question pair compares two "
            "questions, a rationale pair two rationales of one question.",
    "margin": "A pair's chosen score minus its rejected score (in accuracy points): how much better the chosen "
              "draft helped the student. A small margin may be noise.",
    "p-value": "For a pair: the chance of a difference at least this large if both drafts helped equally "
               "(a paired test over the same preference items). Small p: the difference is unlikely to be luck.",
    "within noise": "A pair whose p-value is above the level (0.05): its margin could be chance, so it is weak "
                    "evidence for the teacher to learn from.",
    "binomial noise sd": "How much a score moves by chance alone: sqrt(p(1−p)/n) for accuracy p over n "
                         "preference items. Two scores closer than about two of these are not reliably different.",
    "influence": "An optional second signal (from Montessori-Instruct): how much one training step on the draft "
                 "lowers the student's loss on the preference items. Negative influence = the draft helps.",
    "DPO": "Direct Preference Optimization: training a model on (chosen, rejected) pairs so it makes the chosen "
           "kind of output more likely, without a separate reward model. ARTE applies it to the teacher.",
    "SFT": "Supervised fine-tuning: training the student on question-rationale examples to imitate them.",
    "arm": "One branch of a comparison: e.g. the student fine-tuned on the original teacher's data versus the one "
           "fine-tuned on the ARTE-aligned teacher's data. Each arm is evaluated on the same test questions.",
    "decision": "A reviewer's verdict on a pair (accept, swap, exclude, note). Decisions never change a pair: they "
                "are kept in an audit trail and applied when training data is exported.",
}
# Words people type or see for the same entry.
ALIASES = {"icl score": "one-shot score", "one-shot": "one-shot score", "one-shot/icl score": "one-shot score",
           "p": "p-value", "noise": "binomial noise sd", "drafts": "draft", "pairs": "pair", "arms": "arm"}

TOUR: list[tuple[str, str]] = [
    ("See what the teacher wrote and what helped",
     "Open **Drafts**. Each row is a question with one rationale; *one-shot score* is how often the student "
     "answered the preference questions right with that draft as its example. Sort by score: the top drafts "
     "are the teacher's best 'lessons' for this student, the bottom ones its worst."),
    ("Judge the pairs the teacher will learn from",
     "Open **Pairs**. Each pair puts a better-helping draft (chosen) beside a worse one (rejected); the *margin* "
     "says by how much, the p-value whether that could be luck. Turn on blind review, read both sides and "
     "record whether you agree: accept, swap, or exclude a pair (a wrong answer, a muddled rationale)."),
    ("See whether tailoring paid off",
     "Open **Analysis** and **Health**. Analysis compares the student trained on the original teacher's data "
     "with the one trained on the aligned teacher's data, each accuracy with its n and confidence interval; "
     "Health says whether the scores carried a signal at all (or were within noise)."),
]

_LOOP_STEPS = [("Task", "a few worked examples"), ("1 · Elicit", "teacher writes drafts"),
               ("2 · Score", "student's one-shot accuracy"), ("3 · Pairs", "better vs worse; people review"),
               ("4 · Align", "DPO on the teacher"), ("5 · Regenerate", "aligned teacher writes data"),
               ("Distill + evaluate", "SFT of the student, test")]


def loop_svg() -> str:
    """The ARTE loop as an inline SVG: a column of steps, and a dashed arrow from regenerate back to elicit
    (the aligned teacher answers elicit's prompts again); the step people review, the pairs, is shaded."""
    box_w, box_h, gap, top, left = 210, 58, 26, 12, 10
    centre, bulge = left + box_w / 2, left + box_w + 55
    boxes, arrows = [], []
    for i, (title, note) in enumerate(_LOOP_STEPS):
        y = top + i * (box_h + gap)
        fill = "#fff3e0" if title.startswith("3") else "#e8eaf6"
        boxes.append(f"<rect x='{left}' y='{y}' width='{box_w}' height='{box_h}' rx='8' fill='{fill}' "
                     f"stroke='#3949ab'/><text x='{centre}' y='{y + 24}' text-anchor='middle' font-weight='600' "
                     f"font-size='14'>{html.escape(title)}</text><text x='{centre}' y='{y + 43}' "
                     f"text-anchor='middle' font-size='12' fill='#444'>{html.escape(note)}</text>")
        if i:
            arrows.append(f"<line x1='{centre}' y1='{y - gap}' x2='{centre}' y2='{y - 4}' stroke='#3949ab' "
                          "stroke-width='2' marker-end='url(#arte-arrow)'/>")
    height = top + len(_LOOP_STEPS) * (box_h + gap)
    elicit_y, regen_y = top + (box_h + gap) + box_h / 2, top + 5 * (box_h + gap) + box_h / 2
    label_y = top + 2 * (box_h + gap) + box_h / 2
    loop_back = (f"<path d='M{left + box_w},{regen_y} C{bulge + 20},{regen_y} {bulge + 20},{elicit_y} "
                 f"{left + box_w + 4},{elicit_y}' fill='none' stroke='#3949ab' stroke-dasharray='5 4' "
                 "stroke-width='1.5' marker-end='url(#arte-arrow)'/>"
                 f"<text x='{bulge + 28}' y='{label_y}' font-size='12' fill='#3949ab'>the aligned</text>"
                 f"<text x='{bulge + 28}' y='{label_y + 15}' font-size='12' fill='#3949ab'>teacher answers</text>"
                 f"<text x='{bulge + 28}' y='{label_y + 30}' font-size='12' fill='#3949ab'>elicit's prompts</text>")
    width = bulge + 130
    return (f"<svg id='arte-loop' role='img' aria-label='The ARTE loop: elicit, score, pairs, align, regenerate, "
            f"distill and evaluate' viewBox='0 0 {width} {height}' width='100%' style='max-width:{width}px'>"
            "<defs><marker id='arte-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            "orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#3949ab'/></marker></defs>"
            + "".join(boxes) + "".join(arrows) + loop_back + "</svg>")


def glossary_key(term: str) -> str | None:
    """The glossary entry a word names (case and aliases aside), or None."""
    lowered = term.strip().lower()
    for key in GLOSSARY:
        if key.lower() == lowered:
            return key
    return ALIASES.get(lowered)


def term_info(*terms: str) -> str:
    """Tooltip text for a widget: the definitions of `terms`, each as 'term: definition'."""
    parts = []
    for term in terms:
        key = glossary_key(term)
        if key is None:
            raise KeyError(f"{term!r} is not in the studio's glossary")
        parts.append(f"{key}: {GLOSSARY[key]}")
    return " ".join(parts)


def glossary_markdown() -> str:
    entries = sorted(GLOSSARY.items(), key=lambda entry: entry[0].lower())
    return "\n".join(f"- **{term}** — {text}" for term, text in entries)


def tour_markdown() -> str:
    return "\n".join(f"{i}. **{title}.** {text}" for i, (title, text) in enumerate(TOUR, 1))


def demo_banner(runs: list[dict], on_space: bool, other_students: list[str] = ()) -> str:
    """What the page shows and why, for the runs in the store (dicts with run_id, teacher, student) and the
    students scored beside the runs' own (`other_students`).

    Empty when no run has one model as both teacher and student (then there is nothing to explain)."""
    same = [r for r in runs if r["teacher"] == r["student"]]
    if not same:
        return ""
    model = same[0]["teacher"]
    where = "this public Space" if on_space else "this studio"
    if other_students:
        second = (f"Some runs also hold a second real student, **{', '.join(other_students)}** (the two-student "
                  "transfer study): pick it in the Student menu to see its scores, pairs and evaluations; the Drafts "
                  "tab shows both students' accuracies side by side and the Study tab the transfer table. ")
    else:
        second = (f"A second student is an optional install (`pip install -e '.[second-student]'` adds "
                  f"{SECOND_STUDENT}); with a real teacher, set it in the Runs tab. ")
    return (f"**What you see:** {where} shows ARTE's whole loop run on a small CPU with **{model}** as both teacher "
            "and student. One model ships with the app (an ordinary Python package, no download), so the teacher "
            "and the student coincide: the demo shows how every step works and is inspected, not how much a strong "
            f"teacher helps a weak student. {second}New here? Open the **Guide** tab.")


SPACE_WARNING = ("**Public Space.** Your decisions go into a private copy of the data, visible only to you, and are "
                 "gone when you close the page or the Space restarts; nothing you do changes what others see. The "
                 "Space runs on a shared CPU: launching runs is off unless its owner turns it on.")


def store_banner(store, on_space: bool) -> str:
    """demo_banner for the runs a store lists (those that stored something)."""
    from arte_core.store import catalog

    runs = catalog.runs_with_data(store).to_dict("records")
    own = {r["student"] for r in runs}
    others = [s for s in catalog.students_with_scores(store) if s not in own]
    return demo_banner(runs, on_space, others)
