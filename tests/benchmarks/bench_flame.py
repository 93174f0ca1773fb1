"""FLAME forward and forward+backward throughput, ours beside smplx's FLAME (the reference).

Run: .venv/bin/python tests/benchmarks/bench_flame.py [--batches 1 32 256] [--device cpu]
Uses the real FLAME topology (../shared/data/ringnet) with generated bases, 300 shape
and 50 expression components, 68 landmarks, float32. Prints meshes/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flame"))
from flame_layout import make_flame_layout  # noqa: E402

from tempsmirk.flame import FLAME  # noqa: E402
from tempsmirk.meshio import read_ply  # noqa: E402
from tempsmirk.paths import shared_data  # noqa: E402


def timeit_pair(fa, fb, reps: int) -> tuple[float, float]:
    """Median seconds of ``fa`` and ``fb``, run alternately so both see the same machine load."""
    fa(), fb()  # warm-up
    ta, tb = [], []
    for _ in range(reps):
        for fn, acc in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    import smplx

    ring = shared_data("ringnet")
    v, f = read_ply(ring / "FLAME_sample.ply")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with open(d / "FLAME_NEUTRAL.pkl", "wb") as fh:
            pickle.dump(make_flame_layout(v, f), fh, protocol=2)
        for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
            (d / name).write_bytes((ring / name).read_bytes())
        ours = FLAME.from_files(d / "FLAME_NEUTRAL.pkl", d / "flame_static_embedding.pkl",
                                d / "flame_dynamic_embedding.npy").to(args.device)
        refs = {b: smplx.FLAME(model_path=str(d), gender="neutral", num_betas=300, num_expression_coeffs=50,
                               use_face_contour=True, batch_size=b).to(args.device) for b in args.batches}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"FLAME throughput on {args.device} ({torch.get_num_threads()} threads, load {load:.2f}), "
          f"meshes/s (median of {args.reps}, the two implementations alternated)")
    print(f"{'batch':>6} {'pass':>9} {'tempsmirk':>11} {'smplx':>11} {'ratio':>7}")
    for b in args.batches:
        g = torch.Generator().manual_seed(0)
        p = {k: (torch.randn(b, n, generator=g) * s).to(args.device) for k, n, s in
             (("shape", 300, 1), ("expression", 50, 1), ("global_pose", 3, .3), ("neck_pose", 3, .1),
              ("jaw_pose", 3, .1), ("eye_pose", 6, .1))}
        ref = refs[b]
        rp = dict(betas=p["shape"], expression=p["expression"], global_orient=p["global_pose"],
                  neck_pose=p["neck_pose"], jaw_pose=p["jaw_pose"], leye_pose=p["eye_pose"][:, :3],
                  reye_pose=p["eye_pose"][:, 3:], transl=torch.zeros(b, 3, device=args.device))
        for mode in ("forward", "fwd+bwd"):
            def run_ours():
                q = {k: t.clone().requires_grad_(mode != "forward") for k, t in p.items()}
                with torch.set_grad_enabled(mode != "forward"):
                    out = ours(**q)
                    if mode != "forward":
                        (out.vertices.sum() + out.landmarks68.sum()).backward()
                sync()

            def run_ref():
                q = {k: t.clone().requires_grad_(mode != "forward") for k, t in rp.items()}
                with torch.set_grad_enabled(mode != "forward"):
                    out = ref(**q)
                    if mode != "forward":
                        (out.vertices.sum() + out.joints.sum()).backward()
                sync()

            t_ours, t_ref = timeit_pair(run_ours, run_ref, args.reps)
            print(f"{b:>6} {mode:>9} {b / t_ours:>11.0f} {b / t_ref:>11.0f} {t_ref / t_ours:>6.2f}x")


if __name__ == "__main__":
    main()
