"""Face datasets: the shared item/batch types, synthetic faces and real clips (chapters 3, 5).

- :class:`FaceSample` / :class:`FaceBatch` / :func:`collate_faces` — the interface every dataset
  (synthetic or real) returns.
- :class:`SyntheticFaces` / :class:`SyntheticConfig` — rendered heads with ground truth; in clip
  mode with optional per-frame nuisances (:class:`FrameNuisance`).
- :class:`MeadClips` / :class:`MeadConfig` — T-frame windows of MEAD clips prepared by data_prep.
- :class:`FaceSource`, :class:`FaceMix`, :class:`MixedBatches` — SMIRK's real training corpora
  (FFHQ, CelebA, BUPT, LRS3, MEAD front and sides) prepared by ``data_prep.faces``, mixed by
  percentage per batch (README "Training data"); :func:`build_dataset` builds what the ``data``
  section (:class:`DataConfig`) asks for.
- :class:`ClipAugmentation` — crop, rotation and colour augmentation of training clips, drawn once
  per clip (default) or per frame (:mod:`tempsmirk.data.augmentation`).
- :class:`RenderedFaces` / :func:`cached_face_set` — synthetic faces rendered once and cached
  (:mod:`tempsmirk.data.rendered`).
"""

from tempsmirk.data.augmentation import ClipAugmentation
from tempsmirk.data.build import DataConfig, TrainingData, build_dataset
from tempsmirk.data.clips import MeadClips, MeadConfig
from tempsmirk.data.faces import FaceCropConfig, FaceSource
from tempsmirk.data.mix import FaceMix, FaceMixConfig, MixedBatches, MixSource
from tempsmirk.data.rendered import RenderedFaces, cached_face_set, render_face_set
from tempsmirk.data.synthetic import (
                                      FrameNuisance,
                                      SyntheticConfig,
                                      SyntheticFaces,
                                      apply_nuisance,
                                      item_seed,
                                      smooth_trajectory,
)
from tempsmirk.data.types import FaceBatch, FaceSample, collate_faces

__all__ = ["ClipAugmentation", "FaceBatch", "FaceSample", "FrameNuisance", "MeadClips", "MeadConfig",
           "SyntheticConfig", "SyntheticFaces", "apply_nuisance", "collate_faces", "item_seed",
           "smooth_trajectory", "FaceCropConfig", "FaceSource", "FaceMix", "FaceMixConfig", "MixSource",
           "MixedBatches", "DataConfig", "TrainingData", "build_dataset", "RenderedFaces", "cached_face_set",
           "render_face_set"]
