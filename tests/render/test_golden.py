"""The built-in head rendered at 64 px against a stored golden image.

The golden image depends on the built-in head (:func:`tempsmirk.flame.builtin_head`), the FLAME layer
and the renderer. When one of them changes *on purpose*, look at the new image and regenerate:

    .venv/bin/python tests/render/test_golden.py --regenerate [--show out.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tempsmirk.render import Rendering, render_mesh

GOLDEN = Path(__file__).parent / "data" / "builtin_head_64.npz"
REGENERATE = "if the built-in head or the renderer changed on purpose: python tests/render/test_golden.py --regenerate"


def golden_rendering() -> Rendering:
    """A posed, expressive built-in head, SMIRK's face region only, 64 px."""
    from tempsmirk.flame import FLAME

    flame = FLAME.builtin(seed=0)
    expression = 0.8 * torch.sin(torch.arange(10, dtype=torch.float32))[None]
    out = flame(expression=expression, global_pose=torch.tensor([[0.1, 0.35, 0.05]]),
                jaw_pose=torch.tensor([[0.12, 0.0, 0.0]]))
    region = flame.region_faces("face") if "face" in flame.masks else None
    return render_mesh(out.vertices, flame.faces, torch.tensor([[7.0, 0.0, 0.0]]), 64, face_mask=region)


def _arrays(r: Rendering) -> dict[str, np.ndarray]:
    return {
        "image": (r.image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
        "pix_to_face": r.fragments.pix_to_face[0].numpy().astype(np.int32),
    }


def test_builtin_head_matches_golden_image():
    assert GOLDEN.exists(), f"missing {GOLDEN}; {REGENERATE}"
    ref = np.load(GOLDEN)
    got = _arrays(golden_rendering())
    same_face = (got["pix_to_face"] == ref["pix_to_face"]).mean()
    diff = np.abs(got["image"].astype(np.int16) - ref["image"].astype(np.int16))
    assert (ref["pix_to_face"] >= 0).mean() > 0.15, "the golden image shows too little of the head"
    assert same_face > 0.995, f"only {same_face:.2%} of pixels see the same face; {REGENERATE}"
    assert diff.mean() < 0.5 and (diff > 2).mean() < 0.005, f"image differs (mean {diff.mean():.2f}/255); {REGENERATE}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the golden image of the built-in head.")
    parser.add_argument("--regenerate", action="store_true", help=f"overwrite {GOLDEN.name}")
    parser.add_argument("--show", type=Path, help="also write the image as a PNG here (to look at it)")
    args = parser.parse_args()
    arrays = _arrays(golden_rendering())
    if args.regenerate:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(GOLDEN, **arrays)
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
    if args.show:
        import matplotlib.pyplot as plt

        plt.imsave(args.show, arrays["image"])
    if not (args.regenerate or args.show):
        parser.print_help()


if __name__ == "__main__":
    main()
