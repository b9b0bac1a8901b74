"""Who hears whom: `tables` audiences are the tables, built without a quadratic graph."""

from __future__ import annotations

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from assembly.core.spec import TopologySpec
from assembly.core.topology import audiences, build_graph


def composed_tables(n: int, size: int) -> nx.Graph:
    """The construction `tables` used before: one `nx.compose` per table (quadratic)."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for start in range(0, n, size):
        g = nx.compose(g, nx.complete_graph(range(start, min(start + size, n))))
    return g


def hoods(g: nx.Graph) -> list[tuple[int, ...]]:
    return [tuple(sorted({i, *g.neighbors(i)})) for i in range(g.number_of_nodes())]


@given(n=st.integers(1, 60), size=st.integers(2, 13))
def test_tables_match_the_composed_graph(n: int, size: int) -> None:
    spec = TopologySpec(kind="tables", table_size=size)
    old = composed_tables(n, size)
    assert nx.utils.graphs_equal(build_graph(spec, n, seed=0), old)
    groups, of = audiences(spec, n, seed=0)
    assert [tuple(groups[of[i]]) for i in range(n)] == hoods(old)


@given(n=st.integers(1, 2_000), size=st.integers(2, 1000))
def test_tables_partition_the_assembly(n: int, size: int) -> None:
    groups, of = audiences(TopologySpec(kind="tables", table_size=size), n, seed=0)
    seats = [i for g in groups for i in g]
    assert sorted(seats) == list(range(n))  # every member at exactly one table
    assert all(1 <= len(g) <= size for g in groups)
    assert sum(len(g) < size for g in groups) <= 1  # only the last table may be short
    assert all(of[i] == a for a, g in enumerate(groups) for i in g)  # everyone at a table hears that table
