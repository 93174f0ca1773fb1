"""The built-in head's bases: 300 identity and 100 expression components (``shapedirs``).

Bases are smooth displacement fields. Identity: 16 named global variations (head width,
nose size, ...), then random smooth fields of decaying size; the eyeballs follow the lids
around them rigidly. Expression, confined to the face: 30 named local actions
(:data:`.tables.EXPRESSION_NAMES`: smile, frown, brow raise, ...), designed to be linearly
independent, then 70 random local bumps of decaying size, each made orthogonal to all
components before it. So, as with FLAME's PCA basis, the expression coefficients are
identifiable from the geometry (the basis is well conditioned; the tests bound it). Eyeballs
never deform with expression.

The random parts draw from the ``rng`` given, in a fixed order (identity, expression, then the
pose correctives of :mod:`.rig`): that is all the seed of :func:`tempsmirk.flame.builtin.builtin_head`
decides.
"""

from __future__ import annotations

import numpy as np

from tempsmirk.flame.builtin.fields import gauss, normalise, random_smooth_field, smoothstep
from tempsmirk.flame.builtin.layout import N_EXPR, N_SHAPE, Y_EYE, Y_MOUTH, Z_AXIS
from tempsmirk.flame.builtin.regions import Regions
from tempsmirk.flame.builtin.skin import EyeballIds
from tempsmirk.flame.builtin.tables import EXPRESSION_NAMES

__all__ = ["identity_basis", "expression_basis"]


