"""Fuzz the public graph entry points with random and corrupted graphs (issue 8).

Every call must either work (a finite output of the documented shape) or raise
:class:`graphkit.GraphError`. Any other exception (an ``IndexError`` from a gather, a
``RuntimeError`` from a matmul, BatchNorm's ``ValueError``) is an internal crash and fails the
test. ``load`` on corrupted raw files is fuzzed in ``tests/data/test_fuzz_load.py``.

Each case is one *kind* of input (a valid variation or one corruption) drawn on a random small
graph; kinds are pytest parameters, so every kind is exercised on every entry point and a
regression names its kind in the test id. Hypothesis draws the graph itself (derandomized, so CI
is reproducible) and shrinks a failure to a minimal graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch_geometric.data import Data

from graphkit import GraphError
from graphkit.cluster import CCGC
from graphkit.data import validate
from graphkit.explain import NSEG, ExplainedGNN
from graphkit.nn import MGNN

# ~25 s of CPU for ~440 cases; the timeout turns a hang into a failure instead of a stuck CI job
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore:Unable to accurately infer 'num_nodes'")]

F_IN = 4
CLASSES = 3

FUZZ = settings(max_examples=4, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


@dataclass
class Graph:
    """The raw pieces an entry point receives; any of them may be corrupted."""

    x: Any
    edge_index: Any
    batch: Any = None
    edge_weight: Any = None
    y: Any = None
    kind: str = "none"

    def data(self) -> Data:
        data = Data()
        for key in ("x", "edge_index", "batch", "edge_weight", "y"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


Draw = Callable[[st.SearchStrategy], Any]


def _ensure_edge(g: Graph) -> None:
    if g.edge_index.size(1) == 0:
        g.edge_index = torch.tensor([[0], [0]])


def _set_entry(g: Graph, draw: Draw, value: int) -> None:
    _ensure_edge(g)
    g.edge_index = g.edge_index.clone()
    col = draw(st.integers(0, g.edge_index.size(1) - 1))
    g.edge_index[draw(st.integers(0, 1)), col] = value


def _set_x(g: Graph, draw: Draw, value: float) -> None:
    g.x = g.x.clone()
    g.x[draw(st.integers(0, g.x.size(0) - 1)), draw(st.integers(0, F_IN - 1))] = value


def _add_nodes(g: Graph, draw: Draw) -> None:
    extra = draw(st.integers(1, 3))
    g.x = torch.cat([g.x, torch.randn(extra, F_IN)])
    if g.batch is not None:
        g.batch = torch.cat([g.batch, g.batch[-1:].repeat(extra)])


def _self_loops(g: Graph, draw: Draw) -> None:
    nodes = draw(st.lists(st.integers(0, g.x.size(0) - 1), min_size=1, max_size=4))
    g.edge_index = torch.cat([g.edge_index, torch.tensor([nodes, nodes])], 1)


def _duplicates(g: Graph, draw: Draw) -> None:
    _ensure_edge(g)
    g.edge_index = torch.cat([g.edge_index, g.edge_index[:, :draw(st.integers(1, 3))]], 1)


def _unsorted_batch(g: Graph, draw: Draw) -> None:
    n = g.x.size(0)
    perm = torch.tensor(draw(st.permutations(range(n))))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    g.x, g.edge_index = g.x[perm], inv[g.edge_index]
    if g.batch is not None:
        g.batch = g.batch[perm]


def _cross_graph_edge(g: Graph, draw: Draw) -> None:
    if g.batch is None or int(g.batch.max()) == 0:
        g.batch = torch.zeros(g.x.size(0), dtype=torch.long)
        g.batch[-1] = 1
    g.edge_index = torch.cat([g.edge_index, torch.tensor([[0], [g.x.size(0) - 1]])], 1)


def _rows_mismatch(g: Graph, draw: Draw) -> None:
    if draw(st.booleans()) and g.x.size(0) > 1:
        g.x = g.x[:-1]
    else:
        g.x = torch.cat([g.x, torch.zeros(2, F_IN)])


def _single_node(g: Graph, draw: Draw) -> None:
    g.x = g.x[:1]
    loops = draw(st.integers(0, 2))
    g.edge_index = torch.zeros(2, loops, dtype=torch.long)
    if g.batch is not None:
        g.batch = g.batch[:1]
        g.y = g.y[:1]
    else:
        g.y = g.y[:1]


def _dense(g: Graph, draw: Draw) -> None:
    n = g.x.size(0)
    batch = g.batch if g.batch is not None else torch.zeros(n, dtype=torch.long)
    u, v = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = (u != v) & (batch[u] == batch[v])
    g.edge_index = torch.stack([u[keep], v[keep]])


def _batch(value: Callable[[Tensor], Any]) -> Callable[[Graph, Draw], None]:
    def corrupt(g: Graph, draw: Draw) -> None:
        base = g.batch if g.batch is not None else torch.zeros(g.x.size(0), dtype=torch.long)
        g.batch = value(base)
    return corrupt


def _huge_batch(b: Tensor) -> Tensor:
    b = b.clone()
    b[-1] = 2 ** 40
    return b


def _edge_weight(value: Callable[[int], Tensor]) -> Callable[[Graph, Draw], None]:
    def corrupt(g: Graph, draw: Draw) -> None:
        g.edge_weight = value(g.edge_index.size(1))
    return corrupt


def _empty(g: Graph, draw: Draw) -> None:
    g.x = torch.zeros(0, F_IN)
    g.edge_index = torch.zeros(2, 0, dtype=torch.long)
    if g.batch is not None:
        g.batch = torch.zeros(0, dtype=torch.long)


def _nan_weight(e: int) -> Tensor:
    w = torch.ones(max(e, 1))
    w[0] = float("nan")
    return w[:e] if e else w


Corruption = Callable[[Graph, Draw], None]

# Inputs that are valid graphs: the entry points must work on them (or refuse them cleanly).
VALID: dict[str, Corruption] = {
    "none": lambda g, d: None,
    "zero_edges": lambda g, d: setattr(g, "edge_index", torch.zeros(2, 0, dtype=torch.long)),
    "self_loops": _self_loops,
    "duplicate_edges": _duplicates,
    "isolated_nodes": _add_nodes,
    "single_node": _single_node,
    "dense_edges": _dense,
    "edge_index_noncontiguous": lambda g, d: setattr(
        g, "edge_index", g.edge_index.repeat_interleave(2, dim=1)[:, ::2]),
    "x_noncontiguous": lambda g, d: setattr(g, "x", g.x.t().contiguous().t()),
    "constant_x": lambda g, d: setattr(g, "x", torch.ones_like(g.x)),
    "zero_x": lambda g, d: setattr(g, "x", torch.zeros_like(g.x)),
    "large_x": lambda g, d: setattr(g, "x", g.x * 1e4),
    "grad_x": lambda g, d: setattr(g, "x", g.x.clone().requires_grad_()),
    "batch_gap": _batch(lambda b: b * 2),
    "batch_unsorted": _unsorted_batch,
    "edge_weight_ok": _edge_weight(lambda e: torch.rand(e) + 0.1),
    "edge_weight_zero": _edge_weight(lambda e: torch.zeros(e)),
}

# Corrupted inputs: GraphError (or, where the input is merely unusual, success).
BROKEN: dict[str, Corruption] = {
    "edge_index_float": lambda g, d: setattr(g, "edge_index", g.edge_index.float()),
    "edge_index_bool": lambda g, d: setattr(g, "edge_index", g.edge_index.bool()),
    "edge_index_int32": lambda g, d: setattr(g, "edge_index", g.edge_index.int()),
    "edge_index_uint8": lambda g, d: setattr(g, "edge_index", g.edge_index.to(torch.uint8)),
    "edge_index_transposed": lambda g, d: setattr(g, "edge_index", g.edge_index.t()),
    "edge_index_one_row": lambda g, d: setattr(g, "edge_index", g.edge_index[:1]),
    "edge_index_flat": lambda g, d: setattr(g, "edge_index", g.edge_index.reshape(-1)),
    "edge_index_3d": lambda g, d: setattr(g, "edge_index", g.edge_index.unsqueeze(0)),
    "edge_index_list": lambda g, d: setattr(g, "edge_index", g.edge_index.tolist()),
    "edge_index_none": lambda g, d: setattr(g, "edge_index", None),
    "negative_index": lambda g, d: _set_entry(g, d, -d(st.integers(1, 5))),
    "out_of_range_index": lambda g, d: _set_entry(g, d, g.x.size(0) + d(st.integers(0, 3))),
    "huge_index": lambda g, d: _set_entry(g, d, d(st.sampled_from([2 ** 31, 2 ** 40,
                                                                     2 ** 63 - 1]))),
    "nan_x": lambda g, d: _set_x(g, d, float("nan")),
    "inf_x": lambda g, d: _set_x(g, d, float("inf")),
    "neg_inf_x": lambda g, d: _set_x(g, d, float("-inf")),
    "int_x": lambda g, d: setattr(g, "x", g.x.round().long()),
    "bool_x": lambda g, d: setattr(g, "x", g.x > 0),
    "double_x": lambda g, d: setattr(g, "x", g.x.double()),
    "half_x": lambda g, d: setattr(g, "x", g.x.half()),
    "sparse_x": lambda g, d: setattr(g, "x", g.x.to_sparse()),
    "x_1d": lambda g, d: setattr(g, "x", g.x[:, 0]),
    "x_3d": lambda g, d: setattr(g, "x", g.x.unsqueeze(0)),
    "x_zero_width": lambda g, d: setattr(g, "x", g.x[:, :0]),
    "x_wide": lambda g, d: setattr(g, "x", torch.cat([g.x, g.x[:, :1]], 1)),
    "x_narrow": lambda g, d: setattr(g, "x", g.x[:, :-1]),
    "x_rows_mismatch": _rows_mismatch,
    "x_numpy": lambda g, d: setattr(g, "x", g.x.numpy()),
    "x_none": lambda g, d: setattr(g, "x", None),
    "empty_graph": _empty,
    "batch_float": _batch(lambda b: b.float()),
    "batch_short": _batch(lambda b: b[:-1]),
    "batch_long": _batch(lambda b: torch.cat([b, b[-1:]])),
    "batch_negative": _batch(lambda b: b - 1),
    "batch_2d": _batch(lambda b: b.view(1, -1)),
    "batch_huge_id": _batch(_huge_batch),
    "batch_list": _batch(lambda b: b.tolist()),
    "cross_graph_edge": _cross_graph_edge,
    "edge_weight_nan": _edge_weight(_nan_weight),
    "edge_weight_inf": _edge_weight(lambda e: torch.full((e,), float("inf"))),
    "edge_weight_negative": _edge_weight(lambda e: -torch.rand(e) - 0.1),
    "edge_weight_short": _edge_weight(lambda e: torch.ones(e + 1)),
    "edge_weight_2d": _edge_weight(lambda e: torch.ones(e, 2)),
    "edge_weight_long": _edge_weight(lambda e: torch.ones(e, dtype=torch.long)),
    "y_negative": lambda g, d: setattr(g, "y", -torch.ones_like(g.y)),
    "y_nan": lambda g, d: setattr(g, "y", torch.full(g.y.shape, float("nan"))),
    "y_wrong_length": lambda g, d: setattr(g, "y", torch.cat([g.y, g.y])),
}
KINDS = {**VALID, **BROKEN}


@st.composite
def graphs(draw: Draw, kind: str, task: str, max_graphs: int = 3) -> Graph:
    """A random small graph (undirected edges, one component per graph of the batch), then
    ``kind`` applied to it."""
    n = draw(st.integers(2, 9))
    num_graphs = draw(st.integers(1, min(max_graphs, n))) if task == "graph" else 1
    cuts = draw(st.lists(st.integers(1, n - 1), min_size=num_graphs - 1,
                         max_size=num_graphs - 1, unique=True))
    batch = torch.zeros(n, dtype=torch.long)
    for cut in cuts:
        batch[cut:] += 1
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=14))
    pairs = [(u, v) for u, v in pairs if u != v and batch[u] == batch[v]]
    edge_index = torch.tensor(pairs + [(v, u) for u, v in pairs], dtype=torch.long).view(-1, 2)
    values = draw(st.lists(st.floats(-3, 3, width=32), min_size=n * F_IN, max_size=n * F_IN))
    x = torch.tensor(values, dtype=torch.float32).view(n, F_IN)
    y = torch.randint(0, CLASSES, (num_graphs if task == "graph" else n,))
    g = Graph(x=x, edge_index=edge_index.t().contiguous(),
              batch=batch if task == "graph" else None, y=y, kind=kind)
    with torch.random.fork_rng():
        torch.manual_seed(draw(st.integers(0, 2 ** 16)))
        KINDS[kind](g, draw)
    return g


def _expected_rows(g: Graph, task: str) -> int:
    if task == "node":
        return g.x.size(0)
    return int(g.batch.max()) + 1 if isinstance(g.batch, Tensor) and g.batch.numel() else 1


def _finite(t: Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def _mgnn(task: str) -> MGNN:
    # a fresh model per example: one example's input must not leak into the next through the
    # motif cache or the BatchNorm running statistics
    torch.manual_seed(0)
    return MGNN(F_IN, 8, CLASSES, num_layers=2, task=task, mlp_channels=8)


@functools.cache
def _gcn(task: str) -> ExplainedGNN:
    torch.manual_seed(0)
    return ExplainedGNN(F_IN, CLASSES, hidden=8, num_layers=2,
                        graph_level=task == "graph").eval()


def _works_or_graph_error(call: Callable[[], None]) -> None:
    """Run ``call``; GraphError is an accepted answer, any other exception propagates."""
    try:
        call()
    except GraphError:
        pass


ALL = sorted(KINDS)
NODE_KINDS = [k for k in ALL if not k.startswith("batch") and k != "cross_graph_edge"]


@pytest.mark.parametrize("task", ["node", "graph"])
@pytest.mark.parametrize("kind", ALL)
@FUZZ
@given(data=st.data())
def test_validate(kind: str, task: str, data: st.DataObject) -> None:
    g = data.draw(graphs(kind, task))
    graph = g.data()

    def call() -> None:
        assert validate(graph, task=task, num_classes=CLASSES) is graph
    _works_or_graph_error(call)


@pytest.mark.parametrize("task", ["node", "graph"])
@pytest.mark.parametrize("kind", ALL)
@FUZZ
@given(data=st.data(), train=st.booleans())
def test_mgnn(kind: str, task: str, data: st.DataObject, train: bool) -> None:
    g = data.draw(graphs(kind, task))
    model = _mgnn(task).train(train)

    def call() -> None:
        out = model(g.x, g.edge_index, g.batch, edge_weight=g.edge_weight)
        assert out.shape == (_expected_rows(g, task), CLASSES)
        assert _finite(out), f"non-finite MGNN output on {kind}"
    _works_or_graph_error(call)


@pytest.mark.parametrize("task", ["node", "graph"])
@pytest.mark.parametrize("kind", ALL)
@FUZZ
@given(data=st.data(), features=st.booleans(),
       index=st.sampled_from(["all", "first", "list", "out_of_range", "negative", "float"]))
def test_nseg(kind: str, task: str, data: st.DataObject, features: bool, index: str) -> None:
    g = data.draw(graphs(kind, task))
    model = _gcn(task)
    targets: Any = {"all": None, "first": 0, "list": [0, 1], "out_of_range": 10 ** 6,
                    "negative": -1, "float": torch.tensor([0.5])}[index]
    kwargs = {"batch": g.batch} if task == "graph" else {}

    def call() -> None:
        res = NSEG(epochs=2, samples=1, features=features).explain(
            model, g.x, g.edge_index, index=targets, task_level=task, **kwargs)
        assert _finite(res.edge_mask) and bool(((res.edge_mask >= 0) & (res.edge_mask <= 1)).all())
        assert res.edge_mask.shape == (res.sub.edge_index.size(1),)
        assert res.dense_edge_mask(g.edge_index.size(1)).shape == (g.edge_index.size(1),)
        if features:
            assert res.node_mask is not None and _finite(res.node_mask)
    _works_or_graph_error(call)


@pytest.mark.parametrize("kind", NODE_KINDS)
@FUZZ
@given(data=st.data())
def test_ccgc(kind: str, data: st.DataObject) -> None:
    g = data.draw(graphs(kind, "node"))
    graph = g.data()

    def call() -> None:
        model = CCGC(n_clusters=2, epochs=2, dims=8, n_init=2, warmup=0, eval_every=1,
                     random_state=0, device="cpu").fit(graph)
        n = graph.x.shape[0]
        assert model.labels_.shape == (n,)
        assert set(np.unique(model.labels_).tolist()) <= {0, 1}
        assert _finite(model.embedding_)
    _works_or_graph_error(call)


def _tiny(**changes: Any) -> Graph:
    """Two 2-node graphs in one batch, with ``changes`` applied."""
    g = Graph(x=torch.randn(4, F_IN), edge_index=torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]]),
              batch=torch.tensor([0, 0, 1, 1]))
    for key, value in changes.items():
        setattr(g, key, value)
    return g


MESSAGES = [
    ("double x", _tiny(x=torch.randn(4, F_IN, dtype=torch.float64)), "does not match the model"),
    ("int x", _tiny(x=torch.ones(4, F_IN, dtype=torch.long)), "floating-point features"),
    ("wide x", _tiny(x=torch.randn(4, F_IN + 1)), "in_channels=4"),
    ("empty", _tiny(x=torch.zeros(0, F_IN), edge_index=torch.zeros(2, 0, dtype=torch.long),
                    batch=torch.zeros(0, dtype=torch.long)), "empty graph"),
    ("int32 edges", _tiny(edge_index=torch.tensor([[0, 1], [1, 0]], dtype=torch.int32)),
     "edge_index.long()"),
    ("uint8 edges", _tiny(edge_index=torch.tensor([[0, 1], [1, 0]], dtype=torch.uint8)),
     "integer tensor"),
    ("cross-graph edge", _tiny(edge_index=torch.tensor([[0, 1], [1, 3]])), "joins graph 0"),
    ("huge graph id", _tiny(batch=torch.tensor([0, 0, 1, 2 ** 40])), "graph ids must count"),
    ("float batch", _tiny(batch=torch.zeros(4)), "batch: expected a 1-D integer"),
    ("negative weight", _tiny(edge_weight=-torch.ones(4)), "negative weight"),
    ("short weight", _tiny(edge_weight=torch.ones(3)), r"edge_weight: expected shape \[4\]"),
]


@pytest.mark.parametrize("g,message", [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_entry_errors_name_the_problem(g: Graph, message: str) -> None:
    model = _mgnn("graph").eval()
    with pytest.raises(GraphError, match=message):
        model(g.x, g.edge_index, g.batch, edge_weight=g.edge_weight)
    if g.edge_weight is None:  # NSEG's GCN takes no edge weights
        with pytest.raises(GraphError, match=message.replace("in_channels=4", "input width")):
            NSEG(epochs=1).explain(_gcn("graph"), g.x, g.edge_index, task_level="graph",
                                   batch=g.batch)
