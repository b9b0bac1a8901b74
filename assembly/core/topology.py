"""Who hears whom: the communication graph, built with networkx.

The view builder only needs *audiences*: the distinct closed neighbourhoods of the
hearing graph (a member always hears itself). Members with identical neighbourhoods
share one public record, which is what keeps all-to-all assemblies of thousands of
members cheap: all-to-all is a single audience, tables are one audience per table.
All-to-all is never materialised as a graph, because a complete graph costs O(n^2)
memory (50 million edges at 10,000 members) and says nothing a list does not.
"""

from __future__ import annotations

import itertools

import networkx as nx

from assembly.core.seeding import derive_seed
from assembly.core.spec import TopologySpec


def build_graph(spec: TopologySpec, n: int, seed: int) -> nx.Graph:
    """The hearing graph for `tables` and `small_world` (for analysis and plots)."""
    if spec.kind == "tables":
        # One clique per table, added in place: O(n · table_size) edges in all.
        g = nx.Graph()
        g.add_nodes_from(range(n))
        for table in _tables(n, spec.table_size):
            g.add_edges_from(itertools.combinations(table, 2))
        return g
    if spec.kind == "small_world":
        k = max(2, min(spec.k, n - 1) // 2 * 2)  # Watts–Strogatz needs an even ring degree
        if n <= k + 1:
            return nx.complete_graph(n)
        return nx.connected_watts_strogatz_graph(n, k, spec.p, tries=200, seed=derive_seed(seed, "topology") % 2**32)
    return nx.complete_graph(n)


def _tables(n: int, size: int) -> list[list[int]]:
    """Consecutive seats in tables of `size` (the last one may be smaller)."""
    return [list(range(start, min(start + size, n))) for start in range(0, n, size)]


def audiences(spec: TopologySpec, n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """(distinct audiences as sorted member-index lists, audience index of each member)."""
    if spec.kind == "all_to_all" or n <= 1:
        return [list(range(n))], [0] * n
    if spec.kind == "tables":
        # A table is a clique and nobody hears across tables, so each member's
        # closed neighbourhood is its table: no graph needed, linear in n.
        tables = _tables(n, spec.table_size)
        return tables, [i // spec.table_size for i in range(n)]
    graph = build_graph(spec, n, seed)
    index: dict[tuple[int, ...], int] = {}
    groups: list[list[int]] = []
    of: list[int] = []
    for i in range(n):
        hood = tuple(sorted({i, *graph.neighbors(i)}))
        if hood not in index:
            index[hood] = len(groups)
            groups.append(list(hood))
        of.append(index[hood])
    return groups, of
