import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from graphkit import GraphError
from graphkit.data import load, names, spec, validate
from graphkit.data import registry as registry_mod

REAL = [
    # name, nodes, directed edges, features, classes
    ("cora", 2708, 10556, 1433, 7),
    ("citeseer", 3327, 9104, 3703, 6),
    ("photo", 7650, 238162, 745, 8),
    ("bat", 131, 2006, 81, 4),
    ("eat", 399, 11986, 203, 4),
    ("dgc-cora", 2708, 10556, 1433, 7),
    ("dgc-citeseer", 3327, 9104, 3703, 6),
]
COLLECTIONS = [
    # name, graphs, classes, total nodes
    ("mutag", 188, 2, 3371),
    ("enzymes", 600, 6, 19580),
    ("proteins", 1113, 2, 43471),
    ("nci1", 4110, 2, 122747),
    ("imdb-binary", 1000, 2, 19773),
]


@pytest.mark.parametrize("name,nodes,edges,features,classes", REAL)
def test_single_graph_statistics(data_root, name, nodes, edges, features, classes):
    data = load(name, root=data_root)
    assert isinstance(data, Data)
    assert (data.num_nodes, data.num_edges, data.num_features) == (nodes, edges, features)
    assert int(data.y.max()) + 1 == classes
    validate(data, task="node", num_classes=classes)


