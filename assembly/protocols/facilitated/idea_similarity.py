"""Idea convergence: how alike members' words are, beside how alike their positions are.

Action convergence (dispersion of support scores, modal share) can rise while the
language members use barely changes: agents may switch their vote without taking on
each other's arguments. To let users test that, each round also gets a lexical
measure of how similar its messages are: the mean pairwise cosine similarity of
their TF-IDF vectors (0 = no shared vocabulary, 1 = identical word distributions).

The vectors are exactly scikit-learn's `TfidfVectorizer()` with its defaults
(lower-cased words of two or more word characters, raw term counts, smoothed idf
`ln((1 + n) / (1 + df)) + 1`, L2-normalised rows); tests check the figure against
scikit-learn itself. It is computed here with numpy alone because importing
scikit-learn costs over three seconds per process, which every run, replay and
sweep worker would pay for one number per round.

TF-IDF is fitted per round on that round's messages only, so the figure is a pure
function of the round's text (summary.json stays reproducible from the transcript),
and words every member uses weigh less than distinctive ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import chain

import numpy as np

# scikit-learn's default `token_pattern`.
TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _token_lists(docs: Sequence[str]) -> list[list[str]] | list[list[bytes]]:
    """Each text's tokens as scikit-learn's default analyzer finds them, in order,
    except that all-ASCII input may also yield one-character tokens (the caller
    drops them).

    For ASCII text, `\\w` is exactly `[A-Za-z0-9_]`, so the tokens are the runs
    of those bytes, found by `bytes.translate` and `split` in C: several times
    faster than the regular expression, which is kept for any other text. Either
    way one call sees one kind of token, so a word is always one key."""
    if all(t.isascii() for t in docs):
        return [t.lower().encode().translate(_WORD_BYTES).split() for t in docs]
    return [TOKEN.findall(t.lower()) for t in docs]


# Word bytes of ASCII (`\w`: letters, digits, underscore) to themselves, the rest to a space.
_WORD_BYTES = bytes(b if chr(b).isalnum() or b == ord("_") else ord(" ") for b in range(128)) + b" " * 128


def mean_pairwise_similarity(texts: Sequence[str]) -> float | None:
    """Mean cosine similarity over all pairs of `texts` under a TF-IDF fit on them.

    None when there are fewer than two texts or no words at all (nothing to compare).
    A text without words still counts as a member who said nothing in common with
    anyone: it contributes zero-similarity pairs rather than being dropped.

    Computed on a (texts x words) count matrix in numpy: this runs for every round
    of every run's summary, where looping over words in Python took a third of the
    summary's time.
    """
    docs = [t for t in texts if isinstance(t, str)]
    n = len(docs)
    if n < 2:
        return None
    per_doc = _token_lists(docs)
    flat = list(chain.from_iterable(per_doc))
    column = {w: i for i, w in enumerate(dict.fromkeys(flat))}
    width = len(column)
    words = np.fromiter(map(column.__getitem__, flat), dtype=np.intp, count=len(flat))
    rows = np.repeat(np.arange(n), [len(tokens) for tokens in per_doc])
    counts = np.bincount(rows * width + words, minlength=n * width).reshape(n, width).astype(float)
    single = [i for w, i in column.items() if len(w) < 2]  # not tokens to scikit-learn
    if single:
        counts[:, single] = 0.0
    # Machine-independent arithmetic, like the sim's (docs/sim_model.md): the idf's
    # logarithm from libm rather than numpy's SIMD kernels, sums as numpy's
    # reductions (in a fixed order) rather than BLAS products.
    df = np.count_nonzero(counts, axis=0).tolist()
    x = counts * np.array([math.log((1 + n) / (1 + d)) + 1.0 for d in df])
    norms = np.sqrt(np.add.reduce(x * x, axis=1))
    spoke = norms > 0
    self_sq = int(np.count_nonzero(spoke))
    if not self_sq:
        return None
    # Rows are unit vectors, so x_i . x_j is the cosine, and the sum over pairs i < j
    # is (|sum_i x_i|^2 - sum_i |x_i|^2) / 2: linear in the text, never n x n.
    total = (x[spoke] / norms[spoke, None]).sum(axis=0)
    pairs = n * (n - 1) / 2
    value = (float(np.add.reduce(total * total)) - self_sq) / 2 / pairs
    return max(0.0, min(1.0, value))
