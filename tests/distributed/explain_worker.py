"""Worker for test_explain_ddp: runs ``graphkit explain`` (the real CLI path, with
``--distributed`` under torchrun) and saves what the test compares: from the scoring rank the
metrics, masks and model weights (OUT/explain.pt), and from every rank the targets it explained
itself (OUT/chunks<RANK>.pt)."""

import os
import sys

import torch

import graphkit.commands.explain as cmd
import graphkit.explain.sharded as sharded
from graphkit.cli import main


def _capture(out: str) -> None:
    evaluate, run_explainer = cmd.evaluate, sharded.run_explainer
    explained: list[list[int]] = []

    def run_explainer_spy(name, model, x, edge_index, index, **kwargs):
        explained.append(torch.as_tensor(index).tolist())
        return run_explainer(name, model, x, edge_index, index, **kwargs)

    def evaluate_spy(*args, **kwargs):
        metrics, res, model, data = evaluate(*args, **kwargs)
        torch.save(explained, f"{out}/chunks{os.environ.get('RANK', 0)}.pt")
        if res is not None:
            torch.save({"metrics": metrics, "edge_mask": res.edge_mask.cpu(),
                        "edge_ids": res.sub.edge_ids.cpu(), "target": res.target.cpu(),
                        "state": model.state_dict()}, f"{out}/explain.pt")
        return metrics, res, model, data

    cmd.evaluate, sharded.run_explainer = evaluate_spy, run_explainer_spy


if __name__ == "__main__":
    out_dir, *argv = sys.argv[1:]
    torch.set_num_threads(1)
    _capture(out_dir)
    sys.exit(main(argv))
