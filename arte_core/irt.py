"""Two-parameter item response theory (2PL) over drafts × preference items, for `score.selection: irt`:
the fit (girth's marginal maximum likelihood), the drafts' abilities, each item's information, and the
n_pref items that carry the most information over the drafts' ability range.

The model: P(draft d answers item i correctly) = 1 / (1 + exp(-a_i (θ_d - b_i))), with discrimination
a_i, difficulty b_i and the draft's ability θ_d ~ N(0, 1). docs/architecture.md says why girth.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

FIT_NAME = "girth 2PL MML/EAP"


@dataclass(frozen=True)
class ItemFit:
    """The 2PL fit of a drafts × items matrix of correct answers.

    difficulty and discrimination are NaN for items no fit can place: every draft got them right, or
    every draft got them wrong (their likelihood rises without bound as the difficulty runs off). Those
    items carry no information about how the drafts differ: their information is 0.
    """

    difficulty: np.ndarray
    discrimination: np.ndarray
    abilities: np.ndarray  # one per draft (EAP), empty when no fit was made
    information: np.ndarray  # each item's Fisher information averaged over `abilities`
    fit: str  # FIT_NAME, or 'skipped: <why>'

    @property
    def fitted(self) -> bool:
        return not self.fit.startswith("skipped")


def constant_items(correct: np.ndarray) -> np.ndarray:
    """Items every draft (row) got right, or every draft got wrong."""
    share = correct.mean(axis=0)
    return (share == 0) | (share == 1)


def item_information(abilities: np.ndarray, difficulty: np.ndarray, discrimination: np.ndarray) -> np.ndarray:
    """Fisher information a² P (1 − P) of each item (columns) at each ability (rows)."""
    z = discrimination[None, :] * (abilities[:, None] - difficulty[None, :])
    p = 1.0 / (1.0 + np.exp(-z))
    return discrimination[None, :] ** 2 * p * (1.0 - p)


def fit_2pl(correct: np.ndarray) -> ItemFit:
    """Fit the 2PL to `correct` (drafts × items, booleans) with girth's MML/EAP estimator (a Rayleigh
    prior on the discriminations keeps them finite on the few dozen drafts a pilot has), on the items
    that separate the drafts; then the drafts' EAP abilities and each item's mean information over them.

    Fewer than two separating items, or fewer than two drafts, leave nothing to fit: `fit` says so and
    every information is 0 (the caller keeps its candidates' own order)."""
    correct = np.asarray(correct, dtype=bool)
    n_drafts, n_items = correct.shape
    nan = np.full(n_items, np.nan)
    varying = ~constant_items(correct) if n_drafts else np.zeros(n_items, dtype=bool)
    why = None
    if n_drafts < 2:
        why = f"skipped: {n_drafts} pilot draft(s); a fit needs at least 2"
    elif varying.sum() < 2:
        why = (f"skipped: only {int(varying.sum())} of {n_items} candidate items separate the pilot drafts "
               "(every draft got the others all right or all wrong)")
    if why:
        return ItemFit(nan, nan.copy(), np.empty(0), np.zeros(n_items), why)
    from girth import ability_eap, twopl_mml_eap  # imported here: only an 'irt' run pays for it

    data = correct[:, varying].T.astype(int)  # girth wants items × people
    with warnings.catch_warnings():
        # girth's optimiser warns on the log of an exact 0 in its quadrature tails; the estimates are finite.
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate = twopl_mml_eap(data)
        abilities = np.asarray(ability_eap(data, estimate["Difficulty"], estimate["Discrimination"]), dtype=float)
    difficulty, discrimination = nan.copy(), nan.copy()
    difficulty[varying] = estimate["Difficulty"]
    discrimination[varying] = estimate["Discrimination"]
    information = np.zeros(n_items)
    information[varying] = item_information(abilities, difficulty[varying], discrimination[varying]).mean(axis=0)
    return ItemFit(difficulty, discrimination, abilities, information, FIT_NAME)


def most_informative(information: np.ndarray, n: int) -> list[int]:
    """The indices of the `n` items with the most information, in item order; equal information goes to
    the earlier item (a candidate pool is stored in its stratified draw order, so with no fit at all the
    first n candidates are kept: the 'balanced' draw)."""
    order = sorted(range(len(information)), key=lambda i: (-float(information[i]), i))
    return sorted(order[:n])
