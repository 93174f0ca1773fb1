"""One resolver for a user's FLAME files: SMIRK's assets/, DECA's data/, files side by side, or a
model file; missing files are named with the feature that needs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from flame_layout import write_smirk_extras

from tempsmirk.flame import FLAME, MissingAssetWarning, load_flame, resolve_flame_assets
from tempsmirk.flame.assets import LAYOUT
from tempsmirk.flame.io import FlameFileError, load_mask_triangles
from tempsmirk.paths import repo_root

pytestmark = pytest.mark.needs_shared_data

V, F = 5023, 9976
SMIRK_TRIANGLE_REGIONS = {"neck", "right_eyeball", "right_ear", "lips", "nose", "left_ear", "eye_region",
                          "forehead", "left_eye_region", "right_eye_region", "face_clean", "cleaner_lips"}


def _link(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)  # the model is 53 MB; a link is what a copy would be to the resolver
    return dst


@pytest.fixture(scope="module")
def smirk_assets(flame_files, tmp_path_factory) -> Path:
    """A SMIRK checkout's assets/ folder."""
    a = tmp_path_factory.mktemp("smirk") / "assets"
    _link(flame_files.chumpy, a / "FLAME2020" / "generic_model.pkl")
    _link(flame_files.single, a / "landmark_embedding.npy")
    write_smirk_extras(a, V, F)
    return a


@pytest.fixture(scope="module")
def deca_data(flame_files, tmp_path_factory) -> Path:
    """A DECA checkout's data/ folder after its fetch script (model moved out of FLAME2020/)."""
    d = tmp_path_factory.mktemp("deca") / "data"
    _link(flame_files.chumpy, d / "generic_model.pkl")
    _link(flame_files.single, d / "landmark_embedding.npy")
    (d / "FLAME2020").mkdir()
    return d


def test_smirk_assets_folder_and_its_model_file_resolve_alike(smirk_assets):
    a = resolve_flame_assets(smirk_assets)
    assert a.model == smirk_assets / "FLAME2020" / "generic_model.pkl"
    assert a.landmark_embedding == smirk_assets / "landmark_embedding.npy"
    assert a.static_landmarks is None and a.dynamic_landmarks is None
    assert a.mediapipe_landmarks == smirk_assets / "mediapipe_landmark_embedding" / "mediapipe_landmark_embedding.npz"
    assert a.masks == smirk_assets / "FLAME_masks" / "FLAME_masks.pkl"
    assert a.mask_triangles == smirk_assets / "FLAME_masks" / "FLAME_masks_triangles.npy"
    assert a.eyelids == (smirk_assets / "l_eyelid.npy", smirk_assets / "r_eyelid.npy")
    b = resolve_flame_assets(smirk_assets / "FLAME2020" / "generic_model.pkl")
    assert (b.model, b.landmark_embedding, b.mediapipe_landmarks, b.masks, b.mask_triangles, b.eyelids) == (
        a.model, a.landmark_embedding, a.mediapipe_landmarks, a.masks, a.mask_triangles, a.eyelids)
    assert a.folders == b.folders == (smirk_assets / "FLAME2020", smirk_assets)


def test_load_flame_on_smirk_assets_gives_everything_smirk_uses(smirk_assets, flame_files):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingAssetWarning)
        flame = load_flame(smirk_assets, 300, 50)
    assert flame.has_landmarks68 and flame.has_mediapipe and flame.has_eyelids
    assert {"face", "eye_region", "lips"} <= set(flame.masks)
    ref = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic)
    g = torch.Generator().manual_seed(0)
    p = dict(shape=torch.randn(4, 300, generator=g), expression=torch.randn(4, 50, generator=g),
             global_pose=0.3 * torch.randn(4, 3, generator=g), jaw_pose=0.1 * torch.rand(4, 3, generator=g))
    assert torch.equal(flame(**p).landmarks68, ref(**p).landmarks68)
    lids = torch.tensor([[1.0, 0.0]])
    left = torch.from_numpy(np.load(smirk_assets / "l_eyelid.npy"))
    torch.testing.assert_close(flame(eyelids=lids).vertices[0] - flame().vertices[0], left)


def test_deca_data_folder(deca_data):
    a = resolve_flame_assets(deca_data)
    assert a.model == deca_data / "generic_model.pkl" and a.landmark_embedding == deca_data / "landmark_embedding.npy"
    assert a.mediapipe_landmarks is None and a.eyelids is None and a.masks is None
    # DECA ships no MediaPipe embedding: training needs it, and says so.
    with pytest.raises(FileNotFoundError, match=r"mediapipe_landmark_embedding\.npz not found in .*MediaPipe"):
        load_flame(deca_data, 300, 50)
    # Looking at the model needs nothing more; what SMIRK would use is named in warnings.
    with pytest.warns(MissingAssetWarning) as record:
        flame = load_flame(deca_data, 300, 50, require=())
    text = " ".join(str(w.message) for w in record)
    assert all(name in text for name in ("mediapipe_landmark_embedding.npz", "l_eyelid.npy", "FLAME_masks.pkl"))
    assert "landmark_embedding.npy (DECA" not in text  # found, so not named
    assert flame.has_landmarks68 and not flame.has_mediapipe


