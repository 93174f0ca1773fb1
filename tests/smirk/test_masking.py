"""Masking and point sampling against brute-force references and SMIRK's formulas written out."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial import Delaunay

from tempsmirk.render import project_points, render_mesh
from tempsmirk.smirk.masking import (
    REGION_WEIGHTS,
    MaskingConfig,
    SampledPoints,
    convex_hull,
    dilate,
    face_hull_points,
    face_sampling_weights,
    hull_mask,
    load_triangle_masks,
    mask_face,
    mask_image,
    point_pixels,
    sample_points,
    scaled_pixels,
    transfer_pixels,
)


@pytest.fixture(scope="module")
def head():
    from tempsmirk.flame import FLAME

    return FLAME.builtin(seed=0)


@pytest.fixture(scope="module")
def scene(head):
    """Two posed heads at 64 px: a textured image with the face drawn in, the face rendering,
    and the 68 + 105 projected landmarks."""
    g = torch.Generator().manual_seed(0)
    out = head(expression=torch.randn(2, head.n_exp, generator=g) * 0.5,
               global_pose=torch.tensor([[0.0, 0.3, 0.0], [0.1, -0.2, 0.0]]))
    cam = torch.tensor([[7.0, 0.0, 0.0], [6.5, 0.01, -0.01]])
    r = render_mesh(out.vertices, head.faces, cam, 64, face_mask=head.region_faces("face"))
    image = torch.rand(2, 3, 64, 64, generator=g) * 0.5 + 0.25
    l68 = project_points(out.landmarks68, cam, 64).normalised
    lmp = project_points(out.landmarks_mp, cam, 64).normalised
    return image, l68, lmp, r


def test_hull_mask_matches_scipy():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 30, 2, generator=g) * 1.2 - 0.6
    mask = hull_mask(pts, 40)
    c = (np.arange(40) + 0.5) / 20 - 1  # pixel centres in normalised coordinates
    xx, yy = np.meshgrid(c, c)
    for i in range(2):
        inside = Delaunay(pts[i].numpy()).find_simplex(np.stack([xx.ravel(), yy.ravel()], 1)) >= 0
        got = mask[i, 0].numpy().ravel() > 0.5
        assert (got != inside).sum() <= 2  # only pixel centres on the hull's edge may differ
    hull = convex_hull(pts[0])
    assert hull.shape[0] >= 3 and set(map(tuple, hull.tolist())) <= set(map(tuple, pts[0].tolist()))
    with_nan = torch.cat([pts, torch.full((2, 1, 2), float("nan"))], 1)  # missing points are ignored
    assert torch.equal(hull_mask(with_nan, 40), mask)


def test_dilate_is_smirks_square():
    """SMIRK dilates with max-pooling: a (2r+1)² square, i.e. Chebyshev distance <= r."""
    g = torch.Generator().manual_seed(2)
    mask = (torch.rand(1, 1, 24, 24, generator=g) > 0.97).float()
    got = dilate(mask, 3)[0, 0]
    on = mask[0, 0].nonzero().float()
    yx = torch.stack(torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij"), -1).view(-1, 2)
    expected = ((yx[:, None] - on[None]).abs().max(-1).values.min(1).values <= 3).view(24, 24).float()
    assert torch.equal(got, expected)
    # SMIRK's own spelling on the complement: 1 - maxpool(1 - mask).
    keep = 1 - mask
    assert torch.equal(1 - F.max_pool2d(1 - keep, 7, stride=1, padding=3), 1 - dilate(mask, 3))
    assert scaled_pixels(10, 224) == 10 and scaled_pixels(10, 64) == 3 and scaled_pixels(11, 32) == 2


def test_mask_hides_the_face_and_shows_the_background(head, scene):
    image, l68, lmp, r = scene
    cfg = MaskingConfig()
    m = mask_face(image, face_hull_points(l68, lmp), r, head.faces, face_sampling_weights(head), cfg,
                  torch.Generator().manual_seed(6))
    hidden = hull_mask(face_hull_points(l68, lmp), 64, scaled_pixels(cfg.hull_radius, 64))
    assert torch.equal(m.hidden, hidden)
    # The visible region is exactly: outside the dilated hull and outside the rendered face.
    assert torch.equal(m.keep, (1 - hidden) * (1 - r.mask))
    face = r.mask > 0
    assert (m.keep[face] == 0).all() and (m.keep[hidden > 0] == 0).all()
    assert 0.3 < float(m.keep.mean()) < 0.95  # background, hair and neck are visible
    assert (m.keep[:, :, 0, 0] == 1).all()  # e.g. the corners
    shown = (m.keep > 0).expand_as(image)
    assert torch.equal(m.image[shown], image[shown])  # the background as it is
    # Inside the face only sampled points, and only where the face is hidden.
    secret = (m.keep == 0).expand_as(image) & (m.painted == 0).expand_as(image)
    assert (m.image[secret] == 0).all()
    assert (m.painted * m.keep).sum() == 0 and m.painted.sum() > 0
    n = int(0.01 * 64 * 64)
    assert m.points.face.shape == (2, n)
    assert float(m.painted.sum(dim=(1, 2, 3)).max()) <= n


def _smirk_masking(img, mask, extra, wr, rendered_mask, noise, centres, patch=11):
    """SMIRK's ``masking`` (src/utils/masking.py) written out, with its random draws given."""
    mask = 1 - F.max_pool2d(1 - mask, 2 * wr + 1, stride=1, padding=wr)
    mask = mask * (1 - rendered_mask)
    masked = img * mask
    extra = extra * noise
    extra = extra * (1 - F.max_pool2d(centres, patch, stride=1, padding=patch // 2))
    masked[extra > 0] = extra[extra > 0]
    return masked


def test_mask_image_is_smirks_masking():
    g = torch.Generator().manual_seed(7)
    b, h = 2, 48
    img = torch.rand(b, 3, h, h, generator=g)
    hull = torch.zeros(b, 1, h, h)
    hull[:, :, 12:36, 14:34] = 1
    rendered = torch.zeros(b, 1, h, h)
    rendered[:, :, 10:30, 16:30] = 1
    extra = torch.zeros(b, 3, h, h)
    spots = torch.rand(b, 1, h, h, generator=g) < 0.2
    extra = torch.where(spots, img, extra)
    masked, keep, painted = mask_image(img, dilate(hull, 3), extra, rendered, 0.05, 0.02, 11,
                                       torch.Generator().manual_seed(8))
    # The same draws, in the order mask_image makes them.
    r = torch.Generator().manual_seed(8)
    noise = 1 + 0.05 * torch.randn(extra.shape, generator=r)
    centres = (torch.rand(b, 1, h, h, generator=r) < 0.02).float()
    expected = _smirk_masking(img, 1 - hull, extra, 3, rendered, noise, centres)
    assert torch.equal(masked, expected)
    assert torch.equal(keep, (1 - dilate(hull, 3)) * (1 - rendered))


def test_dropout_removes_sampled_points_only():
    """Patch centres Bernoulli(p) with 11 × 11 patches drop a share 1 - (1 - p)^121 of the points
    (70 % at SMIRK's 1 %, 45 % at its cycle's 0.5 %); the background is never dropped."""
    g = torch.Generator().manual_seed(9)
    b, h = 4, 128
    img = torch.rand(b, 3, h, h, generator=g) * 0.8 + 0.1
    hull = torch.zeros(b, 1, h, h)
    hull[:, :, 32:96, 32:96] = 1
    extra = torch.where(torch.rand(b, 1, h, h, generator=g) < 0.05, img, torch.zeros_like(img)) * hull
    none = torch.zeros(b, 1, h, h)
    kept = []
    for p in (0.0, 0.01, 0.005):
        masked, keep, painted = mask_image(img, hull, extra, none, 0.0, p, 11, torch.Generator().manual_seed(1))
        assert torch.equal(keep, 1 - hull)
        assert torch.equal(masked * keep, img * keep)  # the background, untouched
        kept.append(painted.sum())
    n = (extra.sum(1, keepdim=True) > 0).sum()
    assert kept[0] == n
    for p, k in ((0.01, kept[1]), (0.005, kept[2])):
        assert float(1 - k / n) == pytest.approx(1 - (1 - p) ** 121, abs=0.04)


def _smirk_probabilities(flame_masks_triangles: dict, n_faces: int) -> torch.Tensor:
    """SMIRK's load_probabilities_per_FLAME_triangle, written out (dict order matters)."""
    area_weights = {"neck": 0.0, "right_eyeball": 0.0, "right_ear": 0.0, "lips": 0.5, "nose": 0.5,
                    "left_ear": 0.0, "eye_region": 1.0, "forehead": 1.0, "left_eye_region": 1.0,
                    "right_eye_region": 1.0, "face_clean": 1.0, "cleaner_lips": 1.0}
    p = torch.zeros(n_faces)
    for area, w in area_weights.items():
        p[flame_masks_triangles[area]] = w
    return p


def test_region_weights_from_smirks_triangle_file(tmp_path, head):
    n = len(head.faces)
    rng = np.random.default_rng(0)
    names = [name for name, _ in REGION_WEIGHTS]
    # Overlapping regions, as the real file's are (lips inside face_clean, cleaner_lips inside lips).
    tri = {name: np.sort(rng.choice(n, size=rng.integers(50, 3000), replace=False)) for name in names}
    tri["cleaner_lips"] = tri["lips"][: len(tri["lips"]) // 2]
    np.save(tmp_path / "FLAME_masks_triangles.npy", tri, allow_pickle=True)  # how SMIRK's file is made
    masks = load_triangle_masks(tmp_path / "FLAME_masks_triangles.npy", n)
    got = face_sampling_weights(head, masks)
    assert torch.equal(got, _smirk_probabilities(tri, n))
    np.save(tmp_path / "bad.npy", {"lips": np.array([n + 5])}, allow_pickle=True)
    with pytest.raises(ValueError, match="outside"):
        load_triangle_masks(tmp_path / "bad.npy", n)


def test_region_weights_from_vertex_masks(head):
    """Without SMIRK's triangle file: face_clean = face − boundary − lips − nose, no cleaner_lips."""
    w = face_sampling_weights(head)
    region = head.region_faces
    eyes = region("eye_region") | region("left_eye_region") | region("right_eye_region") | region("forehead")
    assert (w[region("nose") & ~eyes] == 0.5).all() and (w[region("lips") & ~eyes] == 0.5).all()
    clean = region("face") & ~region("boundary") & ~region("lips") & ~region("nose")
    assert (w[clean] == 1).all() and (w[eyes] == 1).all()
    assert (w[region("left_eyeball") | region("right_eyeball") | region("scalp")] == 0).all()
    assert set(w.unique().tolist()) == {0.0, 0.5, 1.0}


def test_sample_points_follow_area_weight_and_facing():
    """Triangle frequencies ∝ weight × screen area among camera-facing triangles (SMIRK keeps a
    triangle when the mean z of its vertex normals in the projected frame is below 0.05)."""
    # Pixel space (x right, y down, depth away from the camera). Seen from the camera a facing
    # triangle is clockwise in (x, y-down) coordinates, i.e. negative signed area.
    v = torch.tensor([[0, 0, 1], [16, 0, 1], [0, 16, 1],          # facing, area 128
                      [20, 20, 1], [52, 20, 1], [20, 36, 1],      # facing, area 256
                      [40, 0, 1], [56, 0, 1], [40, 16, 1],        # facing, area 128, weight 0
                      [0, 40, 1], [0, 56, 1], [16, 40, 1]], dtype=torch.float32)[None]  # away
    faces = torch.tensor([[0, 2, 1], [3, 5, 4], [6, 8, 7], [9, 11, 10]])
    weights = torch.tensor([1.0, 0.5, 0.0, 1.0])
    n = 40000
    pts = sample_points(v, faces, weights, n, 64, torch.Generator().manual_seed(3))
    freq = torch.bincount(pts.face[0], minlength=4).float() / n
    expected = torch.tensor([128 * 1.0, 256 * 0.5, 0.0, 0.0])
    assert torch.allclose(freq, expected / expected.sum(), atol=0.015)
    assert pts.valid.all() and torch.allclose(pts.bary.sum(-1), torch.ones(1, n)) and (pts.bary >= 0).all()
    assert torch.allclose(pts.bary.mean(1), torch.full((1, 3), 1 / 3), atol=0.01)  # uniform in the triangle
    bad = sample_points(torch.full_like(v, float("nan")), faces, weights, 5, 64, torch.Generator())
    assert not bad.valid.any()


def test_points_move_with_the_mesh_and_carry_their_colour(head, scene):
    image, _, _, r = scene
    pts = sample_points(r.screen_vertices, head.faces, face_sampling_weights(head), 80, 64,
                        torch.Generator().manual_seed(4))
    before = point_pixels(pts, r.screen_vertices, head.faces, 64)
    after = point_pixels(pts, r.screen_vertices + torch.tensor([3.0, 0.0, 0.0]), head.faces, 64)
    inside = before[..., 0] < 61
    assert torch.equal(after[inside], before[inside] + torch.tensor([3, 0]))
    assert (after >= 0).all() and (after < 64).all()  # clamped to the image, as SMIRK clamps
    canvas = transfer_pixels(image, before, after)
    for i in range(2):
        for (c0, r0), (c1, r1) in zip(before[i].tolist(), after[i].tolist()):
            hit = (after[i] == torch.tensor([c1, r1])).all(-1).nonzero()
            if len(hit) == 1:  # a pixel two points land on shows one of them
                assert torch.equal(canvas[i, :, r1, c1], image[i, :, r0, c0])
    assert (canvas.sum(1) > 0).sum() == sum(len({tuple(p) for p in after[i].tolist()}) for i in range(2))
    none = SampledPoints(pts.face, pts.bary, torch.tensor([True, False]))
    assert transfer_pixels(image, before, after, none.valid)[1].abs().sum() == 0


def test_forehead_points_cover_the_synthetic_face(head):
    """Synthetic faces have no 478 points: the 68 + 105 + forehead hull, dilated, covers the face
    region (forehead included) of the true mesh; without the forehead points it does not."""
    from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces

    data = SyntheticFaces(head, SyntheticConfig(image_size=64, n_items=16))
    b = collate_faces([data[i] for i in range(16)])
    p = b.params
    out = head(shape=p.shape, expression=p.expression, global_pose=p.global_pose, jaw_pose=p.jaw_pose,
               eyelids=p.eyelids)
    face = render_mesh(out.vertices, head.faces, p.cam, 64, face_mask=head.region_faces("face")).mask
    r = scaled_pixels(10, 64)
    cover = lambda pts: float(((hull_mask(pts, 64, r) * face).sum((1, 2, 3)) / face.sum((1, 2, 3))).mean())  # noqa: E731
    with_forehead = cover(face_hull_points(b.landmarks68, b.landmarks_mp))
    without = cover(torch.cat([b.landmarks68, b.landmarks_mp], 1))
    assert with_forehead > 0.96 and with_forehead > without + 0.03


@pytest.mark.needs_shared_data
def test_forehead_hull_matches_mediapipes_hull(shared_dir):
    """On real faces the 68 + 105 + forehead hull stands in for the hull of all 478 MediaPipe
    points (module docstring: IoU 0.947 over the whole video; here 30 frames)."""
    from tempsmirk.data.clips import MP_TO_IBUG68
    from tempsmirk.flame import FLAME
    from tempsmirk.paths import shared_data
    from tempsmirk.video.io import iter_frames
    from tempsmirk.video.landmarks import FaceMesh

    frames = list(islice(iter_frames(shared_data("video", "pexels_woman_emotions.mp4")), 0, 120, 4))
    with FaceMesh(tracking=False) as mesh:
        found = [p[:, :2] for p in map(mesh, frames) if p is not None]
    assert len(found) >= 25
    pts = np.stack(found)
    lo, hi = pts.min(1), pts.max(1)
    centre, side = (lo + hi) / 2, (hi - lo).max(1) * 1.4
    p = torch.tensor((pts - centre[:, None]) / side[:, None, None] * 2, dtype=torch.float32)
    mp = FLAME.builtin(0).mp_indices
    l68, lmp = p[:, list(MP_TO_IBUG68)], p[:, mp]
    truth = hull_mask(p, 224)

    def iou(q):
        m = hull_mask(q, 224)
        return float(((m * truth).sum((1, 2, 3)) / ((m + truth) > 0).sum((1, 2, 3))).mean())

    ours, without = iou(face_hull_points(l68, lmp)), iou(torch.cat([l68, lmp], 1))
    assert ours > 0.92 and ours > without + 0.08
