"""FLAME test fixtures: model files on the real FLAME topology with generated bases."""

from __future__ import annotations

import pickle
import types

import pytest
from flame_layout import dump_chumpy_wrapped, make_flame_layout, write_landmark_embedding

from tempsmirk.meshio import read_ply


@pytest.fixture(scope="session")
def flame_topology(ringnet_dir):
    v, f = read_ply(ringnet_dir / "FLAME_sample.ply")
    return v, f


@pytest.fixture(scope="session")
def flame_files(tmp_path_factory, flame_topology, ringnet_dir):
    """FLAME 2023-style (plain) and FLAME 2020-style (chumpy, Python 2) model files beside RingNet's
    landmark pair and DECA's/SMIRK's ``landmark_embedding.npy`` built from it."""
    d = tmp_path_factory.mktemp("flame")
    layout = make_flame_layout(*flame_topology)
    with open(d / "FLAME_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(layout, fh, protocol=2)
    dump_chumpy_wrapped(layout, d / "generic_model_chumpy.pkl")
    for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
        (d / name).write_bytes((ringnet_dir / name).read_bytes())
    write_landmark_embedding(d / "flame_static_embedding.pkl", d / "flame_dynamic_embedding.npy",
                             d / "landmark_embedding.npy")
    return types.SimpleNamespace(
        dir=d, plain=d / "FLAME_NEUTRAL.pkl", chumpy=d / "generic_model_chumpy.pkl",
        static=d / "flame_static_embedding.pkl", dynamic=d / "flame_dynamic_embedding.npy",
        single=d / "landmark_embedding.npy", layout=layout,
    )
