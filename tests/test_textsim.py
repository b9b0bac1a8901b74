"""Idea similarity: TF-IDF cosine equal to scikit-learn's, with its edge cases pinned down."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.protocols.facilitated.idea_similarity import mean_pairwise_similarity

WORDS = ["transit", "Transit", "bike", "lanes", "cost", "the", "a", "équité", "co2", "x", "tram-lines", "40%"]
texts = st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), min_size=2, max_size=8)


def sklearn_mean_pairwise(docs: list[str]) -> float | None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        m = TfidfVectorizer().fit_transform(docs).toarray()
    except ValueError:  # empty vocabulary
        return None
    sims = m @ m.T
    return float(np.mean([sims[i, j] for i, j in itertools.combinations(range(len(docs)), 2)]))


def assert_matches_scikit_learn(docs: list[str]) -> None:
    ours, ref = mean_pairwise_similarity(docs), sklearn_mean_pairwise(docs)
    if ref is None:
        assert ours is None
    else:
        assert ours == pytest.approx(ref, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(texts)
def test_matches_scikit_learn_tfidf_cosine(docs: list[str]) -> None:
    assert_matches_scikit_learn(docs)


@settings(max_examples=50, deadline=None)
@given(texts, st.randoms())
def test_does_not_depend_on_who_spoke_first(docs: list[str], rnd: object) -> None:
    shuffled = list(docs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = mean_pairwise_similarity(docs), mean_pairwise_similarity(shuffled)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert a == pytest.approx(b, abs=1e-12)


def test_edge_cases() -> None:
    assert mean_pairwise_similarity(["only one speaker"]) is None
    assert mean_pairwise_similarity(["", "  "]) is None  # no words at all
    assert mean_pairwise_similarity(["same words here", "Same words here!"]) == pytest.approx(1.0)
    assert mean_pairwise_similarity(["transit now", "bikes later"]) == pytest.approx(0.0, abs=1e-12)
    # A silent member pulls the mean down instead of being dropped: 1 similar pair of 3.
    assert mean_pairwise_similarity(["more trams", "more trams", ""]) == pytest.approx(1 / 3)


# Any ASCII: punctuation, digits, underscores and one-letter words, which take the
# fast tokenizer; one non-ASCII text sends the whole round through the regular expression.
ascii_texts = st.lists(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60), min_size=2, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(ascii_texts, st.booleans())
def test_ascii_and_unicode_tokenizing_agree_with_scikit_learn(docs: list[str], add_unicode: bool) -> None:
    if add_unicode:
        docs = [*docs, "Équité for the K\u212aelvin tram"]
    assert_matches_scikit_learn(docs)
