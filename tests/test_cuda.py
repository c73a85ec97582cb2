"""CUDA smoke tests: the same public entry points on a GPU (skipped without one; run by
benchmarks/gpu_check.sh on a lent GPU)."""

import pytest
import torch

pytestmark = pytest.mark.cuda


def test_mgnn_node_and_graph_on_cuda():
    from torch_geometric.data import Batch

    from graphkit.data import load
    from graphkit.nn import MGNN
    data = load("ba-shapes").to("cuda")
    model = MGNN(data.num_features, 16, 4).to("cuda")
    out = model(data.x, data.edge_index)
    out.sum().backward()
    assert out.is_cuda and out.shape == (700, 4)
    graphs = Batch.from_data_list([load("karate"), load("karate")]).to("cuda")
    model = MGNN(34, 16, 2, num_layers=2, task="graph").to("cuda")
    assert model(graphs.x, graphs.edge_index, graphs.batch).shape == (2, 2)


def test_ccgc_fit_on_cuda():
    from graphkit.cluster import CCGC
    from graphkit.data import load
    labels = CCGC(n_clusters=2, epochs=20, dims=32, device="cuda", random_state=0) \
        .fit_predict(load("karate"))
    assert labels.shape == (34,)


def test_nseg_on_cuda():
    from graphkit.data import load
    from graphkit.explain import NSEG, build_model
    data = load("ba-shapes").to("cuda")
    model = build_model("gcn", data.num_features, 4).to("cuda").eval()
    exp = NSEG(epochs=5).explain(model, data.x, data.edge_index, index=torch.arange(300, 310),
                                 task_level="node", return_type="raw")
    assert exp is not None


def test_emo_on_cuda():
    from graphkit.vision.emo import emo_1m
    model = emo_1m(num_classes=10).to("cuda").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64, device="cuda")).shape == (2, 10)


def test_resolve_device_auto_is_cuda():
    from graphkit.runtime import resolve_device
    assert resolve_device("auto").type == "cuda"


def test_mgnn_torch_compile_matches_eager_on_cuda():
    # The issue calls torch.compile support "a plus": graph breaks are allowed, wrong numbers not.
    from graphkit.data import load
    from graphkit.nn import MGNN
    torch.manual_seed(0)
    data = load("ba-shapes").to("cuda")
    model = MGNN(data.num_features, 16, 4).to("cuda").eval()
    with torch.no_grad():
        eager = model(data.x, data.edge_index)
        compiled = torch.compile(model)(data.x, data.edge_index)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)
