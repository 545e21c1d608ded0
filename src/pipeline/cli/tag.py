"""``pipeline tag``: tags, taggrams and embeddings of audio files with a trained checkpoint.

What it needs (torch, the decoder, plots) is imported when the command runs, so that
``pipeline --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline.cli.common import (
    EXIT_FAILED_FILES,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    Messages,
    c_stderr_captured,
    device_name,
    failure_record,
    file_error,
    non_negative_int,
    output_names,
    replay,
    stream_options,
)
from pipeline.errors import PipelineError, printable
from pipeline.io.files import file_problem, json_line

__all__ = ["COMMAND"]


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
        type=non_negative_int,
        default=10,
        metavar="N",
        help="tags to show per file, most probable first (0: all; default 10)",
    )
    parser.add_argument(
        "--taggram",
        type=Path,
        metavar="OUT_DIR",
        help="write each file's taggram to OUT_DIR/<name>.csv and .png: probabilities per "
        "window, or per chunk for models that score chunks shorter than a window (time in s)",
    )
    parser.add_argument(
        "--embeddings",
        type=Path,
        metavar="OUT",
        help="write window and track embeddings to OUT (.npz for NumPy, or .parquet)",
    )
    stream_options(parser, json_help="tags, probabilities, errors")


def _format_table(result: Any, *, top: int) -> str:
    """The readable summary of one tagged file (non-printable characters escaped)."""
    channels = {1: "mono", 2: "stereo"}.get(result.channels, f"{result.channels} channels")
    windows = f"{result.n_windows} window{'s' if result.n_windows != 1 else ''}"
    lines = [
        f"{printable(result.path)}: {result.duration_s:.1f} s, {windows}, "
        f"{result.source_sample_rate} Hz {channels}"
    ]
    best = [(printable(tag), prob) for tag, prob in result.top(top)]
    width = max([len("tag"), *(len(tag) for tag, _ in best)])
    lines.append(f"  {'rank':>4}  {'tag':<{width}}  probability")
    lines += [
        f"  {k:>4}  {tag:<{width}}  {prob:11.3f}" for k, (tag, prob) in enumerate(best, start=1)
    ]
    return "\n".join(lines)


def _folder_problem(option: str, folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (created if missing), or None.

    A file is created and removed there: permission bits alone do not tell (root, read-only
    or virtual file systems such as ``/proc``).
    """
    if folder.exists() and not folder.is_dir():
        return f"{option}: {str(folder)!r} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option}: cannot create folder {str(folder)!r}: {exc.strerror or exc}"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pipeline-write-test-"):
            pass
    except OSError as exc:
        return f"{option}: cannot write in folder {str(folder)!r}: {exc.strerror or exc}"
    return None


def _check_output_paths(args: argparse.Namespace) -> str | None:
    """Why an output path cannot be used, or None; checked before any file is tagged."""
    if args.embeddings is not None:
        from pipeline.inference.outputs import EMBEDDING_WRITERS

        out = args.embeddings
        suffix = out.suffix.lower()
        if suffix not in EMBEDDING_WRITERS:
            return (
                f"--embeddings {str(out)!r}: suffix {suffix or '(none)'!r} is not "
                f"one of {sorted(EMBEDDING_WRITERS)}"
            )
        if out.is_dir():
            return f"--embeddings {str(out)!r} is a directory"
        if out.exists() and not out.is_file():
            return f"--embeddings {str(out)!r} is not a regular file"
        problem = _folder_problem("--embeddings", out.parent)
        if problem is not None:
            return problem
        if out.exists() and not os.access(out, os.W_OK):
            return f"--embeddings {str(out)!r} cannot be written: permission denied"
    if args.taggram is not None:
        return _folder_problem("--taggram", args.taggram)
    return None


def run_tag(args: argparse.Namespace) -> int:
    """Handler of ``pipeline tag``; returns the exit status."""
    say = Messages(command="tag", stream=sys.stderr)
    # before importing torch (answer in a blink), and never open a named pipe
    problem = file_problem(args.checkpoint, what="checkpoint") or _check_output_paths(args)
    if problem is not None:
        say.error(problem)
        return EXIT_USAGE

    from pipeline.evaluation.taggram import write_taggram
    from pipeline.inference.file_tagger import FileTagger
    from pipeline.inference.loading import load_tagger
    from pipeline.inference.outputs import write_embeddings

    try:
        device = device_name(args.device)
        tagger = load_tagger(args.checkpoint, device=device)
        file_tagger = FileTagger(
            tagger,
            embed=args.embeddings is not None,
            max_duration_s=args.max_duration,
            chunks=args.taggram is not None,  # the taggram at the model's own resolution
        )
    except PipelineError as exc:
        say.error(exc)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - torch errors (corrupt weights, device)
        say.error(f"checkpoint {str(args.checkpoint)!r}: {type(exc).__name__}: {exc}")
        return EXIT_USAGE

    results = []
    n_failed = 0
    names = output_names(args.files)
    for k, (path, name) in enumerate(zip(args.files, names, strict=True)):
        try:
            with c_stderr_captured() as library_output:
                result = file_tagger.tag(path)
            outputs: dict[str, str] = {}
            if args.taggram is not None:
                csv_path, png_path = args.taggram / f"{name}.csv", args.taggram / f"{name}.png"
                title = printable(Path(path).name)  # matplotlib refuses lone surrogates
                write_taggram(result, csv_path=csv_path, png_path=png_path, title=title)
                outputs = {"csv": str(csv_path), "png": str(png_path)}
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            replay(library_output, stream=sys.stderr)  # the decoder's notes: the error says it
            message = file_error(path, exc)
            say.error(message)
            n_failed += 1
            if args.json:
                print(json_line(failure_record(path, message)), flush=True)
            continue
        notes = replay(library_output, stream=sys.stderr)
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
            print(json_line(record), flush=True)
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


#: The command, registered in :data:`pipeline.cli.COMMANDS`.
COMMAND = Command(
    help="tag audio files with a trained checkpoint",
    add_arguments=_tag_arguments,
    run=run_tag,
    epilog="Files of any length are streamed in bounded memory. Exit status: 0 every file "
    "tagged; 1 some files failed (one line each on stderr; the others were tagged); 2 usage, "
    "checkpoint, device or output path error. Example: pipeline tag song.mp3 "
    "-c results/demo/models/musicnn/checkpoint.pt --taggram taggrams/",
)
