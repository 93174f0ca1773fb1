"""SMIRK trains on the mix: the YAML profile, build_dataset and 20 CPU steps through the Trainer."""

from __future__ import annotations

import csv
import math
import warnings

import pytest

from tempsmirk.config import load_config
from tempsmirk.data import build_dataset
from tempsmirk.data.faces import FaceDataWarning
from tempsmirk.data.mix import FaceMix, MixedBatches
from tempsmirk.flame import load_flame
from tempsmirk.paths import repo_root
from tempsmirk.training.trainer import Trainer

PROFILE = repo_root() / "tempsmirk" / "configs" / "smirk_mix.yaml"


def test_build_dataset_for_the_built_in_sources(tmp_path):
    cfg = load_config(None, [f"run.dir={tmp_path}", "data.synthetic.image_size=32", "data.synthetic.n_items=3"])
    data = build_dataset(cfg.data, load_flame(None, 300, 50))
    assert len(data.dataset) == 3 and data.batch_sampler(2, 0, 0, 1) is None
    cfg = load_config(PROFILE, [f"run.dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"have a percentage but no dir.*data_prep.faces manifest"):
        build_dataset(cfg.data, load_flame(None, 300, 50))


@pytest.mark.slow
@pytest.mark.needs_shared_data
def test_twenty_cpu_steps_on_the_mix(face_corpora, tmp_path):
    overrides = [
        f"data.mix.sources.ffhq.dir={face_corpora.ffhq_corpus}",
        f"data.mix.sources.lrs3.dir={face_corpora.lrs3_corpus}",
        "data.mix.sources.ffhq.percentage=0.5", "data.mix.sources.lrs3.percentage=0.5",
        "data.mix.sources.mead.percentage=0", "data.mix.sources.celeba.percentage=0",
        "data.mix.sources.mead_sides.percentage=0", "data.mix.image_size=32", "data.num_workers=0",
        "model.frozen=[]", "loss.weights.perceptual=0", "train.steps=20", "train.batch_size=4", "train.device=cpu",
        "train.amp=false", "train.log_every=1", "train.image_every=10", "train.checkpoint_every=10",
        f"run.dir={tmp_path / 'run'}"]
    cfg = load_config(PROFILE, overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FaceDataWarning)
        data = build_dataset(cfg.data, load_flame(cfg.model.flame_path, cfg.model.n_shape, cfg.model.n_exp))
    assert isinstance(data.dataset, FaceMix) and data.dataset.names == ("lrs3", "ffhq")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FaceDataWarning)
        trainer = Trainer(cfg, progress=False)  # builds the same mix from data.source=mix
    assert isinstance(trainer.dataset, FaceMix)
    assert isinstance(trainer.loader(0, 1).batch_sampler, MixedBatches)
    trainer.train()
    assert trainer.step == 20 and (tmp_path / "run" / "smirk.pt").exists()
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    for r in rows:
        assert all(math.isfinite(float(r[k])) for k in ("total", "landmarks_fan", "landmarks_mp", "reconstruction"))
    first = sum(float(r["landmarks_mp"]) for r in rows[:4])
    last = sum(float(r["landmarks_mp"]) for r in rows[-4:])
    assert last < first  # the encoder learns where the real faces' landmarks are
