import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data

from graphkit import GraphError
from graphkit.data import validate


def good() -> Data:
    return Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
                y=torch.tensor([0, 1, 1, 0]), train_mask=torch.tensor([1, 1, 0, 0]).bool())


def with_(**changes) -> Data:
    data = good()
    for key, value in changes.items():
        data[key] = value
    return data


BAD = [
    ("out of range", with_(edge_index=torch.tensor([[0, 1], [1, 9]])), "out of range"),
    ("negative", with_(edge_index=torch.tensor([[0, -1], [1, 2]])), "negative node index"),
    ("float", with_(edge_index=torch.tensor([[0.0, 1.0], [1.0, 2.0]])), "integer"),
    ("E x 2 layout", with_(edge_index=torch.tensor([[0, 1], [1, 2], [2, 3]])), "edge_index.t()"),
    ("1-D", with_(edge_index=torch.tensor([0, 1, 2])), "shape [2, E]"),
    ("NaN features", with_(x=torch.tensor([[0.0], [float("nan")], [1.0], [2.0]])), "non-finite"),
    ("inf features", with_(x=torch.tensor([[0.0], [1.0], [float("inf")], [2.0]])), "row 2"),
    ("wrong row count", with_(y=torch.tensor([0, 1, 1, 0, 1])), "one label per node"),
    ("1-D x", with_(x=torch.randn(4)), "2-D"),
    ("negative label", with_(y=torch.tensor([0, -1, 1, 0])), "negative label"),
    ("int mask", with_(train_mask=torch.tensor([1, 0, 0, 0])), "boolean"),
    ("short mask", with_(train_mask=torch.tensor([True, False])), "shape [4]"),
    ("edge weight size", with_(edge_weight=torch.ones(5)), "one per edge"),
    ("nan edge weight", with_(edge_weight=torch.tensor([1.0, float("nan"), 1.0])), "non-finite"),
    ("empty graph", Data(x=torch.zeros(0, 3), edge_index=torch.zeros(2, 0, dtype=torch.long)),
     "empty graph"),
    ("no edge_index", Data(x=torch.zeros(3, 2)), "edge_index: missing"),
    ("not a graph", {"x": 1}, "expected a torch_geometric"),
    ("batch size", with_(batch=torch.tensor([0, 0, 1])), "batch"),
]


@pytest.mark.parametrize("label,data,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_graph_error(label, data, message):
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        validate(data, task="node")


def test_labels_out_of_range_for_num_classes():
    with pytest.raises(GraphError, match="out of range for num_classes=2"):
        validate(with_(y=torch.tensor([0, 1, 2, 0])), num_classes=2)


def test_graph_task_needs_one_label_per_graph():
    batch = Batch.from_data_list([good(), good()])
    batch.y = torch.tensor([0, 1])
    validate(batch, task="graph")
    batch.y = torch.tensor([0, 1, 1])
    with pytest.raises(GraphError, match="one label per graph"):
        validate(batch, task="graph")


def test_graph_error_is_a_value_error():
    assert issubclass(GraphError, ValueError)
    validate(good(), task="node", num_classes=2)


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 12))
    e = draw(st.integers(0, 30))
    src = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    f = draw(st.integers(1, 4))
    x = torch.tensor(draw(st.lists(st.floats(-1e3, 1e3), min_size=n * f, max_size=n * f)))
    return Data(x=x.view(n, f).float(), edge_index=torch.tensor([src, dst], dtype=torch.long)
                .view(2, e))


CORRUPTIONS = ["index_high", "index_negative", "float_index", "transpose", "nan", "rows"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.sampled_from(CORRUPTIONS + ["none"]), st.integers(0, 10_000))
def test_random_graphs_valid_or_graph_error(data, corruption, pick):
    n, e = data.num_nodes, data.edge_index.size(1)
    if corruption == "none":
        assert validate(data) is data
        return
    if corruption.startswith("index") and e == 0:
        corruption = "nan"
    if corruption == "index_high":
        data.edge_index[pick % 2, pick % e] = n + pick % 5
    elif corruption == "index_negative":
        data.edge_index[pick % 2, pick % e] = -1 - pick % 5
    elif corruption == "float_index":
        data.edge_index = data.edge_index.float()
    elif corruption == "transpose":
        data.edge_index = data.edge_index.t().reshape(-1, 2) if e != 2 else torch.zeros(3, 2)
    elif corruption == "nan":
        data.x[pick % n, pick % data.x.size(1)] = float("nan")
    elif corruption == "rows":
        data.x = torch.cat([data.x, data.x[:1]])
        data.y = torch.zeros(n, dtype=torch.long)
    with pytest.raises(GraphError):
        validate(data, task="node")
