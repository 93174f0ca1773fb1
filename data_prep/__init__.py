"""Data preparation for real footage: the command lines that turn datasets into landmarks, crops
and manifests.

Real data enters the project here, and every frame is accounted for: a frame
without a face keeps its index and is flagged, an unreadable file is reported
(never silently dropped), and every output is written atomically so an
interrupted run can resume. The work itself is the library's: decoding, MediaPipe,
crop geometry and gap filling in :mod:`tempsmirk.video`, the file formats the
datasets read in :mod:`tempsmirk.data`.

Modules
-------
- :mod:`data_prep.landmarks` -- MediaPipe FaceMesh (478 points) over videos and
  image folders; ``python -m data_prep.landmarks INPUT --out DIR``.
- :mod:`data_prep.crops` -- square 224 px face crops from landmarks, with the
  crop box smoothed over time for video; ``python -m data_prep.crops``.
- :mod:`data_prep.mead` -- MEAD manifest, subject splits, landmarks + crops
  over it; ``python -m data_prep.mead ROOT --out DIR``.
- :mod:`data_prep.affectnet` -- AffectNet CSV parsing with a drop report,
  box crops and an index for evaluation; ``python -m data_prep.affectnet``.
- :mod:`data_prep.faces` -- SMIRK's training corpora (FFHQ, CelebA, BUPT, LRS3,
  MEAD front and sides): MediaPipe over a dataset in SMIRK's file layout, and a
  manifest per corpus; ``python -m data_prep.faces mediapipe|manifest``.

The book's data chapter walks through these on the shared sample video.
"""
