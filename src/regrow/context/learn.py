"""The ranking learned on the repository itself: weights of the context engine's features.

Every function of the source whose body uses at least one repository definition is a labelled
example, as a query is in a search engine: its features are what the engine computes for it in
task mode (its body hidden: signature, docstring, class, module, tests, neighbours, graph,
words), and its relevant set is what its body uses (the static graph). A logistic model
(scikit-learn, balanced classes) over the candidates' feature values gives one non-negative
weight per feature, rescaled to the hand weights' total so the definitions' scores stay
comparable with the other channels' priors; candidates in the example's own file and in other
files get a weight vector each (the packer gives the two pools their own room).

This module is the fitting and its record (`RankingModel`); the engine computes the examples
(`regrow.context.engine.fit_ranking`, `ensure_ranking`), so it imports nothing from it.

**Leaving the target out**: examples are split in ``K`` folds by file (a hash of the path).
The weights used for a target are those fitted on the folds its file is not in, so neither
the target's own example nor any other function of its file contributes to them. With fewer
than `MIN_EXAMPLES` examples (or `MIN_POSITIVES` positives) in a fold's training set, that
fold falls back to the hand weights. The budget split (the share of the budget that items of
the target's own file may take) is learned the same way: the share of in-file dependencies
among the training examples' dependencies, clamped to [`OWN_MIN`, `OWN_MAX`].

Fitted once per source, on the first `ContextEngine.load` that finds none stored, and kept in
the store (`regrow.store.ranking`), tagged with the feature list and the features' version so
a change of features fits again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from regrow.store import Store
from regrow.store.ranking import load_ranking, save_ranking

FORMAT = "regrow-ranking/1"
FOLDS = 5
MAX_EXAMPLES = 80  # sampled by a seeded hash; each costs one task-mode ranking (~0.1 s)
MIN_EXAMPLES = 25  # per fold's training set, else the hand weights
MIN_POSITIVES = 25
SHRINK = 0.5  # fitted weights are shrunk this far toward the hand weights (a prior: 80 examples are few)
OWN_MIN, OWN_MAX = 0.1, 0.2  # the task prompt shows the target's file whole: its items mostly repeat it


@dataclass(frozen=True)
class RankingModel:
    """Per fold: the weights (feature -> weight) of candidates in other files and of candidates
    in the target's own file (fitted apart: the packer gives the two pools their own room), and
    the own-file budget share."""

    features: tuple[str, ...]
    folds: int
    weights: tuple[dict, ...]
    own_share: tuple[float, ...]
    learned: tuple[bool, ...]  # False where that fold fell back to the hand weights
    examples: int
    positives: int
    seconds: float
    note: str = ""
    per_fold_examples: tuple[int, ...] = field(default=())
    own_weights: tuple[dict, ...] = field(default=())
    version: int = 0  # of the features' meaning (the engine's FEATURES_VERSION): another one fits again

    def fold_of(self, path: str) -> int:
        return fold_of(path, self.folds)

    def for_path(self, path: str) -> tuple[dict, dict, float]:
        """(weights of other files' candidates, weights of own-file candidates, own share) for a
        target in ``path``: fitted without any example of its fold."""
        k = self.fold_of(path)
        return self.weights[k], (self.own_weights or self.weights)[k], self.own_share[k]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "features": list(self.features), "folds": self.folds,
                "weights": [dict(w) for w in self.weights], "own_share": list(self.own_share),
                "learned": list(self.learned), "examples": self.examples, "positives": self.positives,
                "seconds": self.seconds, "note": self.note, "per_fold_examples": list(self.per_fold_examples),
                "own_weights": [dict(w) for w in self.own_weights], "version": self.version}

    @classmethod
    def from_dict(cls, d: dict) -> "RankingModel":
        return cls(tuple(d["features"]), int(d["folds"]), tuple(d["weights"]), tuple(d["own_share"]),
                   tuple(d["learned"]), int(d["examples"]), int(d["positives"]), float(d["seconds"]),
                   d.get("note", ""), tuple(d.get("per_fold_examples", ())), tuple(d.get("own_weights", ())),
                   int(d.get("version", 0)))

    def summary(self, hand: dict) -> dict:
        """The mean learned weight of each feature over the folds that learned, beside the hand one."""
        def mean(ws) -> dict:
            ws = [w for w, ok in zip(ws, self.learned) if ok]
            return {k: round(sum(w[k] for w in ws) / len(ws) if ws else hand[k], 3) for k in self.features}

        return {"learned_folds": sum(self.learned), "folds": self.folds, "examples": self.examples,
                "positives": self.positives, "note": self.note,
                "weights": mean(self.weights), "own_file_weights": mean(self.own_weights or self.weights),
                "hand_weights": {k: hand[k] for k in self.features},
                "own_share": round(sum(self.own_share) / len(self.own_share), 3)}


def fold_of(path: str, folds: int) -> int:
    return int(hashlib.sha256(f"regrow-fold:{path}".encode()).hexdigest(), 16) % folds


def hand_model(note: str, hand: dict, hand_share: float, folds: int = FOLDS) -> RankingModel:
    features = tuple(hand)
    return RankingModel(features, folds, tuple(dict(hand) for _ in range(folds)),
                        tuple(hand_share for _ in range(folds)), tuple(False for _ in range(folds)),
                        0, 0, 0.0, note, tuple(0 for _ in range(folds)), tuple(dict(hand) for _ in range(folds)))


def fit(examples: list[tuple[str, list[list[float]], list[int], list[bool], int, int]], hand: dict,
        hand_share: float, *, folds: int = FOLDS, seconds: float = 0.0) -> RankingModel:
    """Fit every fold's weights on the examples of the other folds.

    ``examples``: (file path, feature rows in the order of ``hand``'s keys, labels, whether each
    candidate is in the example's own file, in-file uses, all uses) per example function;
    ``hand``: the hand weights (their keys are the features).
    """
    t0 = time.perf_counter()
    features = tuple(hand)
    if not examples:
        return hand_model("no function of this source uses a repository definition", hand, hand_share, folds)
    by_fold: dict[int, list[tuple]] = {k: [] for k in range(folds)}
    for path, rows, labels, own, in_file, total in examples:
        if sum(labels):
            by_fold[fold_of(path, folds)].append((rows, labels, in_file, total, own))
    try:
        import sklearn.linear_model  # noqa: F401
    except ImportError:
        return hand_model("scikit-learn is not installed: hand weights", hand, hand_share, folds)
    weights, own_weights, shares, learned, counts = [], [], [], [], []
    hand_total = sum(hand.values())
    for k in range(folds):
        train = [ex for j in range(folds) if j != k for ex in by_fold[j]]
        counts.append(len(train))
        positives = sum(sum(ex[1]) for ex in train)
        in_file = sum(ex[2] for ex in train)
        total = sum(ex[3] for ex in train)
        shares.append(min(OWN_MAX, max(OWN_MIN, in_file / total)) if total else hand_share)
        if len(train) < MIN_EXAMPLES or positives < MIN_POSITIVES:
            weights.append(dict(hand))
            own_weights.append(dict(hand))
            learned.append(False)
            continue
        pools = []
        for mine in (False, True):
            rows = [r for ex in train for r, o in zip(ex[0], ex[4]) if o == mine]
            ys = [y for ex in train for y, o in zip(ex[1], ex[4]) if o == mine]
            pools.append(_logistic(rows, ys, hand, hand_total) if sum(ys) >= MIN_POSITIVES // 2 and
                         len(ys) > sum(ys) else dict(hand))
        weights.append(pools[0])
        own_weights.append(pools[1])
        learned.append(True)
    n = sum(len(v) for v in by_fold.values())
    pos = sum(sum(ex[1]) for v in by_fold.values() for ex in v)
    note = "" if all(learned) else (f"{folds - sum(learned)} of {folds} folds use the hand weights "
                                    f"(fewer than {MIN_EXAMPLES} examples or {MIN_POSITIVES} positives to learn from)")
    return RankingModel(features, folds, tuple(weights), tuple(shares), tuple(learned), n, pos,
                        seconds + time.perf_counter() - t0, note, tuple(counts), tuple(own_weights))


def _logistic(rows: list[list[float]], labels: list[int], hand: dict, total: float) -> dict:
    """Non-negative weights of a logistic model, rescaled to sum to ``total``, then shrunk
    toward the hand weights by `SHRINK`."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=int)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500)
    model.fit(x, y)
    coef = np.clip(model.coef_[0], 0.0, None)
    if coef.sum() <= 0:
        return dict(hand)
    return {k: float((1 - SHRINK) * c * total / coef.sum() + SHRINK * hand[k]) for k, c in zip(hand, coef)}


def stored_model(store: Store, source_key: str, features: tuple[str, ...], version: int = 0) -> RankingModel | None:
    """The stored model of ``source_key`` when it was fitted on ``features`` of ``version``."""
    stored = load_ranking(store, source_key)
    if stored is not None and stored[0] == FORMAT and tuple(stored[1].get("features", ())) == tuple(features) \
            and int(stored[1].get("version", 0)) == version:
        return RankingModel.from_dict(stored[1])
    return None


def store_model(store: Store, source_key: str, model: RankingModel) -> None:
    save_ranking(store, source_key, FORMAT, model.to_dict())
