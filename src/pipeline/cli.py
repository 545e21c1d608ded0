"""The ``pipeline`` command line (``python -m pipeline`` or the installed ``pipeline``).

Commands live in the registry :data:`COMMANDS` (name -> arguments and handler):

``pipeline tag FILE... --checkpoint PATH``
    Top-N tags of each audio file (``--top``), its taggram as CSV and PNG (``--taggram
    DIR``), window and track embeddings (``--embeddings OUT.npz|OUT.parquet``), and JSON Lines
    on stdout instead of the readable table (``--json``: one object per file, in order, with
    ``path, ok, error, warnings, duration_s, n_windows, sample_rate, channels, tags,
    probabilities`` and, with ``--taggram``, ``taggram: {csv, png}``). Files are decoded as a
    stream (:mod:`pipeline.tagging`): any length of audio in bounded memory.

``pipeline similar FILE... --index PATH [--k 20]``
    The ``k`` tracks of a similarity index (:mod:`pipeline.retrieval.similarity`) nearest to each
    file,
    in the index's embedding space, as a table or JSON Lines (``path, ok, error, neighbours:
    [{rank, track_id, path, similarity, tags}]``).

Exit status: 0 every file was tagged; 1 some files could not be tagged (each is named on
stderr, and in the JSON output; the other files were tagged and written); 2 a usage error, or
the checkpoint, device or an output path cannot be used (nothing was tagged). Every problem
is one line on stderr, ``pipeline tag: error: ...`` (or ``warning:``), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pipeline import __version__
from pipeline.errors import PipelineError

__all__ = ["COMMANDS", "Command", "EXIT_FAILED_FILES", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
#: Some files could not be tagged; the others were.
EXIT_FAILED_FILES = 1
#: Usage error, or the checkpoint, device or an output path is unusable; nothing was tagged.
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, its arguments and its handler (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None


#: Subcommand name -> :class:`Command`.
COMMANDS: dict[str, Command] = {}


def _one_line(message: object) -> str:
    """A message on one line (libsndfile and torch messages may hold newlines)."""
    return " ".join(str(message).split())


class _Messages:
    """One-line errors and warnings on stderr, prefixed with the command."""

    def __init__(self, *, command: str, stream: TextIO) -> None:
        self.prefix = f"pipeline {command}"
        self.stream = stream

    def error(self, message: object) -> None:
        print(f"{self.prefix}: error: {_one_line(message)}", file=self.stream, flush=True)

    def warning(self, message: object) -> None:
        print(f"{self.prefix}: warning: {_one_line(message)}", file=self.stream, flush=True)


# --------------------------------------------------------------------------------------------
# pipeline tag
# --------------------------------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def _tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg, mp3)"
    )
    parser.add_argument(
        "-c",
        "--checkpoint",
        required=True,
        type=Path,
        metavar="PATH",
        help="a checkpoint.pt written by training (any model kind)",
    )
    parser.add_argument(
        "-n",
        "--top",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="tags to show per file, most probable first (0: all; default 10)",
    )
    parser.add_argument(
        "--taggram",
        type=Path,
        metavar="OUT_DIR",
        help="write each file's per-window probabilities to OUT_DIR/<name>.csv and .png",
    )
    parser.add_argument(
        "--embeddings",
        type=Path,
        metavar="OUT",
        help="write window and track embeddings to OUT (.npz for NumPy, or .parquet)",
    )
    _stream_options(parser, json_help="tags, probabilities, errors")


def _stream_options(parser: argparse.ArgumentParser, *, json_help: str) -> None:
    """Options of every command that streams audio files through a checkpoint."""
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"JSON Lines on stdout: one object per file ({json_help})",
    )
    parser.add_argument(
        "--max-duration",
        type=_positive_float,
        metavar="SECONDS",
        help="read at most this much of each file (default: all of it; training read at "
        "most the checkpoint's window.max_duration_s)",
    )
    parser.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="torch device: cpu, cuda, cuda:1 (default: cuda when available, else cpu)",
    )


def _device(name: str | None) -> str:
    """The torch device to use; default CUDA when available (as training).

    Raises
    ------
    PipelineError
        ``name`` is not a torch device, or names CUDA where there is none.
    """
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PipelineError(
            f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, ...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"--device {name!r}: CUDA is not available on this machine")
    return name


def _output_names(paths: Sequence[str]) -> list[str]:
    """A distinct taggram file stem per input (``a.flac``, ``a.wav`` -> ``a``, ``a-2``)."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = Path(path).stem or "audio"
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names.append(name)
    return names


def _failure_record(path: str, error: str) -> dict[str, Any]:
    return {
        "path": path,
        "ok": False,
        "error": error,
        "warnings": [],
        "duration_s": None,
        "n_windows": 0,
        "sample_rate": None,
        "channels": None,
        "tags": [],
        "probabilities": [],
    }


