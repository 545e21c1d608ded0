"""The ``pipeline`` command line (``python -m pipeline`` or the installed ``pipeline``).

Commands live in the registry :data:`COMMANDS` (name -> arguments and handler):

``pipeline tag FILE... --checkpoint PATH``
    Top-N tags of each audio file (``--top``), its taggram as CSV and PNG (``--taggram
    DIR``), window and track embeddings (``--embeddings OUT.npz|OUT.parquet``), and JSON Lines
    on stdout instead of the readable table (``--json``: one object per file, in order, with
    ``path, ok, error, warnings, duration_s, n_windows, sample_rate, channels, tags,
    probabilities`` and, with ``--taggram``, ``taggram: {csv, png}``). Files are decoded as a
    stream (:mod:`pipeline.inference.file_tagger`): any length of audio in bounded memory.

``pipeline similar FILE... --index PATH [--k 20]``
    The ``k`` tracks of a similarity index (:mod:`pipeline.retrieval.similarity`) nearest to
    each file, in the index's embedding space, as a table or JSON Lines (``path, ok, error,
    neighbours: [{rank, track_id, path, similarity, tags}]``).

``pipeline info CHECKPOINT [--json]``
    What a checkpoint holds: kind, architecture, tags, feature settings, training data and
    settings, the chosen epoch, test metrics and licences of pretrained weights
    (:mod:`pipeline.cli.info`).

The commands live in :mod:`pipeline.cli.tag`, :mod:`pipeline.cli.similar` and
:mod:`pipeline.cli.info`; what they share in :mod:`pipeline.cli.common`. Each imports what
it needs when it runs, so that ``pipeline --help`` loads neither numpy nor torch.

Exit status: 0 every file was tagged; 1 some files could not be tagged (each is named on
stderr, and in the JSON output; the other files were tagged and written); 2 a usage error, or
the checkpoint, device or an output path cannot be used (checked before any file is tagged:
nothing was tagged). Every problem is one line on stderr, ``pipeline tag: error: ...`` (or
``warning:``), never a traceback. Paths, track ids and tags are printed with control and
other non-printable characters escaped (``\\u202e``); JSON output is ASCII and always valid
JSON (a value that is not finite is ``null``).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn, TextIO

from pipeline import __version__
from pipeline.cli import info, similar, tag
from pipeline.cli.common import EXIT_FAILED_FILES, EXIT_OK, EXIT_USAGE, Command, Messages
from pipeline.io.files import one_line
from pipeline.io.memory import keep_freed_memory

__all__ = [
    "COMMANDS",
    "Command",
    "EXIT_FAILED_FILES",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


#: Subcommand name -> :class:`Command`.
COMMANDS: dict[str, Command] = {
    "tag": tag.COMMAND,
    "similar": similar.COMMAND,
    "info": info.COMMAND,
}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command in :data:`COMMANDS`."""
    parser = _Parser(
        prog="pipeline",
        description="Use the music auto-tagging pipeline's trained models.",
        epilog="Exit status: 0 all files tagged, 1 some files failed (the others were "
        "tagged), 2 usage, checkpoint or output path error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name, help=command.help, description=command.help, epilog=command.epilog
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _one_line_warnings(command: str) -> None:
    """Python warnings (librosa, torch) as one line on stderr, like the pipeline's own."""
    say = Messages(command=command, stream=sys.stderr)

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        say.warning(f"{category.__name__}: {message}")

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    saved = warnings.showwarning
    _one_line_warnings(args.command)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"pipeline {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `pipeline tag ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED_FILES
    finally:
        warnings.showwarning = saved
