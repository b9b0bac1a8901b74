"""Idea convergence: how alike members' words are, beside how alike their positions are.

Action convergence (dispersion of support scores, modal share) can rise while the
language members use barely changes: agents may switch their vote without taking on
each other's arguments. To let users test that, each round also gets a lexical
measure of how similar its messages are: the mean pairwise cosine similarity of
their TF-IDF vectors (0 = no shared vocabulary, 1 = identical word distributions).

The vectors are exactly scikit-learn's `TfidfVectorizer()` with its defaults
(lower-cased words of two or more word characters, raw term counts, smoothed idf
`ln((1 + n) / (1 + df)) + 1`, L2-normalised rows); tests check the figure against
scikit-learn itself. It is computed here in plain Python because importing
scikit-learn costs over three seconds per process, which every run, replay and
sweep worker would pay for one number per round.

TF-IDF is fitted per round on that round's messages only, so the figure is a pure
function of the round's text (summary.json stays reproducible from the transcript),
and words every member uses weigh less than distinctive ones.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

# scikit-learn's default `token_pattern`.
TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tfidf_vectors(texts: Sequence[str]) -> list[dict[str, float]]:
    """L2-normalised TF-IDF vectors (sparse, as dicts), one per text."""
    counts = [Counter(TOKEN.findall(t.lower())) for t in texts]
    n = len(counts)
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    idf = {w: math.log((1 + n) / (1 + d)) + 1.0 for w, d in df.items()}
    vectors = []
    for c in counts:
        v = {w: tf * idf[w] for w, tf in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        vectors.append({w: x / norm for w, x in v.items()} if norm > 0 else {})
    return vectors


def mean_pairwise_similarity(texts: Sequence[str]) -> float | None:
    """Mean cosine similarity over all pairs of `texts` under a TF-IDF fit on them.

    None when there are fewer than two texts or no words at all (nothing to compare).
    A text without words still counts as a member who said nothing in common with
    anyone: it contributes zero-similarity pairs rather than being dropped.

    The same arithmetic as summing `tfidf_vectors` (same operands, same order), done
    without building the normalised vectors, and tokenising each distinct text
    once: this runs for every round of every run's summary.
    """
    docs = [t for t in texts if isinstance(t, str)]
    if len(docs) < 2:
        return None
    tokenised: dict[str, Counter[str]] = {}
    counts = []
    for t in docs:
        c = tokenised.get(t)
        if c is None:
            c = tokenised[t] = Counter(TOKEN.findall(t.lower()))
        counts.append(c)
    n = len(counts)
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    idf = {w: math.log((1 + n) / (1 + d)) + 1.0 for w, d in df.items()}
    # Rows are unit vectors, so x_i . x_j is the cosine, and the sum over pairs i < j
    # is (|sum_i x_i|^2 - sum_i |x_i|^2) / 2: linear in the text, never n x n.
    total: dict[str, float] = {}
    self_sq = 0
    for c in counts:
        v = {w: tf * idf[w] for w, tf in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        if norm > 0:
            self_sq += 1
            for w, x in v.items():
                total[w] = x / norm + total.get(w, 0.0)
    if not self_sq:
        return None
    pairs = len(docs) * (len(docs) - 1) / 2
    value = (sum(x * x for x in total.values()) - self_sq) / 2 / pairs
    return max(0.0, min(1.0, value))
