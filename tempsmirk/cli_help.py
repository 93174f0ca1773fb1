"""How every command's ``--help`` is laid out: prose wrapped to the terminal, examples verbatim.

Each command (``python -m tempsmirk train|reconstruct|evaluate``, ``python -m data_prep.*``)
ends its help with an ``examples:`` block — a command on the built-in head or synthetic data,
then commands on real assets — given as the parser's ``epilog`` with
``formatter_class=ExamplesHelpFormatter``. ``tests/test_cli_help.py`` checks that every help
ends with such a block and that each example parses.
"""

from __future__ import annotations

import argparse
import textwrap

__all__ = ["ExamplesHelpFormatter"]


class ExamplesHelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that a paragraph of the description or epilog with an
    indented line (an example block, a command) is printed as written; other paragraphs are
    wrapped to the terminal as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for block in text.strip("\n").split("\n\n"):
            lines = block.splitlines()
            if any(line[:1].isspace() for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n\n".join(out)
