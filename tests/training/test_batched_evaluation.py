"""A batch of pairs gives each pair the result it gets alone."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_reg.cli.register.model import load_model
from lightning_reg.data import SyntheticDataModule

SCORES = ("dice", "hd95", "folding_percent", "sdlogj")


@pytest.mark.parametrize("transform", ["freeform", "svf", "affine+greedy", "syn"])
def test_a_batched_test_loop_gives_the_metrics_of_one_pair_at_a_time(trained_run, tmp_path, transform):
    model = load_model(trained_run / "checkpoints" / "last.ckpt", torch.device("cpu"))
    model = model.with_eval_solver(transform=transform, iterations=[20])
    results = {}
    for batch_size in (1, 4):
        data = SyntheticDataModule(shape=(32, 32), test_pairs=6, batch_size=batch_size)  # batches of 4 and 2
        trainer = L.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        metrics = trainer.test(model, data, verbose=False)[0]
        results[batch_size] = metrics, {row["id"]: row for row in model.test_rows}
    (alone, alone_rows), (batched, batched_rows) = results[1], results[4]
    assert list(batched_rows) == list(alone_rows) and len(alone_rows) == 6
    for key in SCORES:
        assert batched[f"test/{key}"] == pytest.approx(alone[f"test/{key}"], rel=1e-4, abs=1e-4), key
        for pair, row in alone_rows.items():
            assert batched_rows[pair][key] == pytest.approx(row[key], rel=1e-3, abs=1e-3), (pair, key)
    assert len({round(row["dice"], 4) for row in alone_rows.values()}) > 1  # six different pairs, not one repeated
