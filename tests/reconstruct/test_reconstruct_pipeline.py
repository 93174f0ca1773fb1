"""The reconstruction pipeline: filling frames without a face, the crop camera in frame pixels,
windows and panels, params.npz, and whole runs of the command on a tiny generated video."""

from __future__ import annotations

import argparse
import pickle
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from tempsmirk.flame.params import FlameParams
from tempsmirk.meshio import read_ply
from tempsmirk.paths import shared_data
from tempsmirk.reconstruct import pipeline
from tempsmirk.reconstruct.cli import register
from tempsmirk.reconstruct.export import VideoParams, load_params, save_params
from tempsmirk.reconstruct.overlay import blend_windows, compose_panels, paste_windows, render_windows, window_camera
from tempsmirk.reconstruct.pipeline import prepare_encoder, reconstruct_video
from tempsmirk.reconstruct.smoothing import SavitzkyGolay, smooth_params
from tempsmirk.render import project_points, render_mesh
from tempsmirk.video.crops import crop_affine, invert_affine, transform_points
from tempsmirk.video.io import iter_frames, probe_video, read_frames, write_video


def params_from(column: torch.Tensor) -> FlameParams:
    """Every field a multiple of one (T,) column, so each can be checked against it."""
    c = column[:, None].float()
    return FlameParams(global_pose=c.expand(-1, 3), cam=2 * c.expand(-1, 3), shape=3 * c.expand(-1, 4),
                       expression=-c.expand(-1, 5), eyelids=c.expand(-1, 2), jaw_pose=c.expand(-1, 3))


# ----------------------------------------------------------------------------- camera and windows
def test_window_camera_matches_projecting_through_the_crop():
    g = torch.Generator().manual_seed(0)
    b, n = 4, 64
    points = (torch.rand(b, 30, 3, generator=g) - 0.5) * 0.2
    cam = torch.stack([6 + 2 * torch.rand(b, generator=g), (torch.rand(b, generator=g) - 0.5) * 0.02,
                       (torch.rand(b, generator=g) - 0.5) * 0.02], dim=1).double()
    centre = np.random.default_rng(0).uniform(50, 300, (b, 2))
    side = np.random.default_rng(1).uniform(40, 250, b)
    affine = crop_affine(centre, side, n)
    origin = torch.tensor([[0, 0], [13, -7], [200, 40], [-30, 120]])
    size = 157
    # Reference: crop pixels (renderer convention) -> data_prep's pixel centres -> inverse affine ->
    # frame pixels (renderer convention) -> window.
    crop_px = project_points(points.double(), cam, n).pixels.numpy() - 0.5
    frame_px = transform_points(crop_px, invert_affine(affine)) + 0.5
    want = frame_px - origin.numpy()[:, None, :]
    wcam = window_camera(cam, torch.from_numpy(affine), n, origin, size)
    got = project_points(points.double(), wcam, size).pixels.numpy()
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_windows_give_the_crop_rendering_in_the_frame(flame):
    """A box of N frame pixels at an integer offset maps crop pixels 1:1 onto frame pixels: the
    window camera for the box is the crop camera, and the rendering pasted from a tight window
    equals the crop's rendering placed at the box."""
    n = 48
    centre = np.array([[40.5, 30.5]])  # box corner at pixel edge (17, 7)
    affine = torch.from_numpy(crop_affine(centre, np.array([float(n)]), n))
    cam = torch.tensor([[7.0, 0.003, -0.01]], dtype=torch.float64)
    np.testing.assert_allclose(window_camera(cam, affine, n, torch.tensor([[17, 7]]), n).numpy(), cam.numpy(),
                               atol=1e-12)
    face_mask = flame.region_faces("face")
    with torch.no_grad():
        v = flame(expression=torch.zeros(1, 50), global_pose=torch.tensor([[0.1, 0.3, 0.0]])).vertices
        win = render_windows(v, flame.faces, cam.float(), affine, n, (70, 90), face_mask)
        crop = render_mesh(v, flame.faces, cam.float(), n, face_mask=face_mask)
    assert win.size < n  # tight around the face region
    placed = torch.zeros(1, 4, 70, 90)
    placed[..., 7:7 + n, 17:17 + n] = torch.cat([crop.image, crop.mask], dim=1)
    pasted = paste_windows(torch.cat([win.rendering.image, win.rendering.mask], dim=1), win.origin, (70, 90))
    assert crop.mask.sum() > 100 and torch.equal(pasted[:, 3] > 0, placed[:, 3] > 0)
    torch.testing.assert_close(pasted, placed, atol=1e-5, rtol=0)


