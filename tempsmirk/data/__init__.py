"""Face datasets: the shared item/batch types and synthetic faces (chapter 3).

- :class:`FaceSample` / :class:`FaceBatch` / :func:`collate_faces` — the interface every dataset
  (synthetic or real) returns.
- :class:`SyntheticFaces` / :class:`SyntheticConfig` — rendered heads with ground truth.
"""

from tempsmirk.data.synthetic import SyntheticConfig, SyntheticFaces, item_seed, smooth_trajectory
from tempsmirk.data.types import FaceBatch, FaceSample, collate_faces

__all__ = ["FaceBatch", "FaceSample", "SyntheticConfig", "SyntheticFaces", "collate_faces",
           "item_seed", "smooth_trajectory"]
