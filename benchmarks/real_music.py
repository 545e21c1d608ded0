#!/usr/bin/env python
"""Real recorded music for the feature benchmarks, built from a Debian game-music package.

No real dataset can be downloaded here, but Debian ships game soundtracks as Ogg Vorbis
(44.1 kHz stereo). This module unpacks one such package into a cache folder outside the
repository and re-encodes excerpts with ffmpeg/LAME into the formats of the two datasets the
pipeline targets, plus tracks of mixed lengths:

* ``mtat``: 29.1 s, 16 kHz mono, 32 kbps CBR MP3 (MagnaTagATune clips);
* ``jamendo``: 30 s, 44.1 kHz stereo, 320 kbps CBR MP3 (MTG-Jamendo ``raw_30s``);
* ``mixed_mtat`` / ``mixed_jamendo``: the same two encodings at lengths spread
  log-uniformly from 30 s to 10 min (a source shorter than that is looped).

The commands (run once; root is needed for ``apt-get``; ``ffmpeg`` with libmp3lame)::

    apt-get update && apt-get install -y ffmpeg
    mkdir -p /work/cache/music && cd /work/cache/music
    apt-get download wesnoth-1.16-music          # 153 MB, 41 Ogg Vorbis tracks, GPL-2+
    dpkg-deb -x wesnoth-1.16-music_*.deb extracted
    python benchmarks/real_music.py --cache /work/cache/music   # encodes the clips

Each clip is ``ffmpeg -stream_loop -1 -i SRC -ss START -t LENGTH -ac C -ar RATE -b:a RATE
-codec:a libmp3lame OUT.mp3``: an excerpt starting at a quarter of the source (at most 60 s
in). Nothing generated goes into the repository. :func:`material` returns the files, or
raises :class:`MaterialMissing` with the commands above when the package or ffmpeg is absent.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path("/work/cache/music")
PACKAGE = "wesnoth-1.16-music"


@dataclass(frozen=True)
class Format:
    """One encoding of the material."""

    key: str
    label: str
    sample_rate: int
    channels: int
    bitrate: str


MTAT = Format("mtat", "MTAT-style (16 kHz mono, 32 kbps)", 16000, 1, "32k")
JAMENDO = Format("jamendo", "Jamendo-style (44.1 kHz stereo, 320 kbps)", 44100, 2, "320k")
FORMATS = {f.key: f for f in (MTAT, JAMENDO)}
CLIP_S = {"mtat": 29.1, "jamendo": 30.0}


class MaterialMissing(RuntimeError):
    """The source package or ffmpeg is absent; the message says how to get them."""


HOWTO = (
    "real-music material is missing: run, as root,\n"
    "  apt-get update && apt-get install -y ffmpeg\n"
    "  mkdir -p {cache} && cd {cache} && apt-get download {package} && "
    "dpkg-deb -x {package}_*.deb extracted\n"
    "then run this again (or: python benchmarks/real_music.py --cache {cache})"
)


def sources(cache: Path) -> list[Path]:
    """The unpacked Ogg Vorbis tracks, sorted; raises :class:`MaterialMissing` if none."""
    found = sorted((cache / "extracted").rglob("*.ogg"))
    if not found or shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise MaterialMissing(HOWTO.format(cache=cache, package=PACKAGE))
    return found


def duration_s(path: Path) -> float:
    """Duration of a file from ffprobe."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


def encode(src: Path, out: Path, *, fmt: Format, length_s: float, start_s: float) -> Path:
    """One excerpt of ``src`` as ``fmt`` (skipped when ``out`` exists)."""
    if out.is_file() and out.stat().st_size > 0:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp3")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src)]
    cmd += ["-ss", f"{start_s:.3f}", "-t", f"{length_s:.3f}", "-ac", str(fmt.channels)]
    cmd += ["-ar", str(fmt.sample_rate), "-b:a", fmt.bitrate, "-codec:a", "libmp3lame", str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.rename(out)
    return out


def _start(src_duration: float) -> float:
    return min(src_duration / 4, 60.0)


def clips(cache: Path, fmt: Format, *, n: int = 40, jobs: int = 2) -> list[Path]:
    """``n`` excerpts (29.1 s or 30 s) of the first ``n`` sources, encoded as ``fmt``."""
    srcs = sources(cache)[:n]
    folder = cache / "clips" / fmt.key

    def one(src: Path) -> Path:
        return encode(
            src,
            folder / f"{src.stem}.mp3",
            fmt=fmt,
            length_s=CLIP_S[fmt.key],
            start_s=_start(duration_s(src)),
        )

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, srcs))


def mixed(cache: Path, fmt: Format, *, n: int = 16, jobs: int = 2) -> list[Path]:
    """``n`` tracks of lengths log-spaced from 30 s to 600 s (shuffled by a fixed order)."""
    srcs = sources(cache)
    lengths = [30.0 * (20.0 ** (k / max(n - 1, 1))) for k in range(n)]
    order = [(k * 7) % n for k in range(n)]  # mix long and short in the list
    folder = cache / "mixed" / fmt.key

    def one(k: int) -> Path:
        src = srcs[k % len(srcs)]
        return encode(
            src,
            folder / f"{k:02d}_{round(lengths[k])}s.mp3",
            fmt=fmt,
            length_s=lengths[k],
            start_s=0,
        )

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, order))


def material(cache: Path, *, n_clips: int = 40, n_mixed: int = 16) -> dict[str, list[Path]]:
    """Every set: ``mtat``, ``jamendo``, ``mixed_mtat``, ``mixed_jamendo`` (built if absent)."""
    return {
        "mtat": clips(cache, MTAT, n=n_clips),
        "jamendo": clips(cache, JAMENDO, n=n_clips),
        "mixed_mtat": mixed(cache, MTAT, n=n_mixed),
        "mixed_jamendo": mixed(cache, JAMENDO, n=n_mixed),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    try:
        sets = material(args.cache)
    except MaterialMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    for key, paths in sets.items():
        total = sum(duration_s(p) for p in paths)
        size = sum(p.stat().st_size for p in paths)
        print(f"{key}: {len(paths)} files, {total / 60:.1f} min, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
