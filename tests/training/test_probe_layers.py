"""One probe per encoder layer: the table and the plot."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import ConfigError
from pipeline.training.probe_layers import LAYER_COLUMNS, train_layer_probes
from tests.helpers.encoders import encoder_dataset


def test_one_probe_per_kept_layer_with_its_scores_table_and_plot(tiny_encoders, tmp_path):
    data = encoder_dataset(tmp_path / "data", tiny_encoders["hubert"], layers=[0, 2, 3])
    out = tmp_path / "layers"
    table = train_layer_probes(
        model={"architecture": "probe_linear", "train": {"epochs": 2, "batch_size": 4}},
        index_path=data["index_path"],
        stats_path=data["stats_path"],
        vocabulary_path=data["vocabulary_path"],
        out_dir=out,
    )
    assert list(table.columns) == LAYER_COLUMNS
    assert table["layer"].tolist() == [0, 1, 2] and table["hidden_state"].tolist() == [0, 2, 3]
    assert table["best_valid_roc_auc"].between(0, 1).all()
    pd.testing.assert_frame_equal(pd.read_csv(out / "layers.csv"), table, check_dtype=False)
    assert (out / "layers.png").stat().st_size > 1000
    assert (out / "layer_01" / "checkpoint.pt").is_file()
    assert not (out / "layer_01" / "last.pt").exists()


def test_layer_tables_are_for_probes(tiny_encoders, tmp_path):
    with pytest.raises(ConfigError, match="layer_table: architecture 'fcn'"):
        train_layer_probes(
            model={"architecture": "fcn"},
            index_path=tmp_path / "i",
            stats_path=tmp_path / "s",
            vocabulary_path=tmp_path / "v",
            out_dir=tmp_path,
        )
