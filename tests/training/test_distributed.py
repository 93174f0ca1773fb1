"""Data-parallel training under torchrun (gloo, 2 CPU processes) and Ctrl-C during training.

What one process computes is the reference: a 2-process run of the same config (same global
batch) must log the same global losses step by step and end with networks that compute the same
outputs, and its checkpoint resumed by one process must continue as the one-process run does.
Weights themselves are compared through the losses and what they compute: a BatchNorm bias that
feeds another BatchNorm has a gradient of 0 up to rounding, and Adam turns rounding noise of
either sign into steps of ±lr, so such weights differ by up to 2·lr per step between any two
summation orders (one process or two) — and in Adam's first steps, whose size is lr whatever the
gradient's, any gradient element below rounding noise does the same. The losses agree to 2e-3
relative (the reconstruction loss included: the generator's effect). The encoder's outputs agree
to 1e-2 (an expression coefficient that only its tiny regulariser pulls on moved by 4e-3); the
generator's images on unseen inputs, far more parameters with tiny gradients, differ by 3e-3 on
average after 2 steps and are not compared.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tempsmirk.config import load_config
from tempsmirk.smirk.encoder import SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator
from tempsmirk.training import Trainer
from tempsmirk.training.distributed import GlobalBatchNorm

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")
CONFIG = ROOT / "tempsmirk" / "configs" / "smirk_synthetic_small.yaml"
#: Global batch 8 at 64 px, 3 steps; the reconstruction path with both networks and both
#: optimisers. No cycle and every sampled point dropped: no random draw reaches the networks
#: (each rank draws its own, so those agree with one process only in distribution).
EXACT = ["train.steps=3", "train.batch_size=8", "data.synthetic.image_size=64", "data.synthetic.n_items=16",
         "loss.weights.perceptual=0", "train.log_every=1", "train.image_every=2", "train.checkpoint_every=2",
         "train.device=cpu", "loss.weights.cycle=0", "loss.masking.dropout=1"]
#: SMIRK's whole iteration (cycle on), global batch 4 at 32 px.
FULL = ["train.steps=3", "train.batch_size=4", "data.synthetic.image_size=32", "data.synthetic.n_items=8",
        "loss.weights.perceptual=0", "train.log_every=1", "train.image_every=0", "train.checkpoint_every=1",
        "train.device=cpu"]
#: Clip training with the temporal terms: 2 clips of 2 frames, one clip per process.
CLIPS = FULL + ["train.batch_size=2", "data.synthetic.clip_length=2", "temporal.enabled=true"]
LOSSES = ["landmarks_fan", "landmarks_mp", "expression_reg", "jaw_reg", "shape_reg", "reconstruction", "total"]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _torchrun(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _worker(out: Path, until: int, overrides: list[str], nan_rank: int = -1, nan_step: int = -1) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    _torchrun(str(WORKER), str(out), str(until), str(nan_rank), str(nan_step), str(CONFIG), *overrides)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


class _Log:
    """A run's log.csv: ``log[column]`` -> (N,) float64 tensor; ``columns``."""

    def __init__(self, path: Path) -> None:
        with open(path, newline="") as fh:
            self.rows = list(csv.DictReader(fh))
        self.columns = list(self.rows[0]) if self.rows else []

    def __getitem__(self, name: str) -> torch.Tensor:
        return torch.tensor([float(r[name]) for r in self.rows], dtype=torch.float64)


def _log(run: Path) -> _Log:
    return _Log(run / "log.csv")


def _encoded(state: dict, images: torch.Tensor, cfg) -> torch.Tensor:
    """Train-mode (batch statistics) encoder outputs of a checkpoint on fixed images: (B, all)."""
    from tempsmirk.smirk.checkpoint import load_smirk_state

    enc, gen = SmirkEncoder(n_exp=cfg.model.n_exp, n_shape=cfg.model.n_shape), SmirkGenerator()
    load_smirk_state(enc, gen, state["model"])  # strict: the generator's keys must fit too
    with torch.no_grad():
        p = enc.train()(images)
    return torch.cat([v.flatten(1) for v in p.as_dict().values()], 1)


def test_global_batchnorm_is_batchnorm_of_the_concatenated_batch():
    """One process: GlobalBatchNorm is BatchNorm (a conversion keeps keys, values, timm's act)."""
    torch.manual_seed(0)
    enc = SmirkEncoder()
    conv = GlobalBatchNorm.convert(SmirkEncoder())
    conv.load_state_dict(enc.state_dict())
    assert conv.state_dict().keys() == enc.state_dict().keys()
    assert sum(isinstance(m, GlobalBatchNorm) for m in conv.modules()) == sum(
        isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())
    x = torch.rand(3, 3, 32, 32)
    a, b = enc.train()(x), conv.train()(x)
    for k, v in a.as_dict().items():
        torch.testing.assert_close(b.as_dict()[k], v)


