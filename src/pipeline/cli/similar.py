"""``pipeline similar``: the tracks of a similarity index nearest to audio files.

What it needs (torch, the decoder, the index) is imported when the command runs, so that
``pipeline --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
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
    file_error,
    positive_int,
    replay,
    stream_options,
)
from pipeline.errors import PipelineError, printable
from pipeline.io.files import file_problem, json_line

__all__ = ["COMMAND"]


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
        "-k", "--k", type=positive_int, default=20, metavar="K", help="tracks to return (20)"
    )
    parser.add_argument(
        "-c",
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PATH",
        help="the checkpoint to embed the files with (default: the one the index names)",
    )
    stream_options(parser, json_help="the nearest tracks, errors")


def _format_neighbours(path: str, found: Any) -> str:
    """The readable list of one file's nearest tracks (non-printable characters escaped)."""
    lines = [f"{printable(path)}: {len(found)} nearest tracks"]
    ids = [printable(t) for t in found["track_id"]]
    width = max([len("track"), *(len(t) for t in ids)])
    lines.append(f"  {'rank':>4}  {'track':<{width}}  similarity  tags")
    for row, track in zip(found.itertuples(), ids, strict=True):
        tags = ", ".join(row.tags) if "tags" in found and row.tags is not None else ""
        lines.append(
            f"  {row.rank:>4}  {track:<{width}}  {row.similarity:10.3f}  {printable(tags)}"
        )
    return "\n".join(lines)


def run_similar(args: argparse.Namespace) -> int:
    """Handler of ``pipeline similar``; returns the exit status."""
    say = Messages(command="similar", stream=sys.stderr)
    problem = file_problem(args.index, what="similarity index")
    if problem is None and args.checkpoint is not None:
        problem = file_problem(args.checkpoint, what="checkpoint")
    if problem is not None:
        say.error(problem)
        return EXIT_USAGE

    from pipeline.inference.file_tagger import FileTagger
    from pipeline.inference.loading import load_tagger
    from pipeline.retrieval.similarity import load_index

    try:
        index = load_index(args.index, checkpoint=args.checkpoint)
        problem = file_problem(index.checkpoint, what="checkpoint")
        if problem is not None:
            raise PipelineError(
                f"{problem} (named by index {str(args.index)!r}; pass --checkpoint)"
            )
        tagger = load_tagger(index.checkpoint, device=device_name(args.device))
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
            with c_stderr_captured() as library_output:
                result = file_tagger.tag(path)
                query = index.to_space(result.track_embedding()[None, :])
                found = index.search(query, k=args.k)[0]
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            replay(library_output, stream=sys.stderr)
            message = file_error(path, exc)
            say.error(message)
            n_failed += 1
            if args.json:
                failed = {"path": path, "ok": False, "error": message, "neighbours": []}
                print(json_line(failed), flush=True)
            continue
        replay(library_output, stream=sys.stderr)
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
            print(json_line(record), flush=True)
        else:
            print(("\n" if k else "") + _format_neighbours(path, found), flush=True)
    return EXIT_FAILED_FILES if n_failed else EXIT_OK


#: The command, registered in :data:`pipeline.cli.COMMANDS`.
COMMAND = Command(
    help="find the tracks of an index most similar to audio files",
    add_arguments=_similar_arguments,
    run=run_similar,
    epilog="Each file is embedded with the index's checkpoint (and its metric-learning "
    "projection, if any) and compared by cosine similarity. Exit status as for tag. Example: "
    "pipeline similar song.mp3 -i results/demo/models/musicnn/similarity/index.parquet -k 20",
)
