"""Load a dataset, check it, train PyG's GCN on the MGNN paper's random split."""

from torch_geometric.nn.models import GCN

import graphkit
from graphkit.data import load, random_split, validate
from graphkit.nn import fit_node

data = validate(load("ba-shapes", seed=0), task="node")
data = random_split(data, num_val=70, num_test=70, seed=0)
graphkit.seed_everything(0)
model = GCN(data.num_features, hidden_channels=20, num_layers=3, out_channels=4)
print(fit_node(model, data, epochs=300, lr=0.01, device="auto"))
