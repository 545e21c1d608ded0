"""Tiny fixtures in the exact on-disk layouts of the datasets, with real encoded audio:
MagnaTagATune (``annotations_final.csv`` + ``mp3/``), MTG-Jamendo (a tag TSV, its split
files and ``audio/``) and FMA (``fma_metadata/`` + ``fma_<subset>/``), for the dataset
adapters' tests and the workflow's presets."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.helpers.audio import write_audio

__all__ = [
    "CLIP_S",
    "FMA_COLUMNS",
    "FMA_GENRES",
    "FMA_TRACKS",
    "fma_audio_path",
    "write_fma",
    "JAMENDO_HEADER",
    "JAMENDO_ROWS",
    "JAMENDO_SPLITS",
    "MTAT_CLIPS",
    "MTAT_TAGS",
    "jamendo_tsv",
    "write_jamendo",
    "write_mtat",
]

CLIP_S = 0.3  # seconds of audio per fixture file: enough to be real, short to stay fast


# --------------------------------------------------------------------------- MagnaTagATune

# Real MagnaTagATune tag names (annotations_final.csv has 188 of them).
MTAT_TAGS = [
    "no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord",
    "female singing", "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals",
    "clarinet", "heavy", "silence", "beats", "men", "woodwind", "funky", "no strings",
    "chimes", "foreign", "no piano", "horns", "classical", "female", "no voices", "soft rock",
    "eerie", "spacey", "jazz", "guitar", "quiet", "no beat", "banjo", "electric", "solo",
    "violins", "folk", "female voice", "wind", "happy", "ambient", "new age", "synth", "funk",
    "no singing", "middle eastern", "trumpet", "percussion", "drum", "airy", "voice",
    "repetitive", "birds", "space", "strings", "bass", "harpsicord", "medieval", "male voice",
    "girl", "keyboard", "acoustic", "loud", "classic", "string", "drums", "electronic",
    "not classical", "chanting", "no violin", "not rock", "no guitar", "organ", "no vocal",
    "talking", "choral", "weird", "opera", "soprano", "fast", "acoustic guitar",
    "electric guitar", "male singer", "man singing", "classical guitar", "country", "violin",
    "electro", "reggae", "tribal", "dark", "male opera", "no vocals", "irish", "electronica",
    "horn", "operatic", "arabic", "lol", "low", "instrumental", "trance", "chant", "strange",
    "drone", "synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep",
    "fast beat", "industrial", "hard", "harp", "no flute", "jungle", "pop", "lute",
    "female vocal", "oboe", "mellow", "orchestral", "viola", "light", "echo", "piano",
    "celtic", "male vocals", "orchestra", "eastern", "old", "flutes", "punk", "spanish", "sad",
    "sax", "slow", "male", "blues", "vocal", "indian", "no singer", "scary", "india", "woman",
    "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy", "singing",
    "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house",
    "monks", "flute", "not opera", "not english", "oriental", "beat", "upbeat", "soft",
    "noise", "choir", "female singer", "rap", "metal", "hip hop", "quick", "water", "baroque",
    "women", "fiddle", "english",
]  # fmt: skip

MTAT_CLIPS = {
    # clip_id: (mp3_path, tags)
    "2": (
        "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3",
        ["classical", "strings", "opera", "violin"],
    ),
    "6": (
        "0/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-146-175.mp3",
        ["classical", "slow"],
    ),
    "10": ("a/tim_rayborn-the_path_beyond-14-taqsim_ahmad-0-29.mp3", ["indian", "sitar"]),
    "11": ("b/jacob_heringman-josquin_des_prez_lute_music-19-gintzler__pater-0-29.mp3", []),
    "12": ("c/paul_avgerinos-balancing_spheres-03-day_of_ascension-88-117.mp3", ["ambient"]),
    "13": ("d/strojovna_07-dirnix-01-bas-30-59.mp3", ["techno", "electronic", "beat", "fast"]),
    "14": ("e/jay_kishor-the_color_of_night-01-malkauns-59-88.mp3", ["indian", "guitar"]),
}


def write_mtat(
    root: Path, *, clips: dict[str, tuple[str, list[str]]] = MTAT_CLIPS, audio: bool = True
) -> Path:
    """annotations_final.csv (TAB-separated, every field quoted, as distributed) + mp3/
    (with ``audio=False`` only the annotation file)."""
    assert len(MTAT_TAGS) == 188 and len(set(MTAT_TAGS)) == 188
    root.mkdir(parents=True, exist_ok=True)
    annotations = root / "annotations_final.csv"
    with annotations.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["clip_id", *MTAT_TAGS, "mp3_path"])
        for number, (clip_id, (mp3_path, tags)) in enumerate(clips.items()):
            writer.writerow([clip_id, *(int(t in tags) for t in MTAT_TAGS), mp3_path])
            if mp3_path and audio:
                write_audio(root / "mp3" / mp3_path, duration_s=CLIP_S, seed=number)
    return annotations


# --------------------------------------------------------------------------- MTG-Jamendo

JAMENDO_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
JAMENDO_ROWS = [
    # TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION, then one field per tag
    ["track_0000214", "artist_000014", "album_000031", "14/214.mp3", "124.6", "genre---punkrock"],
    ["track_0000215", "artist_000014", "album_000031", "15/215.mp3", "98.3", "genre---rock",
     "instrument---guitar", "mood/theme---energetic"],
    ["track_0001008", "artist_000121", "album_000200", "08/1008.mp3", "212.0",
     "mood/theme---happy"],
    ["track_0001009", "artist_000121", "album_000200", "09/1009.mp3", "45.0", "instrument---piano"],
    ["track_0002000", "artist_000300", "album_000400", "00/2000.mp3", "61.5", "genre---jazz"],
]  # fmt: skip
JAMENDO_SPLITS = {
    "train": ["track_0000214", "track_0000215"],
    "validation": ["track_0001008"],
    "test": ["track_0001009"],
}  # track_0002000 is in no split file


def jamendo_tsv(path: Path, rows: list[list[str]]) -> None:
    """A TAB-separated MTG-Jamendo table: :data:`JAMENDO_HEADER`, then one line per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([JAMENDO_HEADER, *("\t".join(r) for r in rows)]) + "\n")


