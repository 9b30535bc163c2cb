"""``lightning-reg test`` draws every test pair's quality-control picture on request."""

import json

import numpy as np
from helpers import lightning_reg
from matplotlib.image import imread

from lightning_reg.evaluation.quality_control import DPI, PANEL_INCHES, PANELS


def test_test_draws_one_picture_per_pair_on_request(tmp_path, trained_run):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    callback = "--trainer.callbacks+=lightning_reg.training.callbacks.QualityFigures"
    arguments = ["test", "--config", trained_run / "config.yaml", "--ckpt_path", checkpoint, callback]
    done = lightning_reg([*arguments, "--data.test_pairs", "3"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "lightning-reg").iterdir()
    pictures = sorted((run / "qc").glob("*.png"))
    assert len(pictures) == 3 and all(path.stem.startswith("test-") for path in pictures), pictures  # by pair id
    assert json.loads((run / "metrics.json").read_text())["test/dice"] > 0  # the test itself ran as ever
    for path in pictures:
        image = imread(path)
        assert image.shape[:2] == (round((PANEL_INCHES + 0.4) * DPI), round(len(PANELS) * PANEL_INCHES * DPI))
        assert np.std(image[..., :3]) > 0.05
