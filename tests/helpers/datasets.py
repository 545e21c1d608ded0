"""Tiny fixtures in the exact on-disk layouts of the datasets, with real encoded audio:
MagnaTagATune (``annotations_final.csv`` + ``mp3/``) and MTG-Jamendo (a tag TSV, its split
files and ``audio/``), for the dataset adapters' tests and the workflow's presets."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.helpers.audio import write_audio

__all__ = [
    "CLIP_S",
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
