"""AffectNet: crop the faces of the annotation CSVs and write an index, from the command line.

Command line::

    python -m data_prep.affectnet ROOT --out DIR [--images IMAGES] [--rule smirk|emoca|csv_box]
        [--scale S] [--size 224]

runs :func:`tempsmirk.data.affectnet.prepare_affectnet`, prints its drop report and the index
size, and exits with 1 when rows were malformed or images missing or unreadable (2 for unusable
arguments). What is kept and dropped, the crop rules and the files written in DIR are described
in :mod:`tempsmirk.data.affectnet`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.data.affectnet import CROP_RULES, DEFAULT_RULE, prepare_affectnet
from tempsmirk.video.crops import DEFAULT_SIZE

__all__ = ["main"]


#: The end of ``--help``.
EXAMPLES = """\
examples:
  # SMIRK's crops (MediaPipe box x 1.4), for tempsmirk evaluate --affectnet DIR
  python -m data_prep.affectnet AFFECTNET_ROOT --out prepared/affectnet
  # EMOCA's crops, for encoders trained on EMOCA/DECA crops
  python -m data_prep.affectnet AFFECTNET_ROOT --out prepared/emoca_crops --rule emoca"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.affectnet",
        description="Crop AffectNet faces (codes 0-7 with valid valence/arousal) and write "
                    "DIR/index.csv plus a report of everything dropped.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("root", type=Path, help="folder holding training.csv / validation.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=None,
                        help="images folder (default ROOT/Manually_Annotated_Images, else ROOT)")
    parser.add_argument("--rule", choices=CROP_RULES, default=DEFAULT_RULE,
                        help="smirk: MediaPipe box x 1.4 (what SMIRK's encoders were trained on); "
                             "emoca: 68-landmark box x 1.1 x 1.25 (EMOCA's); csv_box: CSV face box x 1.25")
    parser.add_argument("--scale", type=float, default=None, help="the rule's box scale (default: its own)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        index, reports = prepare_affectnet(args.root, args.out, args.images, args.rule, args.scale,
                                           args.size, show_progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in reports:
        print(r.summary())
    print(f"index: {len(index)} crops in {args.out / 'index.csv'} ({index.crop.describe()})")
    # Missing/unreadable images or broken rows are data problems the user should see.
    bad = any(r.malformed or r.missing_images or r.unreadable_images for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
