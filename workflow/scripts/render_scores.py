"""Rule render_scores: render a folder of scores (MIDI, MusicXML, ABC) to audio."""

from pathlib import Path

from pipeline.datasets.rendering.scores import render_score_folder
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    p = smk.params.scores
    render_score_folder(
        root=Path(p["root"]),
        tags_table=Path(smk.input.table),
        out_dir=Path(smk.output.tracks).parent,
        sep=p["sep"],
        tag_sep=p["tag_sep"],
        duration_s=p["clip_s"],
        tempo_qpm=p["tempo_qpm"],
        program=p["program"],
        workers=smk.threads,
    )
