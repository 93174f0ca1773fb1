"""Renderer speed at 224 px on FLAME's real topology (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_render.py [--batches 1 8 32] [--repeats 7]

Reads ``FLAME_sample.ply`` from the shared data folder (see :mod:`tempsmirk.paths`) and prints
forward and forward+backward milliseconds per image for the whole head and for the face region,
on CPU at each batch size and, when CUDA is available, at batch 256 on the GPU. Times are medians
over ``--repeats`` runs after two warm-up runs, with the best run in brackets (on a shared machine
the best run is the better estimate of what the code costs; the load average is printed first).
Goals (issue 3): CPU <= 10 ms/image forward+backward
at batch 8 for the face region; GPU >= 2000 images/s at batch 256.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tempsmirk.meshio import read_ply
from tempsmirk.paths import shared_data
from tempsmirk.render import faces_in_region, render_mesh

# A 3/4 view with the camera SMIRK's encoder typically predicts (s about 7-9 for a cropped face).
CAM = (7.5, 0.0, 0.01)
YAW = 0.3  # radians


def face_region(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Stand-in face region (no FLAME mask file here): vertices in front (z > 0) and below the
    forehead (y < 0.06 m), as a boolean per face."""
    front = (vertices[:, 2] > 0.0) & (vertices[:, 1] < 0.06)
    return faces_in_region(faces, front.nonzero().squeeze(1))


def rotate_y(vertices: torch.Tensor, angle: float) -> torch.Tensor:
    c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
    rot = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=vertices.dtype)
    return vertices @ rot.T


def time_ms(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    """(median, best) wall-clock milliseconds of ``fn()``."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def bench(vertices, faces, mask, batch: int, device: torch.device, repeats: int):
    """(forward, forward+backward) as (median, best) ms per image, and covered pixels per image."""
    # Slightly different poses per batch element, so no two images are identical.
    jitter = torch.linspace(-0.05, 0.05, batch)
    verts = torch.stack([rotate_y(vertices, YAW + float(j)) for j in jitter]).to(device).requires_grad_()
    cam = torch.tensor(CAM).expand(batch, 3).to(device)
    faces, mask = faces.to(device), None if mask is None else mask.to(device)

    def forward():
        with torch.no_grad():
            return render_mesh(verts, faces, cam, 224, face_mask=mask)

    def forward_backward():
        render_mesh(verts, faces, cam, 224, face_mask=mask).image.sum().backward()
        verts.grad = None

    covered = int(forward().mask.sum().item() / batch)
    per_image = lambda t: (t[0] / batch, t[1] / batch)  # noqa: E731
    return per_image(time_ms(forward, device, repeats)), per_image(time_ms(forward_backward, device, repeats)), covered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    path = shared_data("ringnet", "FLAME_sample.ply")
    v, f = read_ply(path)
    vertices, faces = torch.from_numpy(v).float(), torch.from_numpy(f)
    region = face_region(vertices, faces)
    print(f"mesh: {path.name}, {len(vertices)} vertices, {len(faces)} faces; 224 px; yaw {YAW} rad, cam {CAM}")
    print(f"face region: defined geometrically for this benchmark (no FLAME mask file): "
          f"faces with all vertices at z > 0 and y < 0.06 m -> {int(region.sum())} faces")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads of {os.cpu_count()}; load average {load}")
    print("ms/image: median [best] over the repeats")
    print(f"{'device':6} {'region':6} {'batch':>5} {'px/img':>7} {'fwd ms/img':>16} "
          f"{'fwd+bwd ms/img':>16} {'img/s (f+b)':>12}")
    runs = [(torch.device("cpu"), b) for b in args.batches]
    if torch.cuda.is_available():
        runs.append((torch.device("cuda"), args.gpu_batch))
    for device, batch in runs:
        for name, mask in (("head", None), ("face", region)):
            fwd, fb, covered = bench(vertices, faces, mask, batch, device, args.repeats)
            print(
                f"{device.type:6} {name:6} {batch:5d} {covered:7d} {fwd[0]:8.2f} [{fwd[1]:5.2f}] "
                f"{fb[0]:8.2f} [{fb[1]:5.2f}] {1e3 / fb[0]:12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
