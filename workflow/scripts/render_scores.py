"""Rule render_scores: render a folder of scores (MIDI, MusicXML, ABC) to audio."""

from pathlib import Path

from pipeline.datasets.rendering.scores import render_score_folder
from pipeline.io.files import configure_logging

smk = snakemake  # noqa: F821 - injected by Snakemake
configure_logging(log_path=smk.log[0])
p = dict(smk.params.scores)
root = Path(p.pop("root"))
table = Path(p.pop("table"))
render_score_folder(
    root=root,
    tags_table=table if table.is_absolute() else root / table,
    out_dir=Path(smk.output.tracks).parent,
    duration_s=p.pop("clip_s", 30.0),
    workers=smk.threads,
    **p,
)