def test_files_side_by_side_with_ringnets_pair(flame_files, tmp_path):
    d = tmp_path / "flame"
    _link(flame_files.chumpy, d / "generic_model.pkl")
    for f in (flame_files.static, flame_files.dynamic):
        _link(f, d / f.name)
    extras = write_smirk_extras(tmp_path / "extras", V, F)
    for p in extras.values():
        _link(p, d / p.name)
    a = resolve_flame_assets(d)
    assert a.landmark_embedding is None
    assert (a.static_landmarks, a.dynamic_landmarks) == (d / "flame_static_embedding.pkl",
                                                          d / "flame_dynamic_embedding.npy")
    assert a.mediapipe_landmarks == d / "mediapipe_landmark_embedding.npz"
    assert a.masks == d / "FLAME_masks.pkl" and a.mask_triangles == d / "FLAME_masks_triangles.npy"
    flame = load_flame(d, 300, 50)
    assert flame.has_landmarks68 and flame.has_mediapipe and flame.has_eyelids
    # A FLAME 2023 model file under its own name, with the files beside it.
    _link(flame_files.plain, d / "flame2023.pkl")
    assert resolve_flame_assets(d / "flame2023.pkl").model == d / "flame2023.pkl"
    assert load_flame(d / "flame2023.pkl", 300, 50).has_landmarks68


def test_files_beside_the_model_come_first(flame_files, tmp_path):
    """Some projects keep landmark_embedding.npy inside FLAME2020/ beside the model."""
    inner = _link(flame_files.single, tmp_path / "FLAME2020" / "landmark_embedding.npy")
    _link(flame_files.chumpy, tmp_path / "FLAME2020" / "generic_model.pkl")
    _link(flame_files.single, tmp_path / "landmark_embedding.npy")
    assert resolve_flame_assets(tmp_path).landmark_embedding == inner


def test_missing_files_are_named_with_the_feature_that_needs_them(flame_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        resolve_flame_assets(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"FLAME2020/generic_model\.pkl.*generic_model\.pkl.*assets/"):
        resolve_flame_assets(tmp_path)
    _link(flame_files.chumpy, tmp_path / "generic_model.pkl")
    _link(flame_files.static, tmp_path / "flame_static_embedding.pkl")
    with pytest.raises(FileNotFoundError) as err:
        load_flame(tmp_path / "generic_model.pkl", 10, 10)
    msg = str(err.value)
    assert "flame_dynamic_embedding.npy (RingNet's pair: only flame_static_embedding.pkl was found)" in msg
    assert "68 iBUG landmarks" in msg and "MediaPipe landmark loss" in msg
    with pytest.raises(ValueError, match="unknown FLAME asset features"):
        load_flame(tmp_path, 10, 10, require=("landmarks",))


def test_mask_triangles_hold_smirks_regions(smirk_assets):
    tri = load_mask_triangles(resolve_flame_assets(smirk_assets).mask_triangles, F)
    assert set(tri) == SMIRK_TRIANGLE_REGIONS
    assert all(v.dtype == np.int64 and v.max() < F for v in tri.values())
    with pytest.raises(FlameFileError, match="outside"):
        load_mask_triangles({"face_clean": np.array([F])}, F)


def test_readme_table_lists_exactly_what_the_resolver_accepts():
    text = (repo_root() / "README.md").read_text()
    section = text.split("## Real assets", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Za-z0-9_./]+\.(?:pkl|npy|npz))`", section))
    accepted = {n for names in LAYOUT.values() for n in names}
    assert accepted <= listed, accepted - listed
    assert {n for n in listed if "/" in n} <= accepted  # no layout the resolver does not know


_RECONSTRUCT = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith("tempsmirk.training"):
            raise ImportError("inference imported " + name)
sys.meta_path.insert(0, Block())
from tempsmirk.reconstruct.pipeline import load_models
from tempsmirk.smirk import SmirkEncoder, save_smirk_checkpoint
ckpt = save_smirk_checkpoint(sys.argv[1], SmirkEncoder())
_, _, flame = load_models(ckpt, sys.argv[2], with_generator=False)
assert flame.has_landmarks68 and flame.has_mediapipe and flame.has_eyelids and "face" in flame.masks
"""


@pytest.mark.slow
def test_reconstruct_takes_smirk_assets_without_importing_training(smirk_assets, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(repo_root()))
    r = subprocess.run([sys.executable, "-c", _RECONSTRUCT, str(tmp_path / "encoder.pt"), str(smirk_assets)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
