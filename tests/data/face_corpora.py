"""Stand-in corpora in SMIRK's layouts, made from frames of the shared real video.

- ``ffhq/``: four face-centred 256 px PNGs (an FFHQ256-like folder);
- ``lrs3/{trainval,test}/<speaker>/<clip>.mp4``: three 24-frame clips at 320 × 180;
- MediaPipe files from ``data_prep.faces`` (``ffhq_mp/``, LRS3's beside its videos);
- FAN files written exactly as SMIRK's preprocessing writes them — ``np.save`` of FAN's
  (n, 68, 2) float32 result per image ((0, 68, 2) where it found no face) and a pickled list
  per video (a (68, 2) array or None per frame). FAN itself is not available here, so the points
  are MediaPipe's 68 (``MP_TO_IBUG68``) moved right by :data:`FAN_SHIFT` pixels: a test can tell
  which set a dataset used;
- ``ffhq_corpus/``, ``lrs3_corpus/``: the manifests ``python -m data_prep.faces manifest`` writes.
"""

from __future__ import annotations

import pickle
import types
from itertools import islice
from pathlib import Path

import numpy as np

FAN_SHIFT = 2.0  # pixels
NO_FAN_IMAGE = "00040"  # its FAN file says "no face"
FAN_GAP = 5  # every FAN_GAP-th video frame has no FAN face (None)


def fan_points(mediapipe: np.ndarray) -> np.ndarray:
    """The stand-in FAN points of (..., 478, 3) MediaPipe points: (..., 68, 2) float32."""
    from tempsmirk.data.clips import MP_TO_IBUG68

    pts = mediapipe[..., list(MP_TO_IBUG68), :2].astype(np.float32).copy()
    pts[..., 0] += FAN_SHIFT
    return pts


def build_face_corpora(out: Path, video: Path) -> types.SimpleNamespace:
    from PIL import Image

    from data_prep.faces import main as faces_main
    from data_prep.faces import run_mediapipe
    from tempsmirk.video.io import iter_frames, write_image, write_video

    frames = list(islice(iter_frames(video), 0, 121))
    ffhq = out / "ffhq"
    for i in (0, 40, 80, 120):
        face = Image.fromarray(frames[i][:, 270:630]).resize((256, 256), Image.BILINEAR)
        write_image(ffhq / f"{i:05d}.png", np.asarray(face))
    lrs3 = out / "lrs3"
    small = [np.asarray(Image.fromarray(f).resize((320, 180), Image.BILINEAR)) for f in frames[:72]]
    for k, (split, speaker) in enumerate([("trainval", "spkA"), ("trainval", "spkB"), ("test", "spkC")]):
        write_video(lrs3 / split / speaker / f"{k:05d}.mp4", small[24 * k:24 * k + 24], 25)
    outcomes = run_mediapipe(ffhq, out / "ffhq_mp", show_progress=False)
    outcomes += run_mediapipe(lrs3, lrs3, show_progress=False)
    assert all(o.status == "done" for o in outcomes), outcomes

    for p in sorted((out / "ffhq_mp").glob("*.npy")):
        target = out / "ffhq_fan" / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        mp = np.load(p)
        np.save(target, np.zeros((0, 68, 2), np.float32) if p.stem == NO_FAN_IMAGE else fan_points(mp)[None])
    for p in sorted(lrs3.rglob("*.npy")):
        mp = np.load(p)
        target = (out / "lrs3_fan" / p.relative_to(lrs3)).with_suffix(".pkl")
        target.parent.mkdir(parents=True, exist_ok=True)
        entries = [None if t % FAN_GAP == 2 or not np.isfinite(mp[t]).all() else fan_points(mp[t])
                   for t in range(mp.shape[0])]
        with open(target, "wb") as fh:
            pickle.dump(entries, fh)

    assert faces_main(["manifest", "ffhq", str(ffhq), "--mediapipe", str(out / "ffhq_mp"), "--fan",
                       str(out / "ffhq_fan"), "--out", str(out / "ffhq_corpus"), "--quiet"]) == 0
    assert faces_main(["manifest", "lrs3", str(lrs3), "--fan", str(out / "lrs3_fan"), "--out",
                       str(out / "lrs3_corpus"), "--quiet"]) == 0
    return types.SimpleNamespace(root=out, ffhq=ffhq, lrs3=lrs3, ffhq_corpus=out / "ffhq_corpus",
                                 lrs3_corpus=out / "lrs3_corpus")