def test_paste_windows_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, 2, 5, 5, generator=g)
    origin = torch.tensor([[-2, 1], [4, -3], [6, 5]])
    h, w = 7, 9
    want = torch.zeros(3, 2, h, w)
    for b in range(3):
        for y in range(h):
            for x in range(w):
                wy, wx = y - int(origin[b, 1]), x - int(origin[b, 0])
                if 0 <= wy < 5 and 0 <= wx < 5:
                    want[b, :, y, x] = images[b, :, wy, wx]
    torch.testing.assert_close(paste_windows(images, origin, (h, w)), want)


def test_blend_windows_matches_a_loop():
    g = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (2, 6, 8, 3), generator=g, dtype=torch.uint8)
    image = torch.rand(2, 3, 4, 4, generator=g)
    mask = (torch.rand(2, 1, 4, 4, generator=g) > 0.4).float()
    origin = torch.tensor([[5, -1], [0, 3]])
    want = frames.clone()
    for b in range(2):
        for i in range(4):
            for j in range(4):
                y, x = i + int(origin[b, 1]), j + int(origin[b, 0])
                if 0 <= y < 6 and 0 <= x < 8 and mask[b, 0, i, j] > 0:
                    mixed = frames[b, y, x].float() * 0.35 + image[b, :, i, j] * 255 * 0.65
                    want[b, y, x] = mixed.round().to(torch.uint8)
    got = blend_windows(frames, image, mask, origin, alpha=0.65)
    assert torch.equal(got, want) and not torch.equal(got, frames)


def test_compose_panels_layout_and_lost_frames():
    frames = torch.full((2, 9, 11, 3), 100, dtype=torch.uint8)
    overlaid = frames.clone()
    overlaid[:, 4, 5] = 7
    out = compose_panels(frames, overlaid, torch.tensor([True, False]))
    assert out.shape == (2, 10, 22, 3) and out.dtype == torch.uint8  # padded to even sizes
    assert torch.equal(out[:, :9, :11], frames) and int(out[0, 4, 11 + 5, 0]) == 7
    assert int(out[0, 0, 11 + 5, 0]) == 100  # no border on a found frame
    assert tuple(out[1, 0, 11 + 5].tolist()) == (220, 40, 40)  # red border on an interpolated one
    assert tuple(out[1, 4, 11 + 5].tolist()) == (7, 7, 7) and int(out[1, 4, 0, 0]) == 100
    gen = compose_panels(frames, overlaid, torch.tensor([True, True]), generated=torch.zeros(2, 3, 16, 16))
    assert gen.shape == (2, 10, 11 + 11 + 9 + 1, 3) and int(gen[0, :9, 22:31].max()) == 0


# ----------------------------------------------------------------------------- params.npz
def test_params_roundtrip(tmp_path):
    t = 6
    p = params_from(torch.arange(t, dtype=torch.float32))
    video = VideoParams(p, np.array([1, 0, 1, 1, 1, 1], bool), 23.976, np.zeros((t, 2, 3)), 224, (640, 360),
                        "savgol(window=9, order=2)")
    save_params(tmp_path / "params.npz", video)
    with np.load(tmp_path / "params.npz") as z:
        for name in ("expression", "jaw_pose", "global_pose", "shape", "cam", "eyelids"):
            assert z[name].dtype == np.float32 and z[name].shape[0] == t
        assert z["found"].dtype == bool and z["found"].shape == (t,) and float(z["fps"]) == 23.976
    back = load_params(tmp_path)
    torch.testing.assert_close(back.params.shape, p.shape)
    assert back.frame_size == (640, 360) and back.smoothing == video.smoothing and back.crop_size == 224
    with pytest.raises(ValueError, match="rows"):
        VideoParams(p, np.ones(t + 1, bool), 25.0, np.zeros((t + 1, 2, 3)), 224, (1, 1))
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable params file"):
        load_params(tmp_path / "bad.npz")


