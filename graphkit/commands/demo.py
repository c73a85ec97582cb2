"""``graphkit demo``: the main job on built-in data only, in about two minutes on 2 CPU cores.

Sections come from every command module that defines ``demo(out_dir, seed) -> dict`` (keys
``title``, ``rows``, optional ``columns`` and ``files``), so each paper adds its own part.
Results go to ``demo-results/results.json`` plus any plots.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

NAME = "demo"
HELP = "run the main job on built-in data (about 2 minutes on 2 CPU cores)"
ORDER = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-results", help="output folder")
    parser.add_argument("--only", nargs="*", default=None,
                        help="only these sections (by command name, 'data' for the basics)")


def demo(out_dir: Path, seed: int) -> dict[str, Any]:
    """Dataset statistics and a small PyG GCN on karate and BA-Shapes."""

    from torch_geometric.nn.models import GCN

    from graphkit.commands.datasets import stats
    from graphkit.data import load, random_split
    from graphkit.nn import fit_node
    from graphkit.runtime import seed_everything
    rows = []
    for name, kw in (("karate", dict(hidden=16, layers=2, epochs=100, val=6, test=10)),
                     ("ba-shapes", dict(hidden=20, layers=3, epochs=400, val=70, test=70))):
        data = load(name)
        data = random_split(data, num_val=kw["val"], num_test=kw["test"], seed=seed)
        seed_everything(seed)
        model = GCN(data.num_features, kw["hidden"], kw["layers"], int(data.y.max()) + 1)
        res = fit_node(model, data, epochs=kw["epochs"], lr=0.01, device="cpu")
        s = stats(data)
        rows.append({"dataset": name, "nodes": s["nodes"], "edges": s["edges"],
                     "classes": s["classes"], "model": f"GCN-{kw['layers']}x{kw['hidden']}",
                     "test_acc": res["test_acc"], "seconds": round(res["seconds"], 2)})
    return {"title": "data layer + PyG GCN baseline", "rows": rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphkit.cli import command_modules, print_table
    from graphkit.runtime import write_json_atomic
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [("data", demo)] + [(m.NAME, m.demo) for m in command_modules()
                                   if hasattr(m, "demo") and m.NAME != NAME]
    results: dict[str, Any] = {}
    for name, fn in sections:
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        section = fn(out_dir, args.seed)
        section["seconds"] = round(time.perf_counter() - start, 2)
        results[name] = section
        if not args.json:
            print(f"\n== {section['title']} ({section['seconds']} s)")
            print_table(section["rows"], section.get("columns"))
            for f in section.get("files", []):
                print(f"   wrote {f}")
    write_json_atomic(out_dir / "results.json", results)
    if not args.json:
        print(f"\nresults: {out_dir / 'results.json'}")
    return results
