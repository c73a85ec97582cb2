"""MotifConv / MGNN: shapes, gradients, explainer masks, batching, save/load, bad input."""

from __future__ import annotations

import io

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer, GNNExplainer
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import GCNConv

from graphkit.data.motifs import AddMotifAdjacency
from graphkit.errors import GraphError
from graphkit.nn import MGNN, MotifConv


def two_triangles() -> Data:
    # Triangles 0-1-2 and 2-3-4 sharing node 2, plus a tail 4-5; node 6 isolated.
    und = [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (2, 4), (4, 5)]
    ei = torch.tensor(und + [(b, a) for a, b in und]).t()
    torch.manual_seed(0)
    return Data(x=torch.randn(7, 4), edge_index=ei, y=torch.tensor([0, 1, 0, 1, 0, 1, 0]))


def test_node_forward_backward_every_parameter_gets_gradient():
    data = two_triangles()
    model = MGNN(4, 8, 2, num_layers=2, dropout=0.0, input_dropout=0.0, motif_dropout=0.0,
                 att_dropout=0.0)
    out = model(data.x, data.edge_index)
    assert out.shape == (7, 2)
    model.loss(out, data.y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    # Only the padded, never-used motif slot blocks may stay at zero gradient: there are none.
    assert missing == []


def test_graph_task_batching_matches_per_graph_and_precomputed():
    t = AddMotifAdjacency()
    g1, g2 = two_triangles(), two_triangles()
    g2.x = g2.x + 1
    batch = Batch.from_data_list([t(g1.clone()), t(g2.clone())])
    model = MGNN(4, 8, 3, num_layers=3, task="graph").eval()
    joint = model(batch.x, batch.edge_index, batch.batch)
    pre = model(batch.x, batch.edge_index, batch.batch, **model.motif_inputs(batch))
    single = torch.cat([model(g.x, g.edge_index) for g in (g1, g2)])
    assert joint.shape == (2, 3)
    assert torch.allclose(joint, single, atol=1e-5)
    assert torch.allclose(joint, pre, atol=1e-5)


def test_cache_is_reused_and_invalidated():
    data = two_triangles()
    model = MGNN(4, 8, 2).eval()
    model(data.x, data.edge_index)
    op = model.cache.get(data.edge_index, 7, model.motifs, model.pairs, model.negative)
    assert model.cache.get(data.edge_index.clone(), 7, model.motifs, model.pairs,
                           model.negative) is op
    edited = data.edge_index.clone()
    edited[1, 0] = 6
    assert model.cache.get(edited, 7, model.motifs, model.pairs, model.negative) is not op


def _motif_only_edge(data: Data) -> int:
    # Edge 3 -> 4 never carries a message into node 0's neighbourhood in one layer but closes the
    # triangle 2-3-4, which changes the motif weights of node 2.
    ei = data.edge_index
    return int(((ei[0] == 3) & (ei[1] == 4)).nonzero()[0, 0])


def test_set_masks_changes_output_and_reaches_motif_only_edges():
    data = two_triangles()
    torch.manual_seed(1)
    model = MGNN(4, 8, 2, dropout=0.0, input_dropout=0.0).eval()
    base = model(data.x, data.edge_index)
    mask = torch.zeros(data.edge_index.size(1), requires_grad=True)
    set_masks(model, mask, data.edge_index, apply_sigmoid=True)
    out = model(data.x, data.edge_index)
    assert not torch.allclose(out, base)
    out[2].sum().backward()
    e = _motif_only_edge(data)
    assert mask.grad[e].abs() > 0
    clear_masks(model)
    assert torch.allclose(model(data.x, data.edge_index), base)
    # A GCN layer ignores that edge for node 2's output: the gradient there comes via motifs.
    gcn = GCNConv(4, 2)
    mask2 = torch.zeros(data.edge_index.size(1), requires_grad=True)
    set_masks(gcn, mask2, data.edge_index)
    gcn(data.x, data.edge_index)[2].sum().backward()
    assert mask2.grad[e] == 0


def test_pyg_explainer_runs_on_node_and_graph_models():
    data = two_triangles()
    model = MGNN(4, 8, 2).eval()
    explainer = Explainer(model, GNNExplainer(epochs=5), explanation_type="model",
                          edge_mask_type="object", node_mask_type=None,
                          model_config=dict(mode="multiclass_classification", task_level="node",
                                            return_type="raw"))
    exp = explainer(data.x, data.edge_index, index=2)
    assert exp.edge_mask.shape == (data.edge_index.size(1),)
    assert exp.edge_mask[_motif_only_edge(data)] > 0
    gmodel = MGNN(4, 8, 2, num_layers=2, task="graph").eval()
    gexp = Explainer(gmodel, GNNExplainer(epochs=3), explanation_type="model",
                     edge_mask_type="object", node_mask_type=None,
                     model_config=dict(mode="multiclass_classification", task_level="graph",
                                       return_type="raw"))
    batch = torch.zeros(7, dtype=torch.long)
    assert gexp(data.x, data.edge_index, batch=batch).edge_mask.shape[0] == 14


def test_edge_weight_is_differentiable_through_motifs():
    data = two_triangles()
    model = MGNN(4, 8, 2).eval()
    w = torch.ones(data.edge_index.size(1), requires_grad=True)
    out = model(data.x, data.edge_index, edge_weight=w)
    assert torch.allclose(out, model(data.x, data.edge_index), atol=1e-5)
    out[2].sum().backward()
    assert w.grad[_motif_only_edge(data)].abs() > 0


def test_state_dict_round_trip_weights_only():
    data = two_triangles()
    model = MGNN(4, 8, 2, motifs=["M4", "M13"]).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    other = MGNN(4, 8, 2, motifs=["M4", "M13"]).eval()
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(model(data.x, data.edge_index), other(data.x, data.edge_index))
    other.reset_parameters()
    assert not torch.equal(model(data.x, data.edge_index), other(data.x, data.edge_index))


def test_directed_self_loops_and_empty_graphs():
    x = torch.randn(4, 3)
    model = MGNN(3, 4, 2, motifs="closed").eval()
    directed = torch.tensor([[0, 1, 2, 3, 3], [1, 2, 0, 3, 0]])  # a 3-cycle plus a self-loop
    assert torch.isfinite(model(x, directed)).all()
    empty = torch.empty(2, 0, dtype=torch.long)
    assert model(x, empty).shape == (4, 2)
    conv = MotifConv(3, 4, motifs=[1, 4])
    assert conv(x, directed).shape == (4, 2 * 6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(task="edge"), "task"), (dict(num_layers=0), "num_layers"),
    (dict(motifs=["M14"]), "motifs"), (dict(att_act="relu"), "att_act"),
    (dict(pairs="nodes"), "pairs"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(GraphError, match=match):
        MGNN(3, 4, 2, **kwargs)


def test_bad_forward_inputs():
    model = MGNN(3, 4, 2)
    x = torch.randn(4, 3)
    with pytest.raises(GraphError, match="x"):
        model(torch.randn(4, 5), torch.tensor([[0], [1]]))
    with pytest.raises(GraphError, match="edge_index"):
        model(x, torch.tensor([[0.0], [1.0]]))
    with pytest.raises(GraphError, match="out of range"):
        model(x, torch.tensor([[0], [9]]))
    with pytest.raises(GraphError, match="motif_adj"):
        model(x, torch.tensor([[0], [1]]), motif_adj=[])


def test_fast_path_matches_propagate_path_and_dense_input():
    """Cached CSR Â / motif operators and sparse input features give the same outputs and
    gradients as PyG propagate on dense features (the path used under an explanation mask)."""
    import copy

    torch.manual_seed(1)
    num_nodes = 40
    ei = torch.randint(0, num_nodes, (2, 120))
    ei = torch.cat([ei, ei.flip(0)], 1)
    x = (torch.rand(num_nodes, 30) < 0.1).float()  # sparse bag-of-words-like features
    fast = MGNN(30, 8, 3, dropout=0.0, input_dropout=0.0, motif_dropout=0.0, att_dropout=0.0)
    slow = copy.deepcopy(fast)
    out_fast = fast(x, ei)
    # A differentiable x disables the sparse-input path; no base operator disables cached Â.
    slow.cache.get(ei, num_nodes, slow.motifs, slow.pairs, slow.negative).base = None
    out_slow = slow(x.clone().requires_grad_(True), ei)
    assert torch.allclose(out_fast, out_slow, atol=1e-5)
    out_fast.square().sum().backward()
    out_slow.square().sum().backward()
    for (name, p1), p2 in zip(fast.named_parameters(), slow.parameters(), strict=True):
        assert torch.allclose(p1.grad, p2.grad, rtol=1e-4, atol=1e-5), name
    # In-place edits of x are noticed (version counter), never served from a stale cache.
    x[0, 0] = 5.0
    assert not torch.allclose(fast(x, ei)[0], out_fast[0])


def test_reference_motif_definition_paths_agree():
    """``pairs="reference"`` (the reference code's open motifs, with a diagonal): the cached
    operator path, the differentiable edge-weight path and precomputed matrices agree."""
    from graphkit.nn.motif_conv import compute_motifs

    data = two_triangles()
    torch.manual_seed(0)
    model = MGNN(4, 8, 2, pairs="reference", dropout=0.0, input_dropout=0.0, motif_dropout=0.0,
                 att_dropout=0.0)
    out = model(data.x, data.edge_index)
    ones = torch.ones(data.edge_index.size(1), requires_grad=True)
    out_w = model(data.x, data.edge_index, edge_weight=ones)
    given = compute_motifs(data.edge_index, 7, model.motifs, pairs="reference")
    out_given = model(data.x, data.edge_index, motif_adj=given)
    assert torch.allclose(out, out_w, atol=1e-5) and torch.allclose(out, out_given, atol=1e-6)
    out_w.sum().backward()
    assert ones.grad is not None and ones.grad.abs().sum() > 0
    # M8 has the reference code's self-loop diagonal; the instance-count definition has none.
    m8 = model.motifs.index("M8")
    assert (given[m8][0][0] == given[m8][0][1]).any()
    plain = compute_motifs(data.edge_index, 7, ["M8"], pairs="edges")[0]
    assert not (plain[0][0] == plain[0][1]).any()
    with pytest.raises(GraphError, match="pairs"):
        MotifConv(4, 8, pairs="bogus")


def test_reference_init_bounds():
    import math

    from graphkit.commands.mgnn import build_model, reference_init

    model = build_model("mgnn", 100, 3, "node", 16, init="xavier", pairs="reference")
    conv = model.convs[0]
    w, root = conv.lin.weight[:16], conv.lin.weight[16:]
    assert w.abs().max() <= math.sqrt(6 / 1600) and root.abs().max() > 0.3  # root: sqrt(6/16)
    reference_init(model, "kaiming")
    assert conv.comp_weight.abs().max() > 0.5 and conv.bias.abs().sum() == 0
    with pytest.raises(GraphError, match="init"):
        reference_init(model, "orthogonal")


def test_per_layer_widths_shapes_and_state_dict():
    batch = Batch.from_data_list([two_triangles(), two_triangles()])
    torch.manual_seed(0)
    model = MGNN(4, (16, 3, 3), 3, task="graph", motifs=["M4", "M13"])
    assert [c.out_channels for c in model.convs] == [16, 3, 3]
    assert model.hidden_channels == (16, 3, 3)
    assert model.convs[1].lin.weight.shape == (2 * 3, 64)  # W and W_root of width 3 after the MLP
    out = model(batch.x, batch.edge_index, batch.batch)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # An int width and the equal sequence build the same model (same draws, same state_dict).
    torch.manual_seed(0)
    same = MGNN(4, [8, 8], 2, motifs=["M4"])
    torch.manual_seed(0)
    plain = MGNN(4, 8, 2, num_layers=2, motifs=["M4"])
    assert same.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(),
                                                 plain.state_dict().values(), strict=True))
    assert MGNN(4, 8, 2).hidden_channels == (8,) and len(MGNN(4, [8, 8, 8], 2).convs) == 3


@pytest.mark.parametrize("task,layers", [("node", 1), ("graph", 3)])
def test_default_layer_count_is_the_reference(task, layers):
    assert len(MGNN(4, 8, 2, task=task).convs) == layers


@pytest.mark.parametrize("hidden,num_layers,match", [
    ((16, 3), 3, "2 widths"), ([], None, "empty"), ((16, 0), None, "hidden_channels"),
    ((16, -2, 3), 3, "hidden_channels"), ((16, 2.5), None, "hidden_channels"),
    (0, 2, "hidden_channels"), ((True, 4), None, "hidden_channels"), ("16", None, "hidden"),
    ((4, 4), 0, "num_layers"),
])
def test_bad_per_layer_widths(hidden, num_layers, match):
    with pytest.raises(GraphError, match=match):
        MGNN(3, hidden, 2, num_layers=num_layers)
