"""CCGC on Cora: fit without labels, then score the partition.

    GRAPHKIT_DATA=/work/shared/datasets python examples/ccgc_cora.py [--epochs 400]
"""

import argparse

from graphkit.cluster import CCGC
from graphkit.data import load
from graphkit.metrics import cluster_scores

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="cora")
parser.add_argument("--epochs", type=int, default=400)
args = parser.parse_args()

data = load(args.dataset)
k = int(data.y.max()) + 1
model = CCGC(k, epochs=args.epochs, selection="consensus", random_state=0, verbose=True)
labels = model.fit_predict(data)  # no labels go in
print({name: round(100 * v, 2) for name, v in cluster_scores(data.y, labels).items()})