def write_jamendo(
    root: Path,
    *,
    stem: str = "autotagging_top50tags",
    split: int = 0,
    variant: str = "full",
    audio: bool = True,
) -> None:
    """``{stem}.tsv``, its split files under ``splits/split-{split}/`` and ``audio/``.

    ``variant="low"`` names the audio files as the download script's ``audio-low`` does
    (``14/214.low.mp3``, while the TSV's ``PATH`` says ``14/214.mp3``).
    """
    jamendo_tsv(root / f"{stem}.tsv", JAMENDO_ROWS)
    by_id = {row[0]: row for row in JAMENDO_ROWS}
    for name, ids in JAMENDO_SPLITS.items():
        jamendo_tsv(
            root / "splits" / f"split-{split}" / f"{stem}-{name}.tsv", [by_id[i] for i in ids]
        )
    for number, row in enumerate(JAMENDO_ROWS if audio else []):
        relative = row[3] if variant == "full" else row[3].replace(".mp3", ".low.mp3")
        write_audio(root / "audio" / relative, duration_s=CLIP_S, seed=number)


# --------------------------------------------------------------------------- FMA

#: The columns of the real fma_metadata/tracks.csv, in order: (group, field).
FMA_COLUMNS = [
    *(("album", f) for f in (
        "comments", "date_created", "date_released", "engineer", "favorites", "id",
        "information", "listens", "producer", "tags", "title", "tracks", "type")),
    *(("artist", f) for f in (
        "active_year_begin", "active_year_end", "associated_labels", "bio", "comments",
        "date_created", "favorites", "id", "latitude", "location", "longitude", "members",
        "name", "related_projects", "tags", "website", "wikipedia_page")),
    ("set", "split"), ("set", "subset"),
    *(("track", f) for f in (
        "bit_rate", "comments", "composer", "date_created", "date_recorded", "duration",
        "favorites", "genre_top", "genres", "genres_all", "information", "interest",
        "language_code", "license", "listens", "lyricist", "number", "publisher", "tags",
        "title")),
]  # fmt: skip
#: genres.csv rows: genre_id, #tracks, parent, title, top_level.
FMA_GENRES = [
    ("1", "8693", "38", "Avant-Garde", "38"),
    ("10", "13845", "0", "Pop", "10"),
    ("12", "32923", "0", "Rock", "12"),
    ("15", "34413", "0", "Electronic", "15"),
    ("17", "12706", "0", "Folk", "17"),
    ("21", "8389", "0", "Hip-Hop", "21"),
    ("25", "9261", "12", "Punk", "12"),
    ("38", "38154", "0", "Experimental", "38"),
]
#: track id: (set/subset, set/split, genre_top, genres, genres_all, duration s, artist id).
FMA_TRACKS = {
    2: ("small", "training", "Hip-Hop", "[21]", "[21]", "168", "1"),
    5: ("small", "validation", "Hip-Hop", "[21]", "[21]", "206", "1"),
    10: ("small", "test", "Pop", "[10]", "[10]", "161", "6"),
    140: ("medium", "training", "Folk", "[17]", "[17]", "253", "54"),
    141: ("medium", "test", "Rock", "[25]", "[25, 12]", "182", "54"),
    1234: ("large", "training", "", "[1, 10]", "[1, 10, 38]", "301", "211"),
    155066: ("large", "validation", "Electronic", "[15]", "[15]", "600", "22154"),
}