def _format_table(result: Any, *, top: int) -> str:
    """The readable summary of one tagged file."""
    channels = {1: "mono", 2: "stereo"}.get(result.channels, f"{result.channels} channels")
    windows = f"{result.n_windows} window{'s' if result.n_windows != 1 else ''}"
    lines = [
        f"{result.path}: {result.duration_s:.1f} s, {windows}, "
        f"{result.source_sample_rate} Hz {channels}"
    ]
    best = result.top(top)
    width = max([len("tag"), *(len(tag) for tag, _ in best)])
    lines.append(f"  {'rank':>4}  {'tag':<{width}}  probability")
    lines += [
        f"  {k:>4}  {tag:<{width}}  {prob:11.3f}" for k, (tag, prob) in enumerate(best, start=1)
    ]
    return "\n".join(lines)


def _check_output_paths(args: argparse.Namespace) -> str | None:
    """Why an output path cannot be used, or None."""
    if args.embeddings is not None:
        from pipeline.inference.outputs import EMBEDDING_WRITERS

        suffix = args.embeddings.suffix.lower()
        if suffix not in EMBEDDING_WRITERS:
            return (
                f"--embeddings {str(args.embeddings)!r}: suffix {suffix or '(none)'!r} is not "
                f"one of {sorted(EMBEDDING_WRITERS)}"
            )
        if args.embeddings.is_dir():
            return f"--embeddings {str(args.embeddings)!r} is a directory"
    for option, folder in (
        ("--taggram", args.taggram),
        ("--embeddings", None if args.embeddings is None else args.embeddings.parent),
    ):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"{option}: cannot create folder {str(folder)!r}: {exc.strerror or exc}"
        if not os.access(folder, os.W_OK):
            return f"{option}: folder {str(folder)!r} is not writable"
    return None


