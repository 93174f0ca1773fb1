"""The synthetic AffectNet: emotion sampling, AffectNet's file layout, ground truth alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.data.affectnet import CSV_COLUMNS, parse_annotations, read_index
from tempsmirk.evaluation.synthetic_affectnet import (
    FROWN,
    GROUND_TRUTH_FILE,
    IMAGES_DIR,
    PROTOTYPES,
    SMILE,
    SyntheticAffectNetConfig,
    ground_truth_params,
    load_ground_truth,
    sample_emotions,
    write_synthetic_affectnet,
)
from tempsmirk.render import project_points
from tempsmirk.video.io import read_image


def test_sample_emotions_follow_the_documented_mapping():
    cfg = SyntheticAffectNetConfig(expression_noise=0.0, va_noise=0.0)
    labels = torch.arange(11).repeat(20)
    e = sample_emotions(labels, cfg, 50, torch.Generator().manual_seed(0))
    assert e.expression.shape == (220, 50) and e.jaw_pose.shape == (220, 3) and e.eyelids.shape == (220, 2)
    for k, proto in enumerate(PROTOTYPES):
        rows = labels == k
        s = e.intensity[rows]
        assert torch.all((s >= cfg.intensity_min) & (s <= cfg.intensity_max))
        want = torch.zeros(50)
        for c, v in proto.components:
            want[c] = v
        # Without noise: expression = s * prototype, (v, a) = s * centroid (clipped).
        torch.testing.assert_close(e.expression[rows], s[:, None] * want)
        torch.testing.assert_close(e.valence[rows], (s * proto.valence).clamp(-1, 1))
        torch.testing.assert_close(e.arousal[rows], (s * proto.arousal).clamp(-1, 1))
        assert torch.all(e.jaw_pose[rows, 0] >= s * proto.jaw_open - 1e-6)
    assert torch.all(e.valence[labels == 10] == -2) and torch.all(e.arousal[labels == 10] == -2)
    known = labels < 10
    assert torch.all(e.valence[known].abs() <= 1) and torch.all(e.arousal[known].abs() <= 1)
    assert torch.all((e.eyelids >= 0) & (e.eyelids <= 1))


def test_valence_reads_the_expression_noise():
    # Neutral faces: valence is the linear read-out of the noise (smile up, frown down).
    cfg = SyntheticAffectNetConfig(va_noise=0.0)
    e = sample_emotions(torch.zeros(400, dtype=torch.long), cfg, 50, torch.Generator().manual_seed(1))
    smile_minus_frown = e.expression[:, SMILE] - e.expression[:, FROWN]
    assert np.corrcoef(smile_minus_frown.numpy(), e.valence.numpy())[0, 1] > 0.8
    a = sample_emotions(torch.zeros(400, dtype=torch.long), cfg, 50, torch.Generator().manual_seed(1))
    assert torch.equal(a.expression, e.expression)  # a function of the generator


def test_files_round_trip_through_the_affectnet_reader(tiny_affectnet, tiny_config):
    root = tiny_affectnet
    train_rows, train_report = parse_annotations(root / "training.csv")
    val_rows, val_report = parse_annotations(root / "validation.csv")
    header = (root / "training.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == CSV_COLUMNS
    assert train_report.kept == 8 * tiny_config["n_train_per_class"] and not train_report.malformed
    assert val_report.kept == 8 * tiny_config["n_val_per_class"] and val_report.total == val_report.kept
    # The extra rows carry codes 8/9/10; code 10 has AffectNet's -2 valence/arousal.
    assert sum(train_report.dropped_code.values()) == train_report.total - train_report.kept > 0
    assert set(train_report.dropped_code) <= {8, 9, 10}
    for rows, per_class in ((train_rows, tiny_config["n_train_per_class"]), (val_rows, tiny_config["n_val_per_class"])):
        assert np.bincount([r.expression for r in rows], minlength=8).tolist() == [per_class] * 8
    gt = load_ground_truth(root)
    where = {p: i for i, p in enumerate(gt.paths)}
    size = tiny_config["image_size"]
    for r in train_rows[:5] + val_rows[:5]:
        i = where[r.path]
        assert int(gt.label[i]) == r.expression
        assert r.valence == pytest.approx(float(gt.valence[i]), abs=1e-5)
        image = read_image(root / IMAGES_DIR / r.path)
        assert image.shape == (size, size, 3)
        x, y, w, h = r.box
        assert w == h and w * 1.25 == pytest.approx(size, abs=1.0)  # the crop is the whole image
    # The landmarks column is the 68 ground-truth landmarks in pixels (centres at integers).
    from tempsmirk.flame import FLAME

    flame = FLAME.builtin(seed=0, n_shape=300, n_exp=50)
    r = val_rows[0]
    p = gt.params[torch.tensor([where[r.path]])]
    out = flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose, jaw_pose=p.jaw_pose,
                eyelids=p.eyelids)
    px = (project_points(out.landmarks68, p.cam, size).normalised[0] + 1) * size / 2 - 0.5
    np.testing.assert_allclose(r.landmarks, px.numpy(), atol=0.02)


def test_index_aligns_with_ground_truth(tiny_affectnet, tiny_index, tiny_config):
    assert set(tiny_index.split) == {"train", "validation"}
    assert len(tiny_index) == 8 * (tiny_config["n_train_per_class"] + tiny_config["n_val_per_class"])
    gt = load_ground_truth(tiny_affectnet / GROUND_TRUTH_FILE)
    params = ground_truth_params(gt, tiny_index.source_paths)
    assert params.expression.shape == (len(tiny_index), 50)
    i = gt.paths.index(tiny_index.source_paths[7])
    assert torch.equal(params.expression[7], gt.params.expression[i])
    with pytest.raises(ValueError, match="no ground truth"):
        ground_truth_params(gt, ["1/not_there.jpg"])
    assert read_index(tiny_index.crop_paths[0].parents[3]).crop_paths == tiny_index.crop_paths
    assert (tiny_index.crop.rule, tiny_index.crop.scale, tiny_index.crop.size) == ("csv_box", 1.25, 32)


def test_training_split_has_affectnets_class_mix(tmp_path):
    from tempsmirk.evaluation.synthetic_affectnet import (
        AFFECTNET_TRAIN_COUNTS,
        SyntheticAffectNetConfig,
        train_class_counts,
    )

    # The published counts of AffectNet's manually annotated training split (287,651 images).
    assert sum(AFFECTNET_TRAIN_COUNTS) == 287651
    counts = np.array(train_class_counts(SyntheticAffectNetConfig(n_train_per_class=1000)))
    share = counts / counts.sum()
    np.testing.assert_allclose(share, np.array(AFFECTNET_TRAIN_COUNTS) / 287651, atol=2e-4)
    assert share[1] == pytest.approx(0.467, abs=0.001)  # about half Happy
    assert min(train_class_counts(SyntheticAffectNetConfig(n_train_per_class=2))) == 1  # never empty
    cfg = SyntheticAffectNetConfig(n_train_per_class=3, n_val_per_class=1, image_size=32, dropped_fraction=0.0)
    root = write_synthetic_affectnet(tmp_path / "skewed", cfg, progress=False)
    train_rows, _ = parse_annotations(root / "training.csv")
    val_rows, _ = parse_annotations(root / "validation.csv")
    assert np.bincount([r.expression for r in train_rows], minlength=8).tolist() == list(train_class_counts(cfg))
    assert np.bincount([r.expression for r in val_rows], minlength=8).tolist() == [1] * 8


def test_existing_set_is_reused(tiny_affectnet, tmp_path, tiny_config):
    from tempsmirk.evaluation.synthetic_affectnet import SyntheticAffectNetConfig as Cfg

    before = (tiny_affectnet / "training.csv").stat().st_mtime_ns
    assert write_synthetic_affectnet(tiny_affectnet, Cfg(**tiny_config), progress=False) == tiny_affectnet
    assert (tiny_affectnet / "training.csv").stat().st_mtime_ns == before
    with pytest.raises(FileNotFoundError, match="synthetic"):
        load_ground_truth(tmp_path)
