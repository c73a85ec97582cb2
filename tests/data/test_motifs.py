"""Motif adjacency: brute force over all node triples, networkx census, batching, bad input."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data

from graphkit.data.motifs import (
    MOTIFS,
    AddMotifAdjacency,
    motif_adjacency,
    motif_key,
    motifs_from_data,
    normalize_adjacency,
    parse_motifs,
)
from graphkit.errors import GraphError

# Each motif on nodes (0, 1, 2); node 0 is the centre of the open ones.
PATTERNS = {
    "M1": [(0, 1), (1, 2), (2, 0)],
    "M2": [(0, 1), (1, 2), (2, 0), (0, 2)],
    "M3": [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2)],
    "M4": [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)],
    "M5": [(0, 1), (1, 2), (0, 2)],
    "M6": [(0, 1), (0, 2), (1, 2), (2, 1)],
    "M7": [(1, 0), (2, 0), (1, 2), (2, 1)],
    "M8": [(0, 1), (0, 2)],
    "M9": [(1, 0), (0, 2)],
    "M10": [(1, 0), (2, 0)],
    "M11": [(0, 1), (1, 0), (0, 2)],
    "M12": [(0, 1), (1, 0), (2, 0)],
    "M13": [(0, 1), (1, 0), (0, 2), (2, 0)],
}


def canon(edges: list[tuple[int, int]]) -> tuple:
    return min(tuple(sorted((p[u], p[v]) for u, v in edges))
               for p in itertools.permutations(range(3)))


CANON = {canon(e): name for name, e in PATTERNS.items()}
assert len(CANON) == 13


def brute_force(edges: dict[tuple[int, int], float], n: int, pairs: str) -> dict[str, dict]:
    """Enumerate every node triple and every subset of its edges; classify each subset."""
    out: dict[str, dict] = {m: {} for m in MOTIFS}
    for tri in itertools.combinations(range(n), 3):
        present = [(u, v) for u in tri for v in tri if u != v and (u, v) in edges]
        local = {v: i for i, v in enumerate(tri)}
        for r in range(2, len(present) + 1):
            for sub in itertools.combinations(present, r):
                name = CANON.get(canon([(local[u], local[v]) for u, v in sub]))
                if name is None:
                    continue
                w = 1.0
                for e in sub:
                    w *= edges[e]
                joined = {frozenset(e) for e in sub}
                for i, j in itertools.permutations(tri, 2):
                    if pairs == "all" or frozenset((i, j)) in joined:
                        out[name][(i, j)] = out[name].get((i, j), 0.0) + w
    return out


def as_dict(index: torch.Tensor, weight: torch.Tensor) -> dict:
    return {(int(i), int(j)): float(w) for (i, j), w in zip(index.t().tolist(), weight.tolist(),
                                                          strict=True)}


def assert_same(got: dict, want: dict) -> None:
    keys = set(got) | set(want)
    for k in keys:
        assert got.get(k, 0.0) == pytest.approx(want.get(k, 0.0), rel=1e-6, abs=1e-9), k


@st.composite
def graphs(draw, directed: bool):
    n = draw(st.integers(3, 7))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=18, unique=True))
    if not directed:
        chosen = sorted({(i, j) for a, b in chosen for i, j in ((a, b), (b, a))})
    return n, chosen


def _check(n: int, edge_list: list, pairs: str, weighted: bool, grad: bool) -> None:
    gen = torch.Generator().manual_seed(len(edge_list) * 7 + n)
    ei = torch.tensor(edge_list, dtype=torch.long).t().reshape(2, -1)
    w = torch.rand(len(edge_list), generator=gen, dtype=torch.float64) + 0.5 if weighted \
        else torch.ones(len(edge_list), dtype=torch.float64)
    weights = {e: float(x) for e, x in zip(edge_list, w.tolist(), strict=True)}
    want = brute_force(weights, n, pairs)
    res = motif_adjacency(ei, n, edge_weight=w.clone().requires_grad_(grad) if weighted or grad
                          else None, pairs=pairs)
    for name in MOTIFS:
        index, weight = res[name]
        assert_same(as_dict(index, weight.detach()), want[name])


@settings(max_examples=60, deadline=None)
@given(graphs(directed=True), st.sampled_from(["all", "edges"]), st.booleans())
def test_directed_matches_brute_force(graph, pairs, weighted):
    n, edges = graph
    _check(n, edges, pairs, weighted, grad=False)


@settings(max_examples=30, deadline=None)
@given(graphs(directed=False), st.sampled_from(["all", "edges"]))
def test_undirected_matches_brute_force(graph, pairs):
    n, edges = graph
    _check(n, edges, pairs, weighted=False, grad=False)


@settings(max_examples=20, deadline=None)
@given(graphs(directed=True), st.sampled_from(["all", "edges"]))
def test_differentiable_path_matches_brute_force(graph, pairs):
    n, edges = graph
    _check(n, edges, pairs, weighted=True, grad=True)


def test_gradient_is_product_rule():
    # One triangle a<->b<->c<->a: W4[a, b] = product of all six weights.
    ei = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
    w = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 0.4], dtype=torch.float64, requires_grad=True)
    index, weight = motif_adjacency(ei, 3, "M4", edge_weight=w)["M4"]
    assert index.size(1) == 6
    weight[0].backward()
    expected = torch.prod(w.detach()) / w.detach()
    assert torch.allclose(w.grad, expected)


def _census_totals(graph: nx.DiGraph, pairs: str) -> dict[str, float]:
    ei = torch.tensor(list(graph.edges()), dtype=torch.long).t().reshape(2, -1)
    res = motif_adjacency(ei, graph.number_of_nodes(), pairs=pairs)
    return {m: float(res[m][1].sum()) for m in MOTIFS}


@pytest.mark.parametrize("pairs", ["all", "edges"])
def test_totals_agree_with_networkx_triadic_census(pairs):
    graph = nx.gnp_random_graph(40, 0.12, seed=3, directed=True)
    census = nx.triadic_census(graph)
    got = _census_totals(graph, pairs)
    want = dict.fromkeys(MOTIFS, 0.0)
    for triad, count in census.items():
        if count:
            rep = nx.triad_graph(triad)
            per = _census_totals(nx.convert_node_labels_to_integers(rep), pairs)
            for m in MOTIFS:
                want[m] += count * per[m]
    for m in MOTIFS:
        assert got[m] == pytest.approx(want[m]), m


def test_triangles_agree_with_networkx():
    graph = nx.gnm_random_graph(60, 300, seed=1)
    ei = torch.tensor(list(graph.edges()), dtype=torch.long).t()
    ei = torch.cat([ei, ei.flip(0)], 1)
    index, weight = motif_adjacency(ei, 60, "M4")["M4"]
    per_node = torch.zeros(60).index_add(0, index[0], weight.float()) / 2
    assert per_node.tolist() == [float(nx.triangles(graph, v)) for v in range(60)]
    for (i, j), w in as_dict(index, weight).items():
        assert w == len(set(graph[i]) & set(graph[j]))


def test_undirected_dedupe_groups_closed_and_open():
    graph = nx.karate_club_graph()
    ei = torch.tensor(list(graph.edges()), dtype=torch.long).t()
    ei = torch.cat([ei, ei.flip(0)], 1)
    res = motif_adjacency(ei, 34, dedupe=True)
    assert res.groups == {"M1": ("M1", "M2", "M3", "M4", "M5", "M6", "M7"),
                          "M8": ("M8", "M9", "M10", "M11", "M12", "M13")}
    assert res.names == ("M1", "M8")
    directed = motif_adjacency(torch.tensor([[0, 1, 2, 0], [1, 2, 0, 3]]), 4, dedupe=True)
    assert sum(len(g) for g in directed.groups.values()) == 13


def test_parse_and_bad_inputs():
    assert parse_motifs("all") == MOTIFS
    assert parse_motifs(["m4", 13, "2"]) == ("M4", "M13", "M2")
    assert parse_motifs("closed")[-1] == "M7"
    for bad in (["M14"], 0, ["x"], [], [True]):
        with pytest.raises(GraphError, match="motifs"):
            parse_motifs(bad)
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(GraphError, match="pairs"):
        motif_adjacency(ei, 2, pairs="nodes")
    with pytest.raises(GraphError, match="edge_index"):
        motif_adjacency(ei.float(), 2)
    with pytest.raises(GraphError, match="out of range"):
        motif_adjacency(ei, 1)
    with pytest.raises(GraphError, match="edge_weight"):
        motif_adjacency(ei, 2, edge_weight=torch.ones(3))
    with pytest.raises(GraphError, match="num_nodes"):
        motif_adjacency(ei, -1)


def test_documented_edge_cases():
    # No edges, isolated nodes: empty matrices. Self-loops and duplicates: ignored / merged.
    empty = motif_adjacency(torch.empty(2, 0, dtype=torch.long), 5)
    assert all(index.size(1) == 0 for index, _ in empty.matrices.values())
    tri = torch.tensor([[0, 1, 2, 0, 0], [1, 2, 0, 0, 1]])
    res = motif_adjacency(tri, 6, "M1")
    assert as_dict(*res["M1"]) == {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 1.0, (2, 1): 1.0,
                                   (0, 2): 1.0, (2, 0): 1.0}


def test_transform_and_batching():
    g1 = Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]]), num_nodes=3)
    g2 = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=4)
    t = AddMotifAdjacency(motifs=["M4", "M13"], normalize=False)
    assert "M13" in repr(t)
    batch = Batch.from_data_list([t(g1.clone()), t(g2.clone())])
    index, weight = motifs_from_data(batch, ["M13"])[0]
    whole = motif_adjacency(batch.edge_index, batch.num_nodes, "M13")["M13"]
    assert torch.equal(index, whole[0]) and torch.allclose(weight, whole[1])
    assert getattr(batch, motif_key("M4", "index")).max() < 3  # graph 2 has no triangle
    normed = AddMotifAdjacency(["M4"])(g1.clone())
    assert torch.allclose(normed.motif_m4_weight, torch.full((6,), -0.5))
    _, w = normalize_adjacency(*motif_adjacency(g1.edge_index, 3, "M4")["M4"], 3, negative=False)
    assert torch.allclose(w, torch.full((6,), 0.5))
    assert motifs_from_data(g1, ["M4"]) is None


def test_planted_motif_set_is_1wl_blind_but_triangle_separable():
    from torch_geometric.utils import to_networkx

    from graphkit.data import load
    from graphkit.data.motif_sets import planted_graph

    gen = torch.Generator().manual_seed(4)
    tree = [int(torch.randint(0, v, (1,), generator=gen)) for v in range(1, 12)]
    pair = [planted_graph(label, gen, anchors=[0, 7, 7], tree=tree) for label in (0, 1)]
    nets = [to_networkx(g, to_undirected=True) for g in pair]
    hashes = {nx.weisfeiler_lehman_graph_hash(g, iterations=8) for g in nets}
    assert len(hashes) == 1
    assert [sum(nx.triangles(g).values()) // 3 for g in nets] == [9, 3]
    ds = load("triangles-squares", num_graphs=20, seed=1)
    assert len(ds) == 20 and ds.num_classes == 2 and ds[0].x.shape[1] == 1
    with pytest.raises(GraphError, match="num_graphs"):
        load("triangles-squares", num_graphs=1)


@pytest.mark.parametrize("pairs", ["all", "edges"])
def test_chunked_motifs_identical_to_unchunked(pairs):
    import numpy as np

    from graphkit.data.motifs import motif_csr

    gen = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 30, (2, 150), generator=gen)
    w = torch.rand(150, generator=gen, dtype=torch.float64) + 0.5
    whole = motif_adjacency(ei, 30, edge_weight=w, pairs=pairs)
    for chunk in (1, 7, 29, 100):
        part = motif_adjacency(ei, 30, edge_weight=w, pairs=pairs, chunk_size=chunk)
        for name in whole:
            assert torch.equal(part[name][0], whole[name][0])
            assert torch.equal(part[name][1], whole[name][1])  # bit for bit
    csr = motif_csr(ei, 30, pairs=pairs, chunk_size=4)
    ones = motif_adjacency(ei, 30, pairs=pairs)
    for name in ones:
        coo = csr[name].tocoo()
        assert as_dict(torch.from_numpy(np.stack([coo.row, coo.col])).long(),
                       torch.from_numpy(coo.data).float()) == as_dict(*ones[name])
    # The differentiable backend chunks too, with the same values.
    wg = w.clone().requires_grad_(True)
    grad_part = motif_adjacency(ei, 30, ["M2", "M11"], edge_weight=wg, pairs=pairs, chunk_size=8)
    for name in ("M2", "M11"):
        assert torch.equal(grad_part[name][0], whole[name][0])
        assert torch.allclose(grad_part[name][1], whole[name][1], rtol=1e-12)
    with pytest.raises(GraphError, match="chunk_size"):
        motif_adjacency(ei, 30, chunk_size=0)


@pytest.mark.parametrize("weight", [1e-20, 1e-30, 1e-40, 0.0])
def test_normalization_gradient_stays_finite_near_zero_weight(weight):
    # A soft mask driving a node's only motif entry toward 0: deg^{-1/2}'s slope used to overflow
    # to inf in float32 and reach the explainer as NaN.
    index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    w = torch.tensor([weight, weight, 1.0, 1.0], requires_grad=True)
    _, out = normalize_adjacency(index, w * 1.0, 3)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(w.grad).all()
    _, counts = normalize_adjacency(index, torch.tensor([1.0, 1.0, 2.0, 2.0]), 3, False)
    deg = torch.tensor([1.0, 3.0, 2.0])
    expected = torch.tensor([1.0, 1.0, 2.0, 2.0]) / (deg[index[0]] * deg[index[1]]).sqrt()
    assert torch.allclose(counts, expected)