def test_cora_public_split(data_root):
    data = load("Cora", root=data_root)
    sizes = [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")]
    assert sizes == [140, 500, 1000]


def test_dgc_cora_equals_planetoid(data_root):
    a, b = load("cora", root=data_root), load("dgc-cora", root=data_root)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert torch.equal(coalesce(a.edge_index), coalesce(b.edge_index))


@pytest.mark.parametrize("name,graphs,classes,total_nodes", COLLECTIONS)
def test_collection_statistics(data_root, name, graphs, classes, total_nodes):
    ds = load(name, root=data_root)
    assert (len(ds), ds.num_classes) == (graphs, classes)
    assert int(ds._data.num_nodes if ds._data.num_nodes is not None
               else ds._data.x.size(0)) == total_nodes


@pytest.mark.parametrize("alias", ["MUTAG", "Mutag", "mutag"])
def test_names_are_case_and_dash_insensitive(data_root, alias):
    assert len(load(alias, root=data_root)) == 188
    assert spec("IMDB_BINARY").name == spec("imdb-binary").name == "imdb-binary"
    assert spec("AMAP").name == "photo"


def test_read_only_root_is_never_written(data_root, tmp_path):
    before = {p for p in Path(data_root).rglob("*")}
    load("mutag", root=data_root)
    load("cora", root=data_root)
    assert {p for p in Path(data_root).rglob("*")} == before


def test_missing_files_name_what_and_where(tmp_path):
    with pytest.raises(GraphError) as info:
        load("cora", root=tmp_path, download=False)
    msg = str(info.value)
    assert "ind.cora.x" in msg and str(tmp_path / "Planetoid" / "Cora" / "raw") in msg
    with pytest.raises(GraphError, match="bat_feat.npy"):
        load("bat", root=tmp_path)


def test_interrupted_processing_leaves_no_cache(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    from torch_geometric.datasets import TUDataset

    calls = {"n": 0}

    def crash(self, *args, **kwargs):
        calls["n"] += 1
        raise RuntimeError("killed mid-processing")

    monkeypatch.setattr(TUDataset, "process", crash)
    with pytest.raises(GraphError, match="could not process"):
        load("mutag", root=data_root)
    assert calls["n"] == 1
    assert not list((tmp_path / "cache").rglob("*.pt"))
    monkeypatch.undo()
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    assert len(load("mutag", root=data_root)) == 188
    assert list((tmp_path / "cache").rglob("*.pt"))


def test_unknown_names_pass_through_to_tu(tmp_path):
    with pytest.raises(GraphError, match="COLLAB_A.txt"):
        load("collab", root=tmp_path, download=False)


@pytest.mark.parametrize("name,nodes", [("ba-shapes", 700), ("ba-community", 1400),
                                        ("tree-cycles", 871), ("tree-grid", 1231)])
def test_synthetic_explainer_benchmarks(name, nodes):
    data = load(name, seed=3)
    assert data.num_nodes == nodes and data.x.shape == (nodes, 10)
    assert data.edge_mask.dtype == torch.bool and data.edge_mask.numel() == data.num_edges
    assert data.edge_mask.any() and not data.edge_mask.all()
    validate(data, task="node")
    first_motif_node = {"ba-shapes": 300, "tree-cycles": 511, "tree-grid": 511}.get(name)
    if first_motif_node is not None:
        assert not data.node_mask[:first_motif_node].any()
        assert data.node_mask[first_motif_node:].all()
    again = load(name, seed=3)
    assert torch.equal(again.edge_index, data.edge_index)


def test_ba_shapes_reference(data_root):
    data = load("ba-shapes-reference", root=data_root)
    assert data.num_nodes == 700 and data.num_edges == 4110 and data.num_features == 10
    assert int(data.y.max()) + 1 == 4
    assert [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")] == [560, 70, 70]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_foreign_pickle_is_refused(tmp_path):
    syn = tmp_path / "explainer" / "syn"
    syn.mkdir(parents=True)
    (syn / "syn1.pkl").write_bytes(pickle.dumps((_Evil(),)))
    with pytest.raises(GraphError, match="refusing to unpickle"):
        load("ba-shapes-reference", root=tmp_path)
    (syn / "syn1.pkl").write_bytes(pickle.dumps(np.zeros(3))[:10])
    with pytest.raises(GraphError, match="not a readable pickle"):
        load("ba-shapes-reference", root=tmp_path)


def test_dgc_zip_and_dense_stream(tmp_path):
    rng = np.random.default_rng(0)
    adj = (rng.random((50, 50)) < 0.1).astype(np.int32)
    adj = np.maximum(adj, adj.T)
    np.fill_diagonal(adj, 0)
    adj[3, 3] = 1
    folder = tmp_path / "clustering" / "uat"
    folder.mkdir(parents=True)
    arrays = {"feat": rng.random((50, 4)), "adj": adj, "label": rng.integers(0, 3, 50)}
    with zipfile.ZipFile(folder / "uat.zip", "w") as zf:
        for part, arr in arrays.items():
            np.save(tmp_path / f"uat_{part}.npy", arr)
            zf.write(tmp_path / f"uat_{part}.npy", f"uat/uat_{part}.npy")
    data = load("uat", root=tmp_path)
    assert data.num_self_loops == 1
    dense = torch.zeros(50, 50, dtype=torch.long)
    dense[data.edge_index[0], data.edge_index[1]] = 1
    expected = torch.from_numpy(adj).long()
    expected[3, 3] = 0
    assert torch.equal(dense, expected)
    # and the same from loose files
    (folder / "uat.zip").unlink()
    for part in arrays:
        shutil.move(tmp_path / f"uat_{part}.npy", folder / f"uat_{part}.npy")
    assert torch.equal(load("uat", root=tmp_path).edge_index, data.edge_index)


def test_truncated_npy_is_a_graph_error(tmp_path):
    folder = tmp_path / "clustering" / "eat"
    folder.mkdir(parents=True)
    np.save(folder / "eat_feat.npy", np.zeros((5, 2)))
    np.save(folder / "eat_label.npy", np.zeros(5, dtype=int))
    np.save(folder / "eat_adj.npy", np.zeros((5, 5), dtype=np.int32))
    raw = (folder / "eat_adj.npy").read_bytes()
    (folder / "eat_adj.npy").write_bytes(raw[:-20])
    with pytest.raises(GraphError, match="truncated"):
        load("eat", root=tmp_path)


def test_karate():
    data = load("karate")
    assert (data.num_nodes, data.num_edges) == (34, 156)
    assert data.y.bincount().tolist() == [17, 17]


def test_registry_lists_every_issue_dataset():
    required = {"cora", "citeseer", "pubmed", "photo", "mutag", "proteins", "nci1", "enzymes",
                "imdb-binary", "imdb-multi", "ptc_mr", "bat", "eat", "uat", "ba-shapes",
                "ba-community", "tree-cycles", "tree-grid", "ba-shapes-reference", "karate"}
    assert required <= set(names())


def test_bad_name():
    with pytest.raises(GraphError):
        load("")


def test_download_failure_is_a_graph_error(tmp_path, monkeypatch):
    from torch_geometric.datasets import Planetoid

    def offline(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(Planetoid, "download", offline)
    with pytest.raises(GraphError, match="download failed"):
        registry_mod.load("cora", root=tmp_path)