# ----------------------------------------------------------------------------- whole runs
def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["reconstruct", *argv])
    return args.func(args)


def test_command_end_to_end(clip_video, encoder_checkpoint, flame, spec, tmp_path, capsys):
    n, blank = spec.frames, spec.blank
    rc = run_cli([str(clip_video), "--checkpoint", str(encoder_checkpoint), "--out", str(tmp_path),
                  "--size", str(spec.crop), "--meshes", "ply", "--batch-size", "4", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    folder = tmp_path / clip_video.stem
    video = load_params(folder)
    assert video.num_frames == n and video.params.expression.shape == (n, 50)
    assert not video.found[blank] and video.found.sum() == n - 1
    p = video.params
    torch.testing.assert_close(p.expression[blank], (p.expression[blank - 1] + p.expression[blank + 1]) / 2)
    assert video.crop_size == spec.crop and video.frame_size == (spec.size, spec.size)
    frames = read_frames(folder / "overlay.mp4")
    assert frames.shape == (n, spec.size, 2 * spec.size, 3)  # no generator: two panels
    meshes = sorted((folder / "meshes").iterdir())
    assert [m.name for m in meshes] == [f"{i:06d}.ply" for i in range(n)]
    v, f = read_ply(meshes[3])
    assert v.shape == (flame.n_vertices, 3) and f.shape == tuple(flame.faces.shape)
    assert not [q for q in folder.iterdir() if q.name.startswith(".")]  # no temporary leftovers


def test_generator_panel_and_smoothing(clip_video, full_checkpoint, spec, tmp_path):
    encoder, generator, flame = pipeline.load_models(full_checkpoint)
    assert generator is not None
    rec = reconstruct_video(clip_video, encoder, flame, tmp_path, generator=generator, crop_size=spec.crop,
                            batch_size=8, smoothing=SavitzkyGolay(window=5, order=2), progress=False)
    frames = read_frames(rec.overlay)
    assert frames.shape == (spec.frames, spec.size, 3 * spec.size, 3)
    want = smooth_params(rec.raw, SavitzkyGolay(window=5, order=2), 24.0)
    assert load_params(rec.folder).smoothing == "savgol(window=5, order=2)"
    torch.testing.assert_close(load_params(rec.folder).params.jaw_pose, want.jaw_pose)
    assert rec.times.frames == spec.frames and rec.times.generator > 0 and rec.times.encode > 0
    assert "end to end" in str(rec.times.table())


def test_a_crash_leaves_no_complete_looking_outputs(clip_video, encoder_checkpoint, spec, tmp_path, monkeypatch):
    encoder, _, flame = pipeline.load_models(encoder_checkpoint, with_generator=False)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return compose_panels(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compose_panels", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        reconstruct_video(clip_video, encoder, flame, tmp_path, crop_size=spec.crop, batch_size=4,
                          meshes="obj", progress=False)
    folder = tmp_path / clip_video.stem
    assert sorted(p.name for p in folder.iterdir()) == ["params.npz"]  # complete, written before the overlay
    assert load_params(folder).num_frames == spec.frames


def test_cli_errors_are_messages_with_exit_codes(clip_video, encoder_checkpoint, spec, tmp_path, capsys):
    ok = ["--checkpoint", str(encoder_checkpoint), "--out", str(tmp_path), "--size", str(spec.crop), "--quiet"]

    def fails(argv, code, text):
        assert run_cli(argv) == code
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err, err

    fails([str(tmp_path / "missing.mp4"), *ok], 2, "does not exist")
    (tmp_path / "junk.mp4").write_bytes(b"\x00not a video" * 50)
    fails([str(tmp_path / "junk.mp4"), *ok], 2, "could not open video")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    fails([str(clip_video), "--checkpoint", str(tmp_path / "other.pt"), "--out", str(tmp_path)], 2,
          "not a SMIRK checkpoint")
    flame_dir = tmp_path / "flame"
    flame_dir.mkdir()
    for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy", "mediapipe_landmark_embedding.npz"):
        (flame_dir / name).write_bytes(b"present, so the model file itself is what fails")
    (flame_dir / "generic_model.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((5, 3))}))
    fails([str(clip_video), *ok, "--flame", str(flame_dir / "generic_model.pkl")], 2, "missing key(s)")
    (flame_dir / "generic_model.pkl").write_bytes(b"certainly not a pickle")
    fails([str(clip_video), *ok, "--flame", str(flame_dir / "generic_model.pkl")], 2,
          "could not load the FLAME model")
    fails([str(clip_video), *ok, "--smooth", "savgol", "--window", "4"], 2, "odd window")
    if not torch.cuda.is_available():
        fails([str(clip_video), *ok, "--device", "cuda"], 2, "no CUDA device")
    write_video(tmp_path / "empty.mp4", np.zeros((4, 64, 64, 3), np.uint8), 24.0)
    fails([str(tmp_path / "empty.mp4"), *ok], 1, "no face was found")
    assert not (tmp_path / "empty" / "params.npz").exists()


@pytest.mark.needs_shared_data
def test_real_video_prefix(shared_dir, encoder_checkpoint, spec, tmp_path):
    """The first 12 frames of the shared talking-head video, end to end at the demo crop size."""
    real = shared_data("video", "pexels_woman_emotions.mp4")
    clip = tmp_path / "real.mp4"
    write_video(clip, islice(iter_frames(real), 12), probe_video(real).fps)
    encoder, _, flame = pipeline.load_models(encoder_checkpoint, with_generator=False)
    rec = reconstruct_video(clip, prepare_encoder(encoder), flame, tmp_path / "out", crop_size=spec.crop,
                            batch_size=12, progress=False)
    assert rec.video.found.all() and rec.video.num_frames == 12
    box = spec.crop / rec.video.crop_affine[:, 0, 0]
    assert ((box > 60) & (box < 360)).all()  # a face-sized box in a 640 x 360 frame
    assert read_frames(rec.overlay).shape == (12, 360, 1280, 3)
    assert isinstance(rec.folder, Path) and rec.params_path.is_file()


def test_decoding_again_matches_keeping_frames(clip_video, encoder_checkpoint, spec, tmp_path):
    """Frames kept in memory (short videos) and frames decoded again per pass (long ones) give the
    same parameters and the same overlay."""
    encoder, _, flame = pipeline.load_models(encoder_checkpoint, with_generator=False)
    runs = [reconstruct_video(clip_video, encoder, flame, tmp_path / name, crop_size=spec.crop, batch_size=4,
                              progress=False, max_cache_bytes=budget)
            for name, budget in (("kept", 1 << 30), ("again", 0))]
    torch.testing.assert_close(runs[0].video.params.expression, runs[1].video.params.expression)
    assert np.array_equal(read_frames(runs[0].overlay), read_frames(runs[1].overlay))
    assert runs[1].times.decode > 0


# ----------------------------------------------------------------------------- fitting
def test_command_fit_alone(clip_video, flame, spec, tmp_path, capsys):
    """``--fit`` without a checkpoint: FLAME fitted to the detected landmarks (no network), the same
    params.npz and overlay; the frame without a face keeps its index and is interpolated."""
    n, blank = spec.frames, spec.blank
    rc = run_cli([str(clip_video), "--fit", "--fit-iterations", "40", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "parameters from fit" in out.out and "reprojection error" in out.out
    video = load_params(tmp_path / clip_video.stem)
    assert video.source == "fit" and video.num_frames == n and video.crop_size == 224
    assert not video.found[blank] and video.found.sum() == n - 1
    p = video.params
    torch.testing.assert_close(p.jaw_pose[blank], (p.jaw_pose[blank - 1] + p.jaw_pose[blank + 1]) / 2)
    assert (p.shape == p.shape[:1]).all()  # one identity for the video
    assert read_frames(tmp_path / clip_video.stem / "overlay.mp4").shape == (n, spec.size, 2 * spec.size, 3)


def test_encoder_refined_by_fitting(clip_video, encoder_checkpoint, spec, tmp_path):
    """With an encoder the fit starts from its prediction and ends far closer to the landmarks
    (the encoder here is untrained: 22 px before, 3.1 px after); the stage times include the fit;
    params say encoder+fit."""
    from tempsmirk.fitting import FitConfig, LandmarkFlame, reprojection_error

    encoder, _, flame = pipeline.load_models(encoder_checkpoint, with_generator=False)
    rec = reconstruct_video(clip_video, encoder, flame, tmp_path, crop_size=spec.crop, batch_size=5,
                            fit=FitConfig(iterations=40, identity_iterations=40), overlay=False, progress=False)
    assert load_params(rec.folder).source == "encoder+fit"
    assert rec.encoded is not None and rec.fit is not None and rec.times.fit > 0 and rec.times.encode > 0
    targets = pipeline.fit_targets(rec.landmarks, rec.video.found, rec.video.crop_affine, spec.crop, flame)
    model = LandmarkFlame(flame)
    before = float(reprojection_error(model, rec.encoded, targets).nanmean())
    after = float(reprojection_error(model, rec.raw, targets).nanmean())
    # About 3 px remain: where MediaPipe puts its points on the built-in head's renders is not
    # exactly where the head's MediaPipe embedding puts them (300 steps leave 2.9 px).
    assert after < 4.0 and after < before / 5, (before, after)
    torch.testing.assert_close(rec.fit.error_px, reprojection_error(model, rec.raw, targets), equal_nan=True)


def test_fit_needs_an_embedding_and_an_input(clip_video, flame, tmp_path, capsys):
    from tempsmirk.fitting import FitConfig

    assert run_cli([str(clip_video), "--out", str(tmp_path)]) == 2
    assert "--checkpoint CKPT" in capsys.readouterr().err
    assert run_cli([str(clip_video), "--fit", "--fit-window", "8", "--fit-overlap", "8", "--out", str(tmp_path)]) == 2
    assert "overlap < window" in capsys.readouterr().err
    bare = pipeline.load_models(None)[2]
    bare.has_mediapipe = False
    with pytest.raises(pipeline.FlameModelError, match="MediaPipe landmark embedding"):
        reconstruct_video(clip_video, None, bare, tmp_path, fit=FitConfig(), progress=False)
    with pytest.raises(ValueError, match="neither"):
        reconstruct_video(clip_video, None, flame, tmp_path, progress=False)


@pytest.mark.needs_shared_data
def test_fit_with_a_flame_folder(clip_video, ringnet_dir, spec, tmp_path, capsys):
    """``--fit --flame FOLDER`` on FLAME's real topology (a FLAME 2020-style chumpy pickle with
    generated bases, RingNet's real embeddings, SMIRK's other assets as random stand-ins in their
    real formats): the command runs through, with the folder's 5023-vertex model."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "flame"))
    from flame_layout import dump_chumpy_wrapped, make_flame_layout, write_smirk_extras

    v, f = read_ply(ringnet_dir / "FLAME_sample.ply")
    folder = tmp_path / "FLAME2020"
    folder.mkdir()
    dump_chumpy_wrapped(make_flame_layout(v, f), folder / "generic_model.pkl")
    for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
        (folder / name).write_bytes((ringnet_dir / name).read_bytes())
    write_smirk_extras(folder, len(v), len(f))
    rc = run_cli([str(clip_video), "--fit", "--fit-iterations", "20", "--flame", str(folder),
                  "--out", str(tmp_path / "out"), "--meshes", "ply", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    video = load_params(tmp_path / "out" / clip_video.stem)
    assert video.source == "fit" and video.num_frames == spec.frames
    assert all(torch.isfinite(getattr(video.params, k)).all() for k in ("global_pose", "cam", "expression"))
    mesh, faces = read_ply(tmp_path / "out" / clip_video.stem / "meshes" / "000000.ply")
    assert mesh.shape == (5023, 3) and faces.shape == (9976, 3)
