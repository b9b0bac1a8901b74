"""Idea convergence: how alike members' words are, beside how alike their positions are.

Action convergence (dispersion of support scores, modal share) can rise while the
language members use barely changes: agents may switch their vote without taking on
each other's arguments. To let users test that, each round also gets a lexical
measure of how similar its messages are: the mean pairwise cosine similarity of
their TF-IDF vectors (0 = no shared vocabulary, 1 = identical word distributions).

TF-IDF is fitted per round on that round's messages only, so the figure is a pure
function of the round's text (summary.json stays reproducible from the transcript)
and words every member uses in a round weigh less than distinctive ones.
scikit-learn is imported lazily: it is only needed once a round has two messages.
"""

from __future__ import annotations

from collections.abc import Sequence


def mean_pairwise_similarity(texts: Sequence[str]) -> float | None:
    """Mean cosine similarity over all pairs of `texts` under a TF-IDF fit on them.

    None when there are fewer than two texts or no words at all (nothing to compare).
    A text without words still counts as a member who said nothing in common with
    anyone: it contributes zero-similarity pairs rather than being dropped.
    """
    docs = [t for t in texts if isinstance(t, str)]
    if len(docs) < 2:
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(lowercase=True, norm="l2").fit_transform(docs)
    except ValueError:  # empty vocabulary: nobody used a single word
        return None
    n = matrix.shape[0]
    # Rows are L2-normalised, so x_i . x_j is the cosine. The sum over pairs i < j is
    # (|sum_i x_i|^2 - sum_i |x_i|^2) / 2: linear in the text, never an n x n matrix,
    # which matters for 2,000-member assemblies.
    total = matrix.sum(axis=0)
    sum_sq = float((total @ total.T).item())
    self_sq = float(matrix.multiply(matrix).sum())
    pairs = n * (n - 1) / 2
    return max(0.0, min(1.0, (sum_sq - self_sq) / 2 / pairs))
