"""Corrupted raw files: load either works or raises GraphError; never an internal crash."""

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphkit import GraphError
from graphkit.data import load

CASES = [("mutag", "TUDataset/MUTAG/raw", "MUTAG_A.txt"),
         ("mutag", "TUDataset/MUTAG/raw", "MUTAG_graph_indicator.txt"),
         ("cora", "Planetoid/Cora/raw", "ind.cora.graph"),
         ("cora", "Planetoid/Cora/raw", "ind.cora.x"),
         ("bat", "clustering/bat", "bat_adj.npy"),
         ("bat", "clustering/bat", "bat_feat.npy")]


@pytest.fixture(scope="module")
def pristine(data_root, tmp_path_factory):
    copy = tmp_path_factory.mktemp("pristine")
    for _, folder, _ in CASES:
        if not (copy / folder).exists():
            shutil.copytree(data_root / folder, copy / folder)
    return copy


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), mode=st.sampled_from(["truncate", "garbage", "flip"]),
       where=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=64))
def test_corrupted_raw_files(pristine, tmp_path_factory, monkeypatch, case, mode, where, junk):
    name, folder, filename = case
    root = tmp_path_factory.mktemp("corrupt")
    shutil.copytree(pristine / folder, root / folder)
    monkeypatch.setenv("GRAPHKIT_CACHE", str(root / "cache"))
    path = root / folder / filename
    raw = bytearray(path.read_bytes())
    pos = int(where * (len(raw) - 1))
    if mode == "truncate":
        raw = raw[:pos]
    elif mode == "garbage":
        raw[pos:pos + len(junk)] = junk
    else:
        raw[pos] ^= 0xFF
    path.write_bytes(bytes(raw))
    try:
        load(name, root=root, download=False)
    except GraphError:
        pass
