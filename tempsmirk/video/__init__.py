"""The video front end: from a video file to landmarks and face crops (chapter 7).

- :mod:`tempsmirk.video.io` — decoding and encoding with PyAV, image files with OpenCV.
- :mod:`tempsmirk.video.landmarks` — MediaPipe FaceMesh (478 points) over frames, videos and
  images, and the ``landmarks.npz`` file.
- :mod:`tempsmirk.video.crops` — SMIRK's square crop box, its temporal smoothing, frame-to-crop
  affines and their coordinate conventions, and a video's crops (``crops.mp4`` + ``crops.npz``).
- :mod:`tempsmirk.video.gaps` — frames without a face: :func:`~tempsmirk.video.gaps.fill_gaps`,
  the one rule that fills their values, and :class:`~tempsmirk.video.gaps.NoFaceError`.

Reconstruction (:mod:`tempsmirk.reconstruct`), the datasets (:mod:`tempsmirk.data`) and the
command lines of :mod:`data_prep` all use these. The modules are imported one by one (OpenCV,
PyAV and MediaPipe load only where they are needed).
"""
