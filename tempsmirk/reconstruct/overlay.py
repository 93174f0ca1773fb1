"""Drawing a reconstruction back onto its video: the crop's camera in frame pixels, and the panels.

Explained in chapter 7. Shapes: B frames, H W frame size, N crop side, S render-window side, V
vertices, F faces. Pixel conventions: :mod:`tempsmirk.render.camera` (renderer: pixel centres at
``j + 0.5``) and :mod:`tempsmirk.video.crops` (crop affines: pixel centres at integers).

**The crop camera in the frame.** The encoder predicts ``cam = (s, tx, ty)`` for the N × N crop. A
crop box is an axis-aligned similarity (scale ``k = N / box side``, shift ``d``) from frame to crop
pixels, and the SMIRK camera is a scale and shift too, so their composition is again a SMIRK camera
— for any square image placed in the frame. :func:`window_camera` returns it for an S × S *window*
whose top-left corner sits at integer frame pixel ``origin``: rendering the mesh there with the
ordinary renderer gives exactly the crop's rendering, resampled at the frame's resolution (no
image warping, no blur). With ``window x = X``, the crop's centre lands at window pixel
``c = (N/2 - 1/2 - d) / k + 1/2 - origin``, and::

    s' = s N / (k S),    tx' = tx + 2 (c_x - S/2) / (s' S),    ty' = ty - 2 (c_y - S/2) / (s' S)

(y flips sign because the camera's y points up and pixels' y down). Windows are squares around
the crop boxes (:func:`render_windows`) rather than the whole frame, because rasterising costs grow
with the image area: each window is the mesh's own bounding square (:func:`render_windows`), and
windows are blended into the frames with :func:`blend_windows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from tempsmirk.flame.params import FlameParams
from tempsmirk.render import Rendering, project_points, render_mesh
from tempsmirk.smirk.masking import MaskingConfig, mask_face

__all__ = [
    "MESH_ALPHA",
    "Windows",
    "crop_geometry",
    "window_camera",
    "frame_camera",
    "render_windows",
    "paste_windows",
    "blend_windows",
    "compose_panels",
    "generator_panel",
]

MESH_ALPHA = 0.65  # opacity of the grey mesh over the input frame
NOT_FOUND_RGB = (220, 40, 40)  # border of frames whose parameters were interpolated


def crop_geometry(affine: Tensor) -> tuple[Tensor, Tensor]:
    """Scale and shift of crop affines: affine (B, 2, 3) frame -> crop pixels -> (k (B,), d (B, 2)).

    Raises ValueError for an affine that is not an axis-aligned similarity (what
    :func:`tempsmirk.video.crops.crop_affine` makes).
    """
    k = affine[:, 0, 0]
    if not (torch.allclose(affine[:, 1, 1], k) and affine[:, 0, 1].abs().max() == 0
            and affine[:, 1, 0].abs().max() == 0 and bool((k > 0).all())):
        raise ValueError("crop affines must be axis-aligned similarities u = k x + d with k > 0 "
                         "(as tempsmirk.video.crops.crop_affine makes them)")
    return k, affine[:, :, 2]


def window_camera(cam: Tensor, affine: Tensor, crop_size: int, origin: Tensor, window_size: int) -> Tensor:
    """The crop's SMIRK camera re-expressed for a square window of the frame (module docstring).

    Args:
        cam: (B, 3) ``(s, tx, ty)`` predicted for the N × N crop.
        affine: (B, 2, 3) frame -> crop pixels (pixel centres at integers), see :mod:`tempsmirk.video.crops`.
        crop_size: N.
        origin: (B, 2) frame pixel (x, y) of the window's top-left corner (renderer convention,
            pixel edges at integers); (0, 0) with ``window_size = max(H, W)`` is the whole frame.
        window_size: S.
    Returns:
        (B, 3) camera: :func:`tempsmirk.render.project_points` (or :func:`render_mesh`) with it at
        size S gives window pixels = frame pixels - origin.
    """
    dtype = cam.dtype
    k, d = crop_geometry(affine.to(dtype))
    n, size = float(crop_size), float(window_size)
    centre = (n / 2 - 0.5 - d) / k[:, None] + 0.5 - origin.to(dtype)  # (B, 2) window pixels
    s = cam[:, 0] * n / (k * size)
    tx = cam[:, 1] + 2 * (centre[:, 0] - size / 2) / (s * size)
    ty = cam[:, 2] - 2 * (centre[:, 1] - size / 2) / (s * size)
    return torch.stack([s, tx, ty], dim=1)


def frame_camera(cam: Tensor, affine: Tensor, crop_size: int, frame_size: tuple[int, int]) -> Tensor:
    """The crop camera for the whole frame: (B, 3) -> (B, 3), to be used at image size max(W, H)
    (a square whose top-left corner is the frame's; the frame is its top-left W × H part).
    For a square frame this is directly comparable with a camera fitted to the frame."""
    side = max(frame_size)
    origin = torch.zeros(cam.shape[0], 2, dtype=torch.int64, device=cam.device)
    return window_camera(cam, affine, crop_size, origin, side)


@dataclass(frozen=True)
class Windows:
    """Where a batch of meshes was rendered in its frames.

    origin: (B, 2) int64 frame pixel (x, y) of each window's top-left corner.
    size: S, the common window side (one size per batch, so the batch renders in one call).
    cam: (B, 3) window cameras (:func:`window_camera`).
    rendering: the :class:`~tempsmirk.render.Rendering` at S × S.
    """

    origin: Tensor
    size: int
    cam: Tensor
    rendering: Rendering


def render_windows(vertices: Tensor, faces: Tensor, cam: Tensor, affine: Tensor, crop_size: int,
                   frame_hw: tuple[int, int], face_mask: Optional[Tensor] = None) -> Windows:
    """Render meshes predicted on crops at frame resolution, each in a window just around it.

    Each window is the bounding square of the drawn part of the mesh in frame pixels, clipped to
    the frame; the batch shares the largest side S. Nothing outside a window can be covered, so
    pasting the windows into the frames gives exactly the full-frame rendering, at the cost of
    the face's area rather than the frame's.

    Args:
        vertices: (B, V, 3) FLAME units; faces: (F, 3); cam: (B, 3) crop cameras.
        affine: (B, 2, 3) frame -> crop pixels; crop_size: N; frame_hw: (H, W).
        face_mask: (F,) bool faces to draw (all when None).
    """
    h, w = frame_hw
    drawn = faces if face_mask is None else faces[face_mask.to(faces.device)]
    ids = torch.unique(drawn)
    zero = torch.zeros(cam.shape[0], 2, dtype=torch.int64, device=cam.device)
    # With origin 0 a window's pixels are frame pixels, whatever its size.
    px = project_points(vertices[:, ids], window_camera(cam, affine, crop_size, zero, 1), 1).pixels
    limit = px.new_tensor([w, h])
    lo = torch.minimum(torch.maximum(px.amin(1).floor(), px.new_zeros(2)), limit)
    hi = torch.minimum(torch.maximum(px.amax(1).ceil(), px.new_zeros(2)), limit)
    size = max(1, int((hi - lo).max()))
    origin = lo.to(torch.int64)
    wcam = window_camera(cam, affine, crop_size, origin, size)
    return Windows(origin, size, wcam, render_mesh(vertices, faces, wcam, size, face_mask=face_mask))


def _window_grid(origin: Tensor, size: int, frame_hw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Frame rows (B, S) and columns (B, S) of each window's pixels, clamped into the frame, and
    (B, S, S) bool: the pixel lies inside the frame."""
    h, w = frame_hw
    steps = torch.arange(size, device=origin.device)
    ys, xs = origin[:, 1:2] + steps, origin[:, 0:1] + steps
    inside = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
    return ys.clamp(0, h - 1), xs.clamp(0, w - 1), inside


def paste_windows(images: Tensor, origin: Tensor, frame_hw: tuple[int, int]) -> Tensor:
    """Place S × S window images into H × W frames (zero outside the windows, windows clipped).

    images: (B, C, S, S); origin: (B, 2) int64 (x, y) -> (B, C, H, W). One scatter, no loop.
    """
    b, c, s, _ = images.shape
    ys, xs, inside = _window_grid(origin.to(images.device), s, frame_hw)
    out = images.new_zeros(b, frame_hw[0], frame_hw[1], c)
    bi = torch.arange(b, device=images.device)[:, None, None].expand(b, s, s)
    yy, xx = ys[:, :, None].expand(b, s, s), xs[:, None, :].expand(b, s, s)
    out[bi[inside], yy[inside], xx[inside]] = images.permute(0, 2, 3, 1)[inside]
    return out.permute(0, 3, 1, 2)


def blend_windows(frames: Tensor, image: Tensor, mask: Tensor, origin: Tensor,
                  alpha: float = MESH_ALPHA) -> Tensor:
    """Frames with window renderings blended in: ``(1 - alpha·mask)·frame + alpha·mask·image``.

    Args:
        frames: (B, H, W, 3) uint8. image: (B, 3, S, S) in [0, 1]; mask: (B, 1, S, S).
        origin: (B, 2) int64 window corners (x, y) in the frame.
    Returns:
        (B, H, W, 3) uint8, a new tensor. Only covered pixels inside the frame are touched (one
        gather and one scatter), so the cost follows the face's size, not the frame's.
    """
    b, h, w, _ = frames.shape
    s = image.shape[-1]
    ys, xs, inside = _window_grid(origin.to(frames.device), s, (h, w))
    sel = inside & (mask[:, 0] > 0)  # (B, S, S)
    bi = torch.arange(b, device=frames.device)[:, None, None].expand(b, s, s)[sel]
    yy, xx = ys[:, :, None].expand(b, s, s)[sel], xs[:, None, :].expand(b, s, s)[sel]
    a = alpha * mask[:, 0][sel][:, None]  # (K, 1)
    under = frames[bi, yy, xx].to(image.dtype)
    over = image.permute(0, 2, 3, 1)[sel] * 255.0
    out = frames.clone()
    out[bi, yy, xx] = (under * (1 - a) + over * a).round().clamp(0, 255).to(torch.uint8)
    return out


def compose_panels(frames: Tensor, overlaid: Tensor, found: Tensor, generated: Optional[Tensor] = None) -> Tensor:
    """The overlay video's frames: input | mesh over input | generator output (when given).

    Args:
        frames: (B, H, W, 3) uint8 input frames; overlaid: the same with the mesh blended in
            (:func:`blend_windows`).
        found: (B,) bool; frames without a detected face get a red border on the middle panel.
        generated: (B, 3, N, N) generator output for the crop, shown resized to H × H, or None.
    Returns:
        (B, H', W', 3) uint8 with H' = H and W' = 2 W (+ H), both padded to even sizes (H.264).
    """
    b, h, w, _ = frames.shape
    width = 2 * w + (h if generated is not None else 0)
    out = frames.new_zeros(b, h + h % 2, width + width % 2, 3)
    out[:, :h, :w] = frames
    out[:, :h, w:2 * w] = overlaid
    lost = ~found.to(device=frames.device, dtype=torch.bool)
    if bool(lost.any()):
        edge = max(2, h // 60)
        red = frames.new_tensor(NOT_FOUND_RGB)
        middle = out[lost, :h, w:2 * w]  # a copy (boolean index): paint, then put back
        middle[:, :edge] = red
        middle[:, h - edge:] = red
        middle[:, :, :edge] = red
        middle[:, :, w - edge:] = red
        out[lost, :h, w:2 * w] = middle
    if generated is not None:
        g = F.interpolate(generated.float(), size=(h, h), mode="bilinear", align_corners=False, antialias=True)
        out[:, :h, 2 * w:2 * w + h] = (g.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
    return out


@torch.no_grad()
def generator_panel(generator, flame, vertices: Tensor, params: FlameParams, crops: Tensor,
                    hull_points: Tensor, face_mask: Optional[Tensor], face_weights: Tensor,
                    seed: int = 0) -> Tensor:
    """The generator's redrawing of each crop from the mesh and a masked copy of the crop.

    The input an official generator was trained on (:func:`~tempsmirk.smirk.masking.mask_face`,
    chapter 3): the face hidden (the dilated hull of the landmarks, and the rendering), background
    visible, ~1 % sampled face points with their colour noise and dropout — SMIRK's demo masks
    with the same noise and dropout — drawn with a fixed seed, so a video is drawn the same way
    every run.

    Args:
        vertices: (B, V, 3) meshes; params: their (B, ...) parameters (``cam`` for the crop).
        crops: (B, 3, N, N) in [0, 1].
        hull_points: (B, L, 2) normalised crop coordinates of points whose hull is the face
            (MediaPipe's 478 detected points, or projected ones where none were detected).
        face_mask: (F,) bool face region; face_weights: (F,) pixel-sampling weights.
    Returns:
        (B, 3, N, N) in [0, 1].
    """
    n = crops.shape[-1]
    rendering = render_mesh(vertices, flame.faces, params.cam, n, face_mask=face_mask)
    rng = torch.Generator().manual_seed(seed)
    masked = mask_face(crops, hull_points, rendering, flame.faces, face_weights, MaskingConfig(), rng)
    return generator(torch.cat([rendering.image, masked.image], dim=1))


def projected_landmarks(landmarks_mp: Tensor, cam: Tensor, crop_size: int) -> Tensor:
    """FLAME's MediaPipe points in normalised crop coordinates: (B, L, 3) -> (B, L, 2)."""
    return project_points(landmarks_mp, cam, crop_size).normalised