@contextlib.contextmanager
def _c_stderr_captured() -> Iterator[list[str]]:
    """Collect what C libraries write to file descriptor 2 while the block runs.

    libsndfile's MP3 decoder (mpg123) prints notes such as ``Note: Illegal Audio-MPEG-Header``
    straight to the process's stderr; the caller turns them into one line, or drops them when
    the file failed anyway. Python's own messages during the block come back in the list too.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr: nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", errors="replace").splitlines())


def _replay(lines: list[str], *, stream: TextIO) -> list[str]:
    """Print the pipeline's own captured lines again; return the C libraries' lines."""
    ours = [line for line in lines if line.startswith("pipeline ")]
    for line in ours:
        print(line, file=stream, flush=True)
    return [_one_line(line) for line in lines if line.strip() and line not in ours]


def _file_error(path: str, exc: BaseException) -> str:
    """An error message that names the file (AudioError messages already do)."""
    message = _one_line(exc)
    if not isinstance(exc, PipelineError):  # unexpected: say what kind of error
        message = f"{type(exc).__name__}: {message}"
    return message if path in message else f"{path!r}: {message}"


def run_tag(args: argparse.Namespace) -> int:
    """Handler of ``pipeline tag``; returns the exit status."""
    say = _Messages(command="tag", stream=sys.stderr)
    if not args.checkpoint.is_file():  # before importing torch: answer in a blink
        say.error(f"checkpoint {str(args.checkpoint)!r} does not exist")
        return EXIT_USAGE
    problem = _check_output_paths(args)
    if problem is not None:
        say.error(problem)
        return EXIT_USAGE

    from pipeline.evaluation.taggram import write_taggram
    from pipeline.inference.file_tagger import FileTagger
    from pipeline.inference.loading import load_tagger
    from pipeline.inference.outputs import write_embeddings

    try:
        device = _device(args.device)
        tagger = load_tagger(args.checkpoint, device=device)
        file_tagger = FileTagger(
            tagger, embed=args.embeddings is not None, max_duration_s=args.max_duration
        )
    except PipelineError as exc:
        say.error(exc)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - torch errors (corrupt weights, device)
        say.error(f"checkpoint {str(args.checkpoint)!r}: {type(exc).__name__}: {exc}")
        return EXIT_USAGE

    results = []
    n_failed = 0
    names = _output_names(args.files)
    for k, (path, name) in enumerate(zip(args.files, names, strict=True)):
        try:
            with _c_stderr_captured() as library_output:
                result = file_tagger.tag(path)
            outputs: dict[str, str] = {}
            if args.taggram is not None:
                csv_path, png_path = args.taggram / f"{name}.csv", args.taggram / f"{name}.png"
                write_taggram(
                    result, csv_path=csv_path, png_path=png_path, title=f"{Path(path).name}"
                )
                outputs = {"csv": str(csv_path), "png": str(png_path)}
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            _replay(library_output, stream=sys.stderr)  # the decoder's notes: the error says it
            message = _file_error(path, exc)
            say.error(message)
            n_failed += 1
            if args.json:
                print(json.dumps(_failure_record(path, message)), flush=True)
            continue
        notes = _replay(library_output, stream=sys.stderr)
        if notes:
            say.warning(f"{path!r}: the decoder said: {'; '.join(notes)[:300]}")
        for warning in result.warnings:
            say.warning(f"{path!r}: {warning}")
        if args.embeddings is not None:
            results.append(result)
        if args.json:
            record = result.to_record(top=args.top)
            if outputs:
                record["taggram"] = outputs
            print(json.dumps(record), flush=True)
        else:
            print(("\n" if k else "") + _format_table(result, top=args.top), flush=True)

    if args.embeddings is not None:
        if results:
            try:
                write_embeddings(results, path=args.embeddings)
            except (OSError, PipelineError) as exc:
                say.error(f"--embeddings {str(args.embeddings)!r}: {exc}")
                return EXIT_FAILED_FILES
        else:
            say.warning(f"no file was tagged: {str(args.embeddings)!r} not written")
    return EXIT_FAILED_FILES if n_failed else EXIT_OK


COMMANDS["tag"] = Command(
    help="tag audio files with a trained checkpoint",
    add_arguments=_tag_arguments,
    run=run_tag,
    epilog="Files of any length are streamed in bounded memory. Exit status: 0 every file "
    "tagged; 1 some files failed (one line each on stderr; the others were tagged); 2 usage, "
    "checkpoint, device or output path error. Example: pipeline tag song.mp3 "
    "-c results/demo/models/musicnn/checkpoint.pt --taggram taggrams/",
)


# --------------------------------------------------------------------------------------------
# pipeline similar
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _similar_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg, mp3)"
    )
    parser.add_argument(
        "-i",
        "--index",
        required=True,
        type=Path,
        metavar="PATH",
        help="a similarity index (rule similarity_index: results/<dataset>/models/<model>/"
        "similarity/index.parquet) or a tagged collection (results/collections/<name>/"
        "tags.parquet)",
    )
    parser.add_argument(
        "-k", "--k", type=_positive_int, default=20, metavar="K", help="tracks to return (20)"
    )
    parser.add_argument(
        "-c",
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PATH",
        help="the checkpoint to embed the files with (default: the one the index names)",
    )
    _stream_options(parser, json_help="the nearest tracks, errors")


def _format_neighbours(path: str, found: Any) -> str:
    lines = [f"{path}: {len(found)} nearest tracks"]
    width = max([len("track"), *(len(str(t)) for t in found["track_id"])])
    lines.append(f"  {'rank':>4}  {'track':<{width}}  similarity  tags")
    for row in found.itertuples():
        tags = ", ".join(row.tags) if "tags" in found and row.tags is not None else ""
        lines.append(f"  {row.rank:>4}  {row.track_id!s:<{width}}  {row.similarity:10.3f}  {tags}")
    return "\n".join(lines)


def run_similar(args: argparse.Namespace) -> int:
    """Handler of ``pipeline similar``; returns the exit status."""
    say = _Messages(command="similar", stream=sys.stderr)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        say.error(f"checkpoint {str(args.checkpoint)!r} does not exist")
        return EXIT_USAGE

    from pipeline.inference.file_tagger import FileTagger
    from pipeline.inference.loading import load_tagger
    from pipeline.retrieval.similarity import load_index

    try:
        index = load_index(args.index, checkpoint=args.checkpoint)
        if not index.checkpoint.is_file():
            raise PipelineError(
                f"checkpoint {str(index.checkpoint)!r} named by index {str(args.index)!r} does "
                "not exist (pass --checkpoint)"
            )
        tagger = load_tagger(index.checkpoint, device=_device(args.device))
        file_tagger = FileTagger(tagger, embed=True, max_duration_s=args.max_duration)
    except PipelineError as exc:
        say.error(exc)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - torch errors (corrupt weights, device)
        say.error(f"{str(args.index)!r}: {type(exc).__name__}: {exc}")
        return EXIT_USAGE

    n_failed = 0
    for k, path in enumerate(args.files):
        try:
            with _c_stderr_captured() as library_output:
                result = file_tagger.tag(path)
                query = index.to_space(result.track_embedding()[None, :])
                found = index.search(query, k=args.k)[0]
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            _replay(library_output, stream=sys.stderr)
            message = _file_error(path, exc)
            say.error(message)
            n_failed += 1
            if args.json:
                print(json.dumps({"path": path, "ok": False, "error": message, "neighbours": []}))
            continue
        _replay(library_output, stream=sys.stderr)
        if args.json:
            neighbours = [
                {
                    "rank": int(row["rank"]),
                    "track_id": str(row["track_id"]),
                    "path": str(row.get("path", "")),
                    "similarity": round(float(row["similarity"]), 6),
                    "tags": list(row["tags"]) if "tags" in row and row["tags"] is not None else [],
                }
                for _, row in found.iterrows()
            ]
            record = {"path": path, "ok": True, "error": None, "neighbours": neighbours}
            print(json.dumps(record), flush=True)
        else:
            print(("\n" if k else "") + _format_neighbours(path, found), flush=True)
    return EXIT_FAILED_FILES if n_failed else EXIT_OK


COMMANDS["similar"] = Command(
    help="find the tracks of an index most similar to audio files",
    add_arguments=_similar_arguments,
    run=run_similar,
    epilog="Each file is embedded with the index's checkpoint (and its metric-learning "
    "projection, if any) and compared by cosine similarity. Exit status as for tag. Example: "
    "pipeline similar song.mp3 -i results/demo/models/musicnn/similarity/index.parquet -k 20",
)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
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
    say = _Messages(command=command, stream=sys.stderr)

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
