"""Worker for test_ccgc_ddp: fits CCGC(distributed=True) on a small SBM, alone or under torchrun,
and saves this rank's weights, labels and history to OUT/rank<R>.pt."""

import sys

import torch

from graphkit import distributed as gdist
from graphkit.cluster import CCGC, high_confidence
from graphkit.cluster.ccgc import cluster_guided_loss
from graphkit.data import load


def loss_gradient(out: str) -> None:
    """The cluster-guided loss and its gradient on fixed embeddings: with keep=1 and Z2 constant
    within each cluster the positive pairing no longer matters, so the sharded loss must equal the
    single-process one exactly (up to float summation order)."""
    torch.set_num_threads(1)
    with gdist.process_group():
        gen = torch.Generator().manual_seed(0)
        n, k = 101, 4
        z1 = torch.nn.functional.normalize(torch.randn(n, 8, generator=gen), dim=1)
        labels = torch.randint(k, (n,), generator=gen)
        centres = torch.nn.functional.normalize(torch.randn(k, 8, generator=gen), dim=1)
        z2 = centres[labels]
        min_dist = torch.rand(n, generator=gen)
        shard = gdist.RowShard(n)
        rows = slice(shard.start, shard.stop)
        z1_local = z1[rows].clone().requires_grad_()
        confident = high_confidence(min_dist[rows], 0.5, shard)
        loss = cluster_guided_loss(z1_local, z2[rows], labels[rows], confident, k, alpha=0.5,
                                   skip_first=True, gen=torch.Generator().manual_seed(1),
                                   keep=1.0, shard=shard)
        loss.backward()
        grad = shard.gather(z1_local.grad / shard.world)  # DDP would average the W copies
        torch.save({"loss": loss.detach(), "grad": grad}, f"{out}/rank{gdist.rank()}.pt")


def main(out: str, epochs: int, variant: str) -> None:
    torch.set_num_threads(1)
    with gdist.process_group():
        data = load("sbm", num_nodes=301, num_clusters=4, seed=1, num_features=16)
        model = CCGC(4, dims=32, epochs=epochs, warmup=10, eval_every=5, n_init=4,
                     random_state=3, variant=variant, distributed=True, lr=1e-3).fit(data)
        torch.save({"state": model.encoders_.state_dict(),
                    "labels": torch.from_numpy(model.labels_), "rows": model.rows_,
                    "loss": model.history_["loss"],
                    "inertia": model.history_["inertia"], "world": gdist.world_size()},
                   f"{out}/rank{gdist.rank()}.pt")


if __name__ == "__main__":
    if sys.argv[2] == "loss":
        loss_gradient(sys.argv[1])
    else:
        main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
