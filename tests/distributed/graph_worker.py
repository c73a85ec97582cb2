"""Worker for test_ddp: trains a small GIN on MUTAG with fit_graph, alone or under torchrun, and
saves the final weights and metrics of this rank to OUT/rank<R>.pt."""

import sys

import torch
from torch_geometric.nn.models import GIN
from torch_geometric.nn.pool import global_add_pool

from graphkit import distributed as gdist
from graphkit.data import load
from graphkit.nn.train_graph import fit_graph


class GraphGIN(torch.nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.gnn = GIN(in_channels, 16, 2, 16)
        self.head = torch.nn.Linear(16, out_channels)

    def forward(self, x, edge_index, batch):
        return self.head(global_add_pool(self.gnn(x, edge_index), batch))


def main(root: str, out: str) -> None:
    torch.set_num_threads(1)
    with gdist.process_group():
        ds = load("mutag", root=root)
        torch.manual_seed(0)
        model = GraphGIN(ds.num_features, ds.num_classes)
        result = fit_graph(model, ds, list(range(0, 128)), list(range(128, 158)),
                           list(range(158, 188)), epochs=3, batch_size=32, lr=0.01, seed=0,
                           device="cpu")
        torch.save({"state": model.state_dict(), "result": result},
                   f"{out}/rank{gdist.rank()}.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
