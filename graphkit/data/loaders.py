"""Loaders for the real datasets of the registry (Planetoid, TU, Amazon, deep-graph-clustering
``.npy`` files, Zachary's karate club)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import from_networkx

from graphkit.data.registry import pyg_dataset, register
from graphkit.data.safe_pickle import PlanetoidPickle
from graphkit.errors import GraphError

PLANETOID_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
TU_NAMES = ("MUTAG", "PROTEINS", "NCI1", "ENZYMES", "IMDB-BINARY", "IMDB-MULTI", "PTC_MR")


def _planetoid_files(key: str) -> list[str]:
    return [f"ind.{key}.{suffix}" for suffix in PLANETOID_SUFFIXES]


def _make_planetoid(key: str, pretty: str) -> None:
    @register(key, kind="node", source="Planetoid (Yang et al. 2016), PyG layout",
              expected=lambda root: [root / "Planetoid" / pretty / "raw" / f
                                     for f in _planetoid_files(key)])
    def _load(root: Path, download: bool = True, **kw: Any) -> Data:
        import torch_geometric.io.planetoid as planetoid_io
        from torch_geometric.datasets import Planetoid

        # The ind.* files are pickles; PyG reads them with plain pickle.load. We never unpickle
        # files we did not write, so PyG's reader gets a restricted unpickler while it runs.
        original = planetoid_io.pickle
        planetoid_io.pickle = PlanetoidPickle
        try:
            ds = pyg_dataset(Planetoid, root, "Planetoid", pretty, pretty,
                             _planetoid_files(key), download=download, **kw)
        finally:
            planetoid_io.pickle = original
        return ds[0]


for _key, _pretty in PLANETOID.items():
    _make_planetoid(_key, _pretty)


def _tu_files(name: str) -> list[str]:
    return [f"{name}_A.txt", f"{name}_graph_indicator.txt", f"{name}_graph_labels.txt"]


def load_tu(root: Path, name: str, download: bool = True, **kw: Any):
    """Any TUDataset collection, read from ``ROOT/TUDataset/NAME/raw``."""
    from torch_geometric.datasets import TUDataset
    return pyg_dataset(TUDataset, root, "TUDataset", name, name, _tu_files(name),
                       download=download, **kw)


def _make_tu(name: str) -> None:
    aliases = ("ptc-mr",) if name == "PTC_MR" else ()
    register(name.lower(), kind="graph", source="TUDataset (Morris et al. 2020)", aliases=aliases,
             expected=lambda root: [root / "TUDataset" / name / "raw" / f
                                    for f in _tu_files(name)])(
        lambda root, **kw: load_tu(root, name=name, **kw))


for _name in TU_NAMES:
    _make_tu(_name)

AMAZON_FILE = "amazon_electronics_photo.npz"


@register("photo", kind="node", source="Amazon Photo (Shchur et al. 2018), PyG layout",
          aliases=("amap", "amazon-photo"),
          expected=lambda root: [root / "Amazon" / "Photo" / "raw" / AMAZON_FILE])
def load_photo(root: Path, download: bool = True, **kw: Any) -> Data:
    from torch_geometric.datasets import Amazon
    return pyg_dataset(Amazon, root, "Amazon", "Photo", "Photo", [AMAZON_FILE],
                       download=download, **kw)[0]


# --------------------------------------------------------------------------------------------
# Deep-graph-clustering .npy format (Liu et al.): NAME_feat.npy, NAME_adj.npy, NAME_label.npy,
# optionally zipped as NAME.zip.

def _read_npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def dense_stream_to_edge_index(stream: IO[bytes], chunk_rows: int = 1024) -> tuple[torch.Tensor,
                                                                                     int]:
    """Read a dense square ``.npy`` adjacency from ``stream`` in row blocks and return its
    non-zeros as ``edge_index`` and the node count. At most ``chunk_rows`` rows are in memory."""
    shape, fortran, dtype = _read_npy_header(stream)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise GraphError(f"adjacency: expected a square 2-D array, got shape {shape}")
    if fortran or dtype.hasobject:
        raise GraphError("adjacency: Fortran-ordered or object arrays are not supported")
    n = shape[0]
    rows, cols = [], []
    for start in range(0, n, chunk_rows):
        count = min(chunk_rows, n - start)
        buf = stream.read(count * n * dtype.itemsize)
        if len(buf) != count * n * dtype.itemsize:
            raise GraphError("adjacency: file is truncated")
        block = np.frombuffer(buf, dtype=dtype).reshape(count, n)
        r, c = np.nonzero(block)
        rows.append(r + start)
        cols.append(c)
    ei = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]).astype(np.int64))
    return ei, n


def _dgc_files(root: Path, name: str) -> list[Path]:
    base = root / "clustering" / name
    return [base / f"{name}_{part}.npy" for part in ("feat", "adj", "label")]


def load_dgc(root: Path, name: str, **_: Any) -> Data:
    """Load ``ROOT/clustering/NAME/NAME_{feat,adj,label}.npy`` (or ``NAME.zip`` holding them).
    Self-loops in the file are kept as ``data.num_self_loops`` and dropped from ``edge_index``."""
    folder = root / "clustering" / name
    files = _dgc_files(root, name)
    archive = folder / f"{name}.zip"
    if all(f.is_file() for f in files):
        def opener(part: str) -> IO[bytes]:
            return open(folder / f"{name}_{part}.npy", "rb")
    elif archive.is_file():
        zf = zipfile.ZipFile(archive)
        members = {Path(m).name: m for m in zf.namelist()}

        def opener(part: str) -> IO[bytes]:
            member = members.get(f"{name}_{part}.npy")
            if member is None:
                raise GraphError(f"{archive}: has no member {name}_{part}.npy")
            return zf.open(member)
    else:
        raise GraphError(f"{name}: missing files; expected {', '.join(str(f) for f in files)} "
                         f"or {archive}")
    try:
        with opener("feat") as fh, np.errstate(over="ignore", invalid="ignore"):
            # Corrupt values that overflow float32 become inf and are rejected by validate().
            x = torch.from_numpy(np.load(fh).astype(np.float32))
        with opener("label") as fh:
            y = torch.from_numpy(np.load(fh).astype(np.int64)).view(-1)
        with opener("adj") as fh:
            edge_index, n = dense_stream_to_edge_index(fh)
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(f"{name}: could not read the .npy files ({type(exc).__name__}: {exc})") \
            from None
    if x.size(0) != n or y.size(0) != n:
        raise GraphError(f"{name}: feat has {x.size(0)} rows, label {y.size(0)}, adj {n}")
    loops = edge_index[0] == edge_index[1]
    return Data(x=x, edge_index=edge_index[:, ~loops], y=y, num_nodes=n,
                num_self_loops=int(loops.sum()))


def _make_dgc(name: str, key: str) -> None:
    register(key, kind="node", source="deep-graph-clustering .npy (Liu et al.)",
             aliases=(f"dgc-{name}",) if key == name else (),
             expected=lambda root: _dgc_files(root, name))(
        lambda root, **kw: load_dgc(root, name, **kw))


for _name in ("bat", "eat", "uat"):
    _make_dgc(_name, _name)
for _name in ("cora", "citeseer"):
    _make_dgc(_name, f"dgc-{_name}")


@register("karate", kind="node", source="Zachary's karate club (networkx, embedded)")
def load_karate(root: Path | None = None, **_: Any) -> Data:
    """Zachary's karate club: 34 nodes, 78 undirected edges, one-hot features, the two clubs as
    labels (0 = Mr. Hi, 1 = Officer)."""
    graph = nx.karate_club_graph()
    data = from_networkx(graph, group_node_attrs=None)
    data.y = torch.tensor([0 if graph.nodes[v]["club"] == "Mr. Hi" else 1 for v in graph.nodes])
    data.x = torch.eye(graph.number_of_nodes())
    for key in ("club", "name", "weight"):
        if key in data:
            del data[key]
    return data
