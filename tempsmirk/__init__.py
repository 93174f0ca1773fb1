"""tempsmirk: temporally consistent FLAME reconstruction from monocular video.

Subpackages follow the book's chapters: :mod:`tempsmirk.flame` (chapter 1),
:mod:`tempsmirk.render` (chapter 2). Nothing here downloads anything; every
loader takes local paths, and the built-in head (:func:`tempsmirk.flame.builtin_head`)
stands in for licensed assets.

Modules that import ``timm`` first call :func:`tempsmirk.compat.ensure_torchvision`
(see that module for why).
"""

from tempsmirk.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
