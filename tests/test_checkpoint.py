import pickle

import pytest
import torch

from graphkit import GraphError
from graphkit.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_and_refusals(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "ckpt.pt"
    config = {"hidden": 16, "lr": 0.01}
    save_checkpoint(path, {"model": model.state_dict(), "epoch": 4}, kind="toy", config=config)
    state = load_checkpoint(path, kind="toy", config=config)
    assert state["epoch"] == 4
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    with pytest.raises(GraphError, match="differs in: hidden"):
        load_checkpoint(path, kind="toy", config={"hidden": 32, "lr": 0.01})
    with pytest.raises(GraphError, match="'toy' checkpoint, not 'other'"):
        load_checkpoint(path, kind="other", config=config)
    with pytest.raises(GraphError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt", kind="toy", config=config)
    (tmp_path / "foreign.pt").write_bytes(pickle.dumps({"x": object()}))
    with pytest.raises(GraphError, match="not a loadable"):
        load_checkpoint(tmp_path / "foreign.pt", kind="toy", config=config)
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(GraphError, match="not written by graphkit"):
        load_checkpoint(tmp_path / "plain.pt", kind="toy", config=config)
    assert not list(tmp_path.glob("*.tmp"))