def test_two_processes_equal_one_and_resume_across_world_sizes(tmp_path):
    """2 processes = 1 process after 2 steps (global losses per step, outputs of the trained
    networks); the 2-process checkpoint resumed by 1 process to step 3 ends as the 1-process run;
    only rank 0 writes (the worker makes writes on rank 1 fail); the checkpoint holds unwrapped
    module state."""
    one = load_config(CONFIG, EXACT + [f"run.dir={tmp_path / 'one'}"])
    trainer = Trainer(one, progress=False)
    trainer.train(until=2)
    one_at_2 = trainer.state()
    trainer.train()
    one_at_3 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)

    two = tmp_path / "two"
    ranks = _worker(tmp_path / "w", 2, EXACT + [f"run.dir={two}"])
    for net in ("encoder", "generator"):  # the ranks hold the same networks
        for k, v in ranks[0][net].items():
            assert torch.equal(v, ranks[1][net][k]), k
    assert sorted(p.name for p in (two / "images").iterdir()) == ["step_0000002.png"]
    at_2 = torch.load(two / "checkpoints" / "last.pt", weights_only=True)
    assert at_2["step"] == 2 and not any("module." in k for k in at_2["model"])
    ref, log = _log(tmp_path / "one"), _log(two)
    assert log["step"].tolist() == [1, 2]  # one row per step: only rank 0 wrote
    Trainer(load_config(CONFIG, EXACT + [f"run.dir={two}"]), resume=True, progress=False).train()
    log3 = _log(two)
    assert log3["step"].tolist() == [1, 2, 3]

    images = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for name in LOSSES:
        torch.testing.assert_close(log3[name], ref[name], rtol=2e-3, atol=1e-6,
                                   msg=lambda m: f"{name}: {m}")
    for state, expected in ((at_2, one_at_2), (torch.load(two / "checkpoints" / "last.pt", weights_only=True),
                                                one_at_3)):
        torch.testing.assert_close(_encoded(state, images, one), _encoded(expected, images, one), rtol=2e-3,
                                   atol=1e-2)


def test_full_iteration_on_clips_stays_in_sync_and_a_nan_on_one_rank_stops_both(tmp_path):
    """SMIRK's iteration with the cycle and the temporal terms on clips split over 2 processes:
    after two steps both ranks hold the same weights and Adam has stepped each branch as in one
    process (the cycle's encoder update skips the pose and shape branches); a NaN on rank 1 at
    step 2 stops both ranks with the message, and the checkpoint keeps step 2."""
    run = tmp_path / "run"
    ranks = _worker(tmp_path / "w", -1, CLIPS + [f"run.dir={run}"], nan_rank=1, nan_step=2)
    for r in ranks:
        assert r["step"] == 2
        assert "step 2: non-finite loss in the reconstruction path (rank 1: reconstruction=nan" in r["error"]
        assert "is intact" in r["error"]
    for k, v in ranks[0]["encoder"].items():
        assert torch.equal(v, ranks[1]["encoder"][k]), k
    for k, v in ranks[0]["generator"].items():
        assert torch.equal(v, ranks[1]["generator"][k]), k
    adam = ranks[0]["adam_steps"]
    assert ranks[1]["adam_steps"] == adam
    # Iteration 0: path 1 (every branch), cycle trains the generator; iteration 1: path 1, cycle
    # trains the encoder's expression branch only.
    assert {adam[k] for k in adam if k.startswith("expression_encoder.")} == {3}
    assert {adam[k] for k in adam if not k.startswith("expression_encoder.")} == {2}
    log = _log(run)
    assert log["step"].tolist() == [1, 2] and all(torch.isfinite(log[c]).all()
                                                for c in log.columns if c.startswith("temporal_"))
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2
    for k, v in state["model"].items():  # the weights (BatchNorm's running statistics moved in the NaN forward)
        if k.startswith("smirk_encoder.") and "running_" not in k and "num_batches" not in k:
            assert torch.equal(v, ranks[0]["encoder"][k[len("smirk_encoder."):]]), k


def test_global_batch_must_split_evenly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "tempsmirk", "train", "--config", str(CONFIG), *FULL, "train.batch_size=3",
                          f"run.dir={tmp_path}"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "train.batch_size=3 is the global batch" in out.stderr and "does not divide by 2" in out.stderr


def _wait_for_rows(log: Path, rows: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if log.is_file() and len(log.read_text().splitlines()) > rows:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError("training did not log in time")


def _interrupt_step(text: str) -> int:
    import re

    m = re.search(r"Interrupted after step (\d+) of 40; (\S+) holds step (\d+)\.", text)
    assert m, text
    assert m.group(1) == m.group(3)
    return int(m.group(1))


TINY = ["train.steps=40", "train.batch_size=2", "data.synthetic.image_size=32", "data.synthetic.n_items=8",
        "loss.weights.perceptual=0", "train.log_every=1", "train.image_every=0", "train.checkpoint_every=100",
        "train.device=cpu"]


def test_ctrl_c_stops_after_the_step_writes_the_checkpoint_and_prints_the_resume_command(tmp_path):
    run = tmp_path / "run"
    args = ["-m", "tempsmirk", "train", "--config", str(CONFIG), *TINY, f"run.dir={run}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_rows(run / "log.csv", 2, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    step = _interrupt_step(err)
    assert 2 <= step < 40
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == step
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith(sys.executable) and " --resume " in command and f"run.dir={run}" in command
    assert Trainer(load_config(CONFIG, TINY + [f"run.dir={run}"]), resume=True, progress=False).step == step


def test_ctrl_c_under_torchrun_stops_every_rank_at_the_same_step(tmp_path):
    """The terminal's Ctrl-C reaches torchrun and both workers (one process group); torchrun
    passes it on again. Both ranks stop after the same step, rank 0 writes the checkpoint and
    prints the torchrun command once, nobody hangs."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tempsmirk",
           "train", "--config", str(CONFIG), *TINY, "train.batch_size=4", f"run.dir={run}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_rows(run / "log.csv", 2, proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    step = _interrupt_step(err)
    assert err.count("Interrupted after step") == 1
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == step
    assert "torchrun --nproc_per_node=2 -m tempsmirk train --config" in err and "--resume" in err
    assert "[rank" not in err  # no worker traceback
