"""``graphkit datasets``: every registry name, whether it loads here, and its statistics."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "datasets"
HELP = "list registry datasets, whether each loads, and its statistics"
ORDER = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=None, help="dataset root")
    parser.add_argument("--only", nargs="*", default=None, help="only these names")


def stats(obj: Any) -> dict[str, Any]:
    """Nodes, edges, features, classes (and graphs for collections) of a loaded dataset."""
    from torch_geometric.data import Data
    if isinstance(obj, Data):
        y = obj.y
        classes = int(y.max()) + 1 if y is not None and y.numel() else None
        return {"graphs": 1, "nodes": obj.num_nodes, "edges": obj.num_edges,
                "features": obj.num_node_features, "classes": classes}
    total_nodes = sum(d.num_nodes for d in obj)
    total_edges = sum(d.num_edges for d in obj)
    return {"graphs": len(obj), "nodes": total_nodes, "edges": total_edges,
            "features": obj.num_node_features, "classes": obj.num_classes}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphkit.cli import print_table
    from graphkit.data import load, names, spec
    from graphkit.errors import GraphError
    rows = []
    for name in args.only or names():
        entry = spec(name)
        row: dict[str, Any] = {"name": entry.name if entry else name}
        try:
            row.update(stats(load(name, root=args.root, download=False)), loads=True)
        except GraphError as exc:
            row.update(loads=False, error=str(exc))
        rows.append(row)
    if not args.json:
        print_table(rows, ["name", "loads", "graphs", "nodes", "edges", "features", "classes"])
    return {"datasets": rows}
