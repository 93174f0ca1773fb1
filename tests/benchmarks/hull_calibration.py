"""How well the 68 + 105 + forehead hull stands in for MediaPipe's 478-point hull (SMIRK's mask).

    .venv/bin/python tests/benchmarks/hull_calibration.py [--scales 0 0.3 0.4 0.5]

For each forehead scale, prints the IoU and coverage (share of the 478-point hull inside ours)
on (a) every third frame of the shared real video with a face and (b) synthetic faces of the
built-in head at 224 px, on which MediaPipe also finds its 478 points. The 68 points are read off
the 478 with ``MP_TO_IBUG68`` on real frames and projected from the mesh on synthetic ones; the
105 are the FLAME MediaPipe embedding's. Needs ../shared/data.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tempsmirk.smirk.masking import face_hull_points, hull_mask


def scores(l68, lmp, truth_points, scale):
    truth = hull_mask(truth_points, 224)
    ours = hull_mask(face_hull_points(l68, lmp, scale), 224)
    inter = (ours * truth).sum((1, 2, 3))
    iou = inter / ((ours + truth) > 0).sum((1, 2, 3))
    return float(iou.mean()), float(iou.min()), float((inter / truth.sum((1, 2, 3))).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
    ap.add_argument("--synthetic", type=int, default=96, help="synthetic faces")
    args = ap.parse_args()
    from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces
    from tempsmirk.data.clips import MP_TO_IBUG68
    from tempsmirk.flame import FLAME
    from tempsmirk.paths import shared_data
    from tempsmirk.video.landmarks import FaceMesh, extract_video

    flame = FLAME.builtin(0)
    mp = flame.mp_indices.cpu()
    lm = extract_video(shared_data("video", "pexels_woman_emotions.mp4"), show_progress=False)
    pts = lm.landmarks[lm.found][::3, :, :2]
    lo, hi = pts.min(1), pts.max(1)
    centre, side = (lo + hi) / 2, (hi - lo).max(1) * 1.4
    real = torch.tensor((pts - centre[:, None]) / side[:, None, None] * 2, dtype=torch.float32)

    data = SyntheticFaces(flame, SyntheticConfig(image_size=224, n_items=args.synthetic))
    batch = collate_faces([data[i] for i in range(args.synthetic)])
    images = (batch.image.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    found, detected = [], []
    with FaceMesh(tracking=False) as mesh:
        for i, im in enumerate(images):
            p = mesh(im)
            if p is not None:
                found.append(i)
                detected.append(p[:, :2] / 112 - 1)
    syn = torch.tensor(np.stack(detected), dtype=torch.float32)
    idx = torch.tensor(found)

    print(f"real: {len(real)} frames of the shared video; synthetic: MediaPipe found {len(found)} of "
          f"{args.synthetic} faces")
    print(f"{'scale':>6} {'real IoU':>9} {'(min)':>7} {'coverage':>9} {'synth IoU':>10} {'(min)':>7} {'coverage':>9}")
    for s in args.scales:
        r = scores(real[:, list(MP_TO_IBUG68)], real[:, mp], real, s)
        y = scores(batch.landmarks68[idx], batch.landmarks_mp[idx], syn, s)
        print(f"{s:>6.2f} {r[0]:>9.3f} {r[1]:>7.3f} {r[2]:>9.3f} {y[0]:>10.3f} {y[1]:>7.3f} {y[2]:>9.3f}")


if __name__ == "__main__":
    main()
