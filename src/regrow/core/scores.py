"""Scores: pass@k and the CodeMaker-style edit-distance figures. Formulas: docs/metrics.md."""

from __future__ import annotations

from math import comb

from rapidfuzz.distance import Levenshtein


def edit_scores(original: str, regenerated: str) -> tuple[int, float, float]:
    """(distance, similarity, error) between two texts.

    distance   = Levenshtein distance (insertions, deletions, substitutions of characters)
    similarity = 1 - distance / max(len(original), len(regenerated))   (1.0 when both are empty)
    error      = distance / len(original)   (the share of the original that had to change)
    """
    dist = Levenshtein.distance(original, regenerated)
    longest = max(len(original), len(regenerated))
    similarity = 1.0 - dist / longest if longest else 1.0
    error = dist / len(original) if original else float(bool(regenerated))
    return dist, similarity, error


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al., 2021): 1 - C(n-c, k) / C(n, k).

    n samples, c of them correct. Requires k <= n.
    """
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)
