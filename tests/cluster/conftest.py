"""Fixtures of the cluster tests: a real local Ray cluster, a local HTTP server with Range support, small
safetensors models."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from compsec import formats
from compsec.scan.synthetic import benign, outlier_injected, pgd_repaired

from .range_server import RangeServer

WEIGHT = "model.layers.0.mlp.up_proj.weight"
NODE = {"num_cpus": 1, "object_store_memory": 100 << 20}


def write_model(path, kind: str, seed: int, shape=(64, 256)) -> None:
    """A one-tensor fp16 safetensors file: ``benign``, ``nf4-planted`` (PGD-repair fingerprint on 40 % of the
    weights) or ``outliers`` (injected block outliers)."""
    gen = torch.Generator().manual_seed(seed)
    w = benign(shape, "gaussian", torch.float16, gen)
    if kind == "nf4-planted":
        w = pgd_repaired(w, formats.get("nf4"), 0.4, gen)
    elif kind == "outliers":
        w = outlier_injected(w, 64, 0.05, gen)
    save_file({WEIGHT: w, "model.norm.weight": torch.ones(shape[1], dtype=torch.float16)}, str(path))


@pytest.fixture
def range_server(tmp_path):
    """A RangeServer over ``tmp_path / "served"`` (with ETags), stopped after the test."""
    root = tmp_path / "served"
    root.mkdir()
    with RangeServer(root, etag=True) as server:
        yield server


@pytest.fixture(scope="module")
def ray_cluster():
    """A head node and one worker node (1 CPU, 100 MB object store each); everything shut down after."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)  # the Cluster exports its address; later tests start their own
