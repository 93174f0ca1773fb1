"""Fixed layout of the built-in head: the skin grid's size, where the features sit, the basis sizes.

Coordinates follow FLAME: metres, +y up, +z out of the face (towards a frontal
camera), +x the subject's left. The head spans about x ±0.087 (ears), y −0.20
(neck cut) to +0.135 and z −0.126 to +0.081 (nose tip), like FLAME's template.

The skin is one grid: rows run from the crown down to the neck cut, columns
around the head (column 0 is the face's midline; column ``c`` mirrors to ``-c``).
The constants below fix that grid and the heights (``Y_*``, metres) of the rows
that carry the eye and mouth slits; :mod:`.skin` builds it.
"""

from __future__ import annotations

N_COLS = 72                       # grid columns around the head (even: column 0 and N/2 are on the midline)
N_CAP_ROWS = 16                   # rows on the crown cap (rays fanning from the head centre)
Y_CAP = 0.060                     # height of the crown cap's centre; rows below are horizontal
Z_AXIS = -0.025                   # the vertical axis the rays start from
Y_EYE = 0.019                     # row of the eye slits
Y_MOUTH = -0.044                  # row of the mouth slit
EYE_X = (0.0195, 0.0425)           # wanted inner / outer eye corner |x|
MOUTH_X = 0.0235                  # wanted mouth corner |x|
EYE_RADIUS = 0.0125               # eyeball radius
LID_GAP = 0.0006                  # skin kept this far outside the eyeball
LID_UP, LID_DOWN = 0.0052, 0.0038  # how far the upper / lower lid open at rest
LID_FALLOFF = 0.008               # vertical reach of the lid opening
CAVITY_RINGS = 6                  # rings of the inner mouth from upper to lower lip
N_SHAPE, N_EXPR, N_POSE = 300, 100, 36
