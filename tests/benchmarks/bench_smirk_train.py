"""Time one SMIRK training iteration, split into the reconstruction path and the cycle path.

    .venv/bin/python tests/benchmarks/bench_smirk_train.py [--batch 8] [--size 224] [--repeats 3]
    .venv/bin/python tests/benchmarks/bench_smirk_train.py --device cuda --batch 32 --amp   # the core config

"first path" = encode + FLAME + landmarks + render + mask + generate + L1 (forward only);
"cycle path" = augment + render + sample and move points + mask + generate + re-encode + cycle
loss (forward only); "iteration" = what :meth:`Trainer.train_step` does: the first path with its
backward and both Adam steps, then the cycle path with its backward and one Adam step (mean of
an even iteration, where the generator learns in the cycle, and an odd one).
"""

from __future__ import annotations

import argparse
import time

import torch

from tempsmirk.config import load_config
from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces
from tempsmirk.training import Trainer, cycle_path, first_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--amp", action="store_true", help="mixed precision (CUDA only), as train.amp")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    import tempfile

    run = tempfile.mkdtemp(prefix="bench_smirk_")
    cfg = load_config(
        None,
        [
            f"run.dir={run}",
            f"train.batch_size={args.batch}",
            f"train.device={args.device}",
            f"train.amp={args.amp}",
            f"data.synthetic.image_size={args.size}",
            "loss.weights.perceptual=0",
            "train.steps=1000",
            "train.log_every=0",
            "train.image_every=0",
        ],
    )
    t = Trainer(cfg, progress=False)
    data = SyntheticFaces(t.context.flame, SyntheticConfig(image_size=args.size, n_items=args.batch))
    batch = collate_faces([data[i] for i in range(args.batch)]).to(t.device)

    def clock() -> float:  # CUDA runs asynchronously: wait for queued kernels before reading the time
        if t.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    t.train_step(batch)  # warm-up (allocations, first-call overheads)
    t.train_step(batch)
    first, cycle, steps = [], [], []
    for _ in range(args.repeats):
        tic = clock()
        out = first_path(t.encoder, t.generator, batch, t.context, t.rng, render=True)
        first.append(clock() - tic)
        tic = clock()
        c = cycle_path(
            t.encoder,
            t.generator,
            batch.image,
            out.params,
            out.masked.hidden,
            out.screen_vertices,
            t.context,
            t.rng,
            True,
        )
        cycle.append(clock() - tic)
        del out, c
        tic = clock()
        t.train_step(batch)
        t.train_step(batch)
        steps.append((clock() - tic) / 2)
    best = lambda xs: min(xs)  # noqa: E731
    where = f"CPU ({torch.get_num_threads()} threads)" if t.device.type == "cpu" else str(t.device)
    print(
        f"SMIRK training iteration on {where}{', AMP' if args.amp else ''}, batch {args.batch}, "
        f"{args.size} px, best of {args.repeats}:"
    )
    print(f"  first path (forward)            {best(first):7.3f} s")
    print(f"  cycle path (forward)            {best(cycle):7.3f} s")
    print(f"  iteration (both passes, fwd+bwd+Adam) {best(steps):7.3f} s  (mean of an even and an odd iteration)")


if __name__ == "__main__":
    main()