def fma_audio_path(track_id: int) -> str:
    """``AAA/AAABBB.mp3`` of a track id, as the FMA archives name the files."""
    return f"{track_id:06d}"[:3] + f"/{track_id:06d}.mp3"


def write_fma(root: Path, *, audio_subsets: tuple[str, ...] = ("small",)) -> None:
    """fma_metadata/{tracks,genres}.csv in the real layout and fma_<subset>/AAA/AAABBB.mp3.

    tracks.csv as pandas writes a two-level column table: a row of groups, a row of fields,
    a row holding only ``track_id``; quoted cells with commas, quotes and line breaks (the
    real album ``information`` and artist ``bio`` are HTML over several lines).
    """
    metadata = root / "fma_metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    with (metadata / "tracks.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", *(group for group, _ in FMA_COLUMNS)])
        writer.writerow(["", *(field for _, field in FMA_COLUMNS)])
        writer.writerow(["track_id", *([""] * len(FMA_COLUMNS))])
        for track_id, (
            subset,
            split,
            top,
            genres,
            genres_all,
            duration,
            artist,
        ) in FMA_TRACKS.items():
            values = {column: "" for column in FMA_COLUMNS}
            values.update(
                {
                    ("album", "information"): '<p>A "lo-fi" record,\nrecorded at home</p>',
                    ("album", "tags"): "[]",
                    ("artist", "bio"): "<p>Based in NYC, since 2005.</p>\r\n<p>More.</p>",
                    ("artist", "id"): artist,
                    ("artist", "name"): f"Artist {artist}",
                    ("set", "split"): split,
                    ("set", "subset"): subset,
                    ("track", "duration"): duration,
                    ("track", "genre_top"): top,
                    ("track", "genres"): genres,
                    ("track", "genres_all"): genres_all,
                    ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0",
                    ("track", "tags"): "['hiphop', 'lo-fi']",
                    ("track", "title"): f"Track, {track_id}",
                }
            )
            writer.writerow([track_id, *(values[c] for c in FMA_COLUMNS)])
    with (metadata / "genres.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        writer.writerows(FMA_GENRES)
    nested = {"small": ("small",), "medium": ("small", "medium")}
    for subset in audio_subsets:
        kept = nested.get(subset, ("small", "medium", "large"))
        for number, (track_id, row) in enumerate(FMA_TRACKS.items()):
            if row[0] in kept:
                path = root / f"fma_{subset}" / fma_audio_path(track_id)
                write_audio(path, duration_s=CLIP_S, seed=number)
