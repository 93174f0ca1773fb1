"""Every command's ``--help`` ends with example invocations, and each example parses.

Commands: ``python -m tempsmirk`` and its ``train``, ``reconstruct``, ``evaluate``; the
``data_prep`` modules (``faces`` with its ``mediapipe`` and ``manifest``). The help is taken
as a user sees it (``--help``, captured), the examples are read back from its last block, and
each is parsed by the same parser, so an example with a renamed or missing option fails here.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Callable

import pytest

from tempsmirk.cli_help import ExamplesHelpFormatter


def _tempsmirk() -> argparse.ArgumentParser:
    from tempsmirk.__main__ import build_parser

    return build_parser()


def _data_prep(name: str) -> Callable[[], argparse.ArgumentParser]:
    def build() -> argparse.ArgumentParser:
        import importlib

        return importlib.import_module(f"data_prep.{name}").build_parser()

    return build


#: (program as typed, parser factory, the arguments that print the help)
COMMANDS = [
    ("python -m tempsmirk", _tempsmirk, []),
    ("python -m tempsmirk", _tempsmirk, ["train"]),
    ("python -m tempsmirk", _tempsmirk, ["reconstruct"]),
    ("python -m tempsmirk", _tempsmirk, ["evaluate"]),
    ("python -m data_prep.landmarks", _data_prep("landmarks"), []),
    ("python -m data_prep.crops", _data_prep("crops"), []),
    ("python -m data_prep.affectnet", _data_prep("affectnet"), []),
    ("python -m data_prep.mead", _data_prep("mead"), []),
    ("python -m data_prep.faces", _data_prep("faces"), []),
    ("python -m data_prep.faces", _data_prep("faces"), ["mediapipe"]),
    ("python -m data_prep.faces", _data_prep("faces"), ["manifest"]),
]


def help_text(build: Callable[[], argparse.ArgumentParser], args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build().parse_args([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def examples(text: str, program: str) -> list[list[str]]:
    """The commands of the help's final ``examples`` block, continuation lines joined, as argv
    lists without the program. Fails if the help does not end with such a block."""
    lines = text.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("examples")]
    assert starts, "the help has no 'examples' block"
    block = lines[starts[-1] + 1:]
    assert block and all(line.startswith("  ") for line in block), \
        "the help does not end with its examples block (indented lines after 'examples:')"
    joined = "\n".join(line.strip() for line in block if not line.strip().startswith("#"))
    commands = [c for c in joined.replace("\\\n", " ").splitlines() if c.strip()]
    for c in commands:
        assert c.startswith(program + " "), f"an example that is not a {program} command: {c}"
    return [shlex.split(c)[len(program.split()):] for c in commands]


@pytest.mark.parametrize("program, build, args", COMMANDS,
                         ids=[" ".join([p.split()[-1], *a]) for p, _, a in COMMANDS])
def test_help_ends_with_examples_that_parse(program, build, args, capsys):
    text = help_text(build, args, capsys)
    argvs = examples(text, program)
    assert len(argvs) >= 2, f"{program} {' '.join(args)}: expected two or three examples"
    for argv in argvs:
        assert argv[:len(args)] == args, f"an example of another command: {argv}"
        try:
            build().parse_args(argv)
        except SystemExit as exc:  # argparse reports the error on stderr and exits 2
            pytest.fail(f"example does not parse ({exc.code}): {' '.join(argv)}\n"
                        f"{capsys.readouterr().err}")
    tail = text.rstrip().splitlines()
    block = tail[max(i for i, line in enumerate(tail) if line.startswith("examples")):]
    for line in block:
        assert len(line) <= 88, f"example line wider than a terminal: {line}"


def test_the_checker_refuses_a_help_without_examples():
    with pytest.raises(AssertionError, match="no 'examples' block"):
        examples("usage: x\n\noptions:\n  -h", "x")
    with pytest.raises(AssertionError, match="does not end"):
        examples("examples:\n  x a\n\ntrailing prose", "x")
    assert examples("examples:\n  # comment\n  x a \\\n      --b c\n  x d", "x") == [["a", "--b", "c"],
                                                                                    ["d"]]


def test_formatter_wraps_prose_and_keeps_examples():
    parser = argparse.ArgumentParser(prog="p", description="word " * 40,
                                     epilog="examples:\n  p --a " + "x" * 70 + "\n  p b",
                                     formatter_class=ExamplesHelpFormatter)
    text = parser.format_help()
    description = text.split("\n\n")[1]
    assert len(description.splitlines()) > 1  # wrapped
    assert text.rstrip().endswith("examples:\n  p --a " + "x" * 70 + "\n  p b")  # verbatim