def identity_basis(rng: np.random.Generator, v: np.ndarray, eyeballs: EyeballIds,
                   eye_edges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(V, 3, 300) identity components: named global variations, then random smooth fields.

    ``v`` (V, 3) the template; each eyeball (``eyeballs``) moves rigidly, with the mean of the
    lid edge around it (``eye_edges``, :func:`.skin.lid_edges`).
    """
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    zero = np.zeros_like(x)
    front = smoothstep((z - Z_AXIS) / 0.05)
    lower_face = smoothstep((0.0 - y) / 0.05) * smoothstep((y + 0.17) / 0.07)
    nose_w = np.exp(-0.5 * ((x / 0.014) ** 2 + ((y + 0.002) / 0.016) ** 2)) * front
    brow_w = np.exp(-0.5 * ((y - 0.042) / 0.01) ** 2) * front
    cheek_w = (gauss(np.abs(x), y, 0.045, -0.02, 0.016, 0.02)) * front
    chin_w = gauss(x, y, 0.0, -0.08, 0.02, 0.015) * front
    lips_w = gauss(x, y, 0.0, Y_MOUTH, 0.02, 0.008) * front
    eye_w = gauss(np.abs(x), y, 0.031, Y_EYE, 0.018, 0.014) * front
    ear_w = np.exp(-0.5 * (((y - 0.002) / 0.025) ** 2 + ((z + 0.052) / 0.015) ** 2)) * smoothstep(np.abs(x) / 0.04)
    side = np.tanh(x / 0.01)  # a smooth sign: fields that push the two sides apart stay smooth at the midline
    back_w = smoothstep((Z_AXIS - z) / 0.08) * smoothstep((y + 0.03) / 0.04)
    neck_w = smoothstep((-0.09 - y) / 0.04)
    named = [
        (np.stack([x, zero, zero], -1), 0.005),                                  # head width
        (np.stack([zero, y - 0.0, zero], -1), 0.005),                            # head height
        (np.stack([zero, zero, z - Z_AXIS], -1), 0.005),                         # head depth
        (np.stack([x * lower_face, zero, zero], -1), 0.004),                     # jaw width
        (np.stack([zero, np.minimum(y - Y_EYE, 0) * lower_face, zero], -1), 0.004),  # face length
        (np.stack([x * nose_w, (y + 0.002) * nose_w, zero], -1), 0.003),         # nose size
        (np.stack([zero, zero, nose_w], -1), 0.003),                             # nose projection
        (np.stack([zero, zero, np.maximum(y - 0.03, 0) * front], -1), 0.004),    # forehead slope
        (np.stack([side * cheek_w, zero, 0.5 * cheek_w], -1), 0.003),      # cheek fullness
        (np.stack([zero, -0.3 * chin_w, chin_w], -1), 0.003),                    # chin projection
        (np.stack([zero, 0.3 * brow_w, brow_w], -1), 0.0025),                    # brow ridge
        (np.stack([side * eye_w, zero, zero], -1), 0.002),                 # eye spacing
        (np.stack([zero, zero, lips_w], -1), 0.002),                             # lip fullness
        (np.stack([zero, zero, -back_w], -1), 0.004),                            # back of the skull
        (np.stack([x * neck_w, zero, (z - Z_AXIS) * neck_w], -1), 0.004),        # neck thickness
        (np.stack([side * ear_w, 0.3 * ear_w, zero], -1), 0.002),          # ear size
    ]
    comps = [normalise(f, a) for f, a in named]
    for k in range(len(named), N_SHAPE):
        rank = k - len(named)
        freq = 12.0 + 50.0 * rank / N_SHAPE
        amp = 0.0035 / (1.0 + rank / 12.0) ** 0.8
        comps.append(normalise(random_smooth_field(rng, v, freq), amp))
    basis = np.stack(comps, -1)
    # eyeballs move rigidly with the lids around them
    for ball, edge in zip(eyeballs, eye_edges):
        basis[ball] = basis[edge].mean(0, keepdims=True)
    return basis


MIN_BUMP_RESIDUAL = 0.5  # a random bump keeps at least this fraction of its norm after orthogonalisation


def _named_expressions(vs: np.ndarray, reg: Regions, mouth_corner: float,
                       eye_x: float) -> list[tuple[str, np.ndarray, float]]:
    """The named expression actions: (name, (V_skin, 3) field, peak amplitude in metres).

    Each action is a smooth blob (or a pair of mirrored blobs) moving in one direction, loosely
    after a facial muscle. They are designed to be linearly independent of each other, so that
    their coefficients can be recovered from the geometry (the tests bound the conditioning):

    - no action is the negative or the sum of others: left/right pairs appear either as two
      one-sided actions (squint, widen) or as a symmetric action plus a *lopsided* one (the left
      side minus the right side), never as a symmetric action plus both sides;
    - actions that share a region move it in different directions or with a different profile
      (the frown pulls below the corners, the stretch beside them; the lip press thins the lips
      instead of moving them as the lip raisers do; the brow furrow pulls the brows together,
      the brow raises lift them).
    """
    x, y = vs[:, 0], vs[:, 1]
    one = np.ones_like(x)
    zero = np.zeros_like(x)
    # The mouth and eye slits: fields near a slit are restricted to one side of it (``up`` /
    # ``low``, ``ue_*``) so the two lips and the two lids can move apart.
    low = reg.lower_mouth
    up = 1.0 - low
    ue_l, ue_r = reg.upper_eye
    side_l, side_r = smoothstep(x / 0.01 + 0.5), smoothstep(-x / 0.01 + 0.5)
    g = gauss
    ax = np.abs(x)
    sx = np.sign(x)
    mc = mouth_corner
    dy_mouth = y - Y_MOUTH
    # mouth
    corner_l, corner_r = g(x, y, mc, Y_MOUTH, 0.010, 0.010), g(x, y, -mc, Y_MOUTH, 0.010, 0.010)
    corners = corner_l + corner_r
    below_corners = g(ax, y, mc + 0.003, Y_MOUTH - 0.009, 0.009, 0.010)   # depressor of the corner
    beside_corners = g(ax, y, mc + 0.007, Y_MOUTH, 0.009, 0.008)          # cheek just beside the corner
    lips = g(x, y, 0.0, Y_MOUTH, 0.020, 0.008)
    upper_lip = g(x, y, 0.0, Y_MOUTH + 0.006, 0.020, 0.006) * up
    lower_lip = g(x, y, 0.0, Y_MOUTH - 0.007, 0.020, 0.007) * low
    red_lips = g(x, y, 0.0, Y_MOUTH + 0.003, 0.018, 0.003) * up + g(x, y, 0.0, Y_MOUTH - 0.003, 0.018, 0.003) * low
    around_lips = g(x, y, 0.0, Y_MOUTH + 0.012, 0.018, 0.004) + g(x, y, 0.0, Y_MOUTH - 0.013, 0.018, 0.004)
    nasolabial = g(ax, y, 0.021, Y_MOUTH + 0.014, 0.006, 0.007) * up
    chin = g(x, y, 0.0, -0.075, 0.02, 0.015) * low
    masseter = g(ax, y, 0.052, -0.062, 0.010, 0.014)
    # cheeks
    cheek_l, cheek_r = g(x, y, 0.045, -0.03, 0.016, 0.016), g(x, y, -0.045, -0.03, 0.016, 0.016)
    cheeks = cheek_l + cheek_r
    cheekbones = g(ax, y, 0.037, -0.004, 0.013, 0.008)
    # brows and forehead
    brow_in_l, brow_in_r = g(x, y, 0.015, 0.040, 0.010, 0.008), g(x, y, -0.015, 0.040, 0.010, 0.008)
    brow_out_l, brow_out_r = g(x, y, 0.045, 0.040, 0.012, 0.008), g(x, y, -0.045, 0.040, 0.012, 0.008)
    corrugator = g(ax, y, 0.018, 0.037, 0.009, 0.007)
    forehead = g(x, y, 0.0, 0.056, 0.030, 0.008)
    # eyes
    lower_lid_l = g(x, y, eye_x, Y_EYE - 0.006, 0.012, 0.006) * (1 - ue_l) * side_l
    lower_lid_r = g(x, y, -eye_x, Y_EYE - 0.006, 0.012, 0.006) * (1 - ue_r) * side_r
    upper_lid_l = g(x, y, eye_x, Y_EYE + 0.006, 0.012, 0.007) * ue_l * side_l
    upper_lid_r = g(x, y, -eye_x, Y_EYE + 0.006, 0.012, 0.007) * ue_r * side_r
    eye_corners_out = g(ax, y, 0.052, Y_EYE, 0.006, 0.009)
    # nose
    nose_side = g(ax, y, 0.012, 0.004, 0.008, 0.010)
    sneer_l, sneer_r = g(x, y, 0.012, -0.006, 0.007, 0.012), g(x, y, -0.012, -0.006, 0.007, 0.012)
    ala = g(ax, y, 0.0135, -0.016, 0.006, 0.006)
    nose_tip = g(x, y, 0.0, -0.012, 0.007, 0.007)
    glabella = g(x, y, 0.0, 0.030, 0.008, 0.007)

    def vec(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:  # (V_skin, 3), broadcasting each
        return np.stack([a * one, b * one, c * one], -1)

    smile_l = vec(0.5 * corner_l, corner_l + 0.3 * cheek_l, -0.4 * corner_l)
    smile_r = vec(-0.5 * corner_r, corner_r + 0.3 * cheek_r, -0.4 * corner_r)
    named = [
        ("lower lip down", vec(zero, -lower_lip - 0.3 * chin, 0.3 * lower_lip), 0.005),
        ("upper lip raise", vec(zero, upper_lip, 0.3 * upper_lip), 0.004),
        # corners up, out and back, lifting the cheeks
        ("smile", smile_l + smile_r, 0.005),
        ("lopsided smile", smile_l - smile_r, 0.005),
        # the cheekbones lift towards the eyes (the Duchenne marker of a real smile)
        ("cheek raise", vec(zero, cheekbones, 0.3 * cheekbones), 0.003),
        # pulled down and slightly out from below the corners
        ("frown", vec(0.3 * sx * below_corners, -below_corners, -0.2 * below_corners), 0.004),
        ("pucker", vec(-x / 0.02 * lips, zero, lips), 0.005),
        # the cheek beside the corners pulled sideways
        ("stretch", vec(sx * beside_corners, -0.2 * beside_corners, -0.3 * beside_corners), 0.005),
        # lips thinned towards the slit (gently: the lips must not fold over) and rolled in, the skin
        # around them bunching forward
        ("lip press", vec(zero, -0.5 * dy_mouth / 0.008 * lips, -0.6 * red_lips + 0.6 * around_lips), 0.003),
        ("cheek puff", vec(sx * cheeks, zero, 0.6 * cheeks), 0.004),
        ("inner brow raise", vec(zero, brow_in_l + brow_in_r, zero), 0.005),
        ("outer brow raise", vec(zero, brow_out_l + brow_out_r, zero), 0.005),
        ("lopsided brow raise", vec(zero, brow_in_l + brow_out_l - brow_in_r - brow_out_r, zero), 0.004),
        # crow's feet: the skin beside the outer eye corners drawn in
        ("eye crinkle", vec(-sx * eye_corners_out, 0.3 * eye_corners_out, zero), 0.0025),
        # the inner brows pulled together and down, bunching forward
        ("brow furrow", vec(-sx * corrugator, -0.7 * corrugator, 0.3 * corrugator), 0.004),
        ("nose wrinkle", vec(zero, nose_side, 0.2 * nose_side), 0.003),
        ("squint left", vec(zero, lower_lid_l + 0.3 * cheek_l, zero), 0.003),
        ("squint right", vec(zero, lower_lid_r + 0.3 * cheek_r, zero), 0.003),
        ("widen left", vec(zero, upper_lid_l, 0.2 * upper_lid_l), 0.003),
        ("widen right", vec(zero, upper_lid_r, 0.2 * upper_lid_r), 0.003),
        # the chin boss up and the lower lip pushed out
        ("chin raise", vec(zero, chin + 0.3 * lower_lip, 0.6 * lower_lip), 0.004),
        # the cheek beside the corners pressed in (the dimple)
        ("dimpler", vec(-0.3 * sx * beside_corners, zero, -beside_corners), 0.003),
        ("mouth left", vec(lips + corners, zero, zero), 0.004),
        # the masseters bulge at the jaw angles
        ("jaw clench", vec(sx * masseter, zero, 0.3 * masseter), 0.003),
        ("nasolabial deepen", vec(0.3 * sx * nasolabial, nasolabial, 0.3 * nasolabial), 0.003),
        ("nostril flare", vec(sx * ala, zero, zero), 0.002),
        ("nose tip down", vec(zero, -nose_tip, zero), 0.0025),
        # the skin between the brows pulled down (procerus)
        ("nose bridge pull", vec(zero, -glabella, 0.3 * glabella), 0.003),
        ("lopsided sneer", vec(zero, sneer_l - sneer_r, zero), 0.003),
        ("forehead raise", vec(zero, forehead, zero), 0.003),
    ]
    assert tuple(name for name, _, _ in named) == EXPRESSION_NAMES
    return named


def _local_bump(rng: np.random.Generator, vs: np.ndarray, centres: np.ndarray, reg: Regions,
                eye_x: float) -> np.ndarray:
    """A random Gaussian bump (V_skin, 3) around a random face point, moving in a random direction."""
    x = vs[:, 0]
    c = centres[rng.integers(centres.shape[0])]
    radius = rng.uniform(0.008, 0.018)
    bump = np.exp(-0.5 * np.sum((vs - c) ** 2, axis=1) / radius ** 2)
    # keep bumps on one side of a slit so lips and lids can move apart
    if abs(c[1] - Y_MOUTH) < 0.02 and abs(c[0]) < 0.04:
        bump *= (1.0 - reg.lower_mouth) if c[1] > Y_MOUTH else reg.lower_mouth
    for e, sign in enumerate((1, -1)):
        if abs(c[1] - Y_EYE) < 0.02 and abs(sign * c[0] - eye_x) < 0.025:
            ue = reg.upper_eye[e]
            bump *= ue if c[1] > Y_EYE else (1.0 - ue) * (sign * x > 0)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return bump[:, None] * direction[None]


def expression_basis(rng: np.random.Generator, v: np.ndarray, n_skin: int, reg: Regions,
                      mouth_corner: float, eye_x: float) -> np.ndarray:
    """(V, 3, 100) expression components: the named actions, then independent random local bumps.

    Columns 0..29 are the named actions (:data:`EXPRESSION_NAMES`, :func:`_named_expressions`),
    exactly as designed. Columns 30..99 are random Gaussian bumps on the face of decaying
    amplitude, each made orthogonal (in the plain vertex-displacement inner product) to every
    column before it, then rescaled to its peak amplitude; a bump that loses more than half of
    its norm to the earlier columns is drawn again, so each stays a local bump. Like FLAME's PCA
    basis, this makes the coefficients identifiable from the geometry: the bumps are orthogonal
    to each other and to the named block, so the conditioning of any leading set of columns is
    that of the (seed-independent) named block together with the bumps' norms.

    Every component is faded out by the face weight before it is normalised, so nothing outside
    the face moves and each reaches exactly its peak amplitude; eyeballs never move.
    """
    vs = v[:n_skin]
    fade = reg.face_weight[:, None]
    comps = [normalise(field * fade, amplitude)
             for _, field, amplitude in _named_expressions(vs, reg, mouth_corner, eye_x)]
    # Orthogonalise on the face's vertices only: everything else is exactly zero, and stays so.
    on_face = reg.face_weight > 0
    q, _ = np.linalg.qr(np.stack([c[on_face].ravel() for c in comps], 1))  # orthonormal, so far
    centres = vs[reg.face_weight > 0.8]
    n_named = len(comps)
    for rank in range(N_EXPR - n_named):
        for _ in range(1000):
            bump = (_local_bump(rng, vs, centres, reg, eye_x) * fade)[on_face].ravel()
            residual = bump - q @ (q.T @ bump)
            residual -= q @ (q.T @ residual)  # a second pass removes what rounding left
            if np.linalg.norm(residual) >= MIN_BUMP_RESIDUAL * np.linalg.norm(bump):
                break
        else:  # pragma: no cover - the face has room for far more than 100 components
            raise RuntimeError("could not draw an independent expression bump")
        q = np.concatenate([q, residual[:, None] / np.linalg.norm(residual)], 1)
        comp = np.zeros((n_skin, 3))
        comp[on_face] = residual.reshape(-1, 3)
        comps.append(normalise(comp, 0.003 / (1.0 + rank / 25.0)))
    full = np.zeros((v.shape[0], 3, N_EXPR))
    full[:n_skin] = np.stack(comps, -1)
    return full
