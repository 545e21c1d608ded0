"""The Python example of README.md runs as written (on a checkpoint and a file of the tests)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(checkpoints: dict, audio: dict[str, Path]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    example = next(b for b in blocks if "FileTagger" in b)
    code = example.replace(
        '"results/demo/models/musicnn/checkpoint.pt"', repr(str(checkpoints["fcn"]))
    ).replace('"song.mp3"', repr(str(audio["flac"])))
    namespace: dict = {"print": lambda *_: None}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the project's own text
    result = namespace["result"]
    assert len(result.top(5)) == min(5, len(result.tags))
    assert result.window_probs.shape == (result.n_windows, len(result.tags))
    assert np.isfinite(result.track_embedding()).all()
