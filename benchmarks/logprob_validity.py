"""What the answer log-probability ranks, on a stored run scored with `score.metric: answer_logprob`.

On a label task log P(target) can be reliable without reading the question: a student that answers at
chance gives its highest values to drafts that leave it undecided between the labels. This script sets
the stored metric beside the label contrast, log P(target) − log P(the other label). A draft cannot raise
the contrast by label confidence alone, since a push toward one label helps half of a balanced split and
hurts the other half. The script measures the contrast's log-probabilities afresh (one forward pass per
item, as the score stage does). It prints, as JSON, the split-half reliability with its 95% CI of
accuracy, balanced accuracy, answer_logprob and label_contrast. It also prints Spearman's rho with a
Fisher-z CI of each draft's mean answer_logprob against its balanced accuracy, its label-copy rate, its
mean contrast and −|its push toward one label|. Two-label tasks only. docs/results.md has the demo's
numbers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/logprob_validity.py --db arte.duckdb --run RUN \
        --student smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from arte_core.models import load_generator
from arte_core.models.logprob import answer_logprobs
from arte_core.prompts import icl_prompt
from arte_core.stages.score import answer_context, answer_target, demo_answer, student_prompt
from arte_core.stats import spearman, spearman_ci, split_half_ci, split_half_reliability
from arte_core.store import Store, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--student", default="smollm2-135m-instruct")
    parser.add_argument("--icl-format", default="completion")
    args = parser.parse_args()
    store = Store(args.db, read_only=True)
    items = store.rows("SELECT item_index, input, target FROM pref_items WHERE run_id = ? ORDER BY item_index", [args.run])
    targets = [i["target"].strip() for i in items]
    labels = sorted(set(targets))
    if len(labels) != 2:
        raise SystemExit(f"a two-label task is needed; the preference targets are {labels}")
    other = {labels[0]: labels[1], labels[1]: labels[0]}
    logprob, correct = signals.logprob_item_matrix(store, args.run, args.student), \
        signals.icl_item_matrix(store, args.run, args.student)
    if not logprob["rationale_ids"]:
        raise SystemExit("no answer log-probabilities stored: run `arte score --score.metric answer_logprob` first")
    rows = [correct["rationale_ids"].index(d) for d in logprob["rationale_ids"]]
    drafts = {r["rationale_id"]: r for r in store.rationales(args.run, "draft")}
    generator = load_generator(args.student)
    contrast = np.zeros_like(logprob["matrix"])
    for d, rid in enumerate(logprob["rationale_ids"]):
        draft = drafts[rid]
        contexts = [answer_context(student_prompt(generator, icl_prompt(draft["question"], draft["text"],
                                                                         demo_answer(draft), i["input"]), args.icl_format),
                                   args.icl_format) for i in items]
        wrong = answer_logprobs(generator, contexts, [answer_target(other[t]) for t in targets])
        contrast[d] = logprob["matrix"][d] - np.array([w.total for w in wrong])
    out: dict = {"n_drafts": contrast.shape[0], "n_items": contrast.shape[1],
                 "mean_label_contrast_nats": float(contrast.mean())}
    for name, matrix, balance in [("accuracy", correct["matrix"][rows], None),
                                  ("balanced_accuracy", correct["matrix"][rows], targets),
                                  ("answer_logprob", logprob["matrix"], None), ("label_contrast", contrast, None)]:
        out[f"reliability {name}"] = dict(r=split_half_reliability(matrix, 200, 0, strata=targets, labels=balance),
                                          ci=split_half_ci(matrix, 200, 1000, 0, strata=targets, labels=balance))
    scores = {r["rationale_id"]: r for r in store.draft_scores(args.run, args.student)}
    first = np.array([t == labels[0] for t in targets])
    push = (contrast[:, first].mean(axis=1) - contrast[:, ~first].mean(axis=1)) / 2
    mean_logprob = logprob["matrix"].mean(axis=1)
    for name, values in [("balanced_accuracy", [scores[d]["balanced_accuracy"] for d in logprob["rationale_ids"]]),
                         ("label_copy_rate", [scores[d]["label_copy_rate"] for d in logprob["rationale_ids"]]),
                         ("mean_label_contrast", contrast.mean(axis=1)), ("-|label push|", -np.abs(push))]:
        rho = spearman(mean_logprob, values)
        out[f"spearman(mean answer_logprob, {name})"] = dict(rho=rho, ci=spearman_ci(rho, len(values)))
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
