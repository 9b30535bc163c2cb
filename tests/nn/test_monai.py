"""MONAI networks as feature networks: any size in, the pyramid out, gradients to MONAI's weights,
training with it from the command line and testing from its checkpoint, clear errors."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import TINY_2D, lightning_reg

from lightning_reg.data import SyntheticDataModule
from lightning_reg.nn import MonaiFeatures
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import RegistrationModule

pytest.importorskip("monai", reason="MONAI is in the dev and monai extras")
ROOT = Path(__file__).resolve().parents[2]
TINY_BASIC_UNET = {"features": (8, 8, 16, 16, 16, 8)}


@pytest.mark.parametrize("dims, shape", [(2, (37, 45)), (3, (17, 20, 15))])
def test_any_size_gives_the_pyramid_and_gradients_reach_monai(dims, shape):
    network = MonaiFeatures(dims=dims, out_channels=[4, 8, 8], network_options=TINY_BASIC_UNET)
    image = torch.rand(2, 1, *shape)
    pyramid = network(image)
    assert [tuple(level.shape) for level in pyramid] == [
        (2, channels, *level) for channels, level in zip([4, 8, 8], network.output_shapes(shape))
    ]
    sum(level.square().mean() for level in pyramid).backward()
    assert all(
        parameter.grad is not None and parameter.grad.abs().sum() > 0
        for parameter in network.body.parameters()
        if parameter.requires_grad
    )


def test_a_few_training_steps_change_monai_weights_and_lower_the_loss():
    L.seed_everything(0)
    data = SyntheticDataModule(shape=(32, 32), num_labels=4, label_smoothness=4.0, train_pairs=8, val_pairs=2)
    network = MonaiFeatures(dims=2, out_channels=8, network_options=TINY_BASIC_UNET)
    model = RegistrationModule(network=network, train_solver=SolverOptions(iterations=[10, 5, 5]), lr=3e-3)
    before = [parameter.detach().clone() for parameter in network.body.parameters()]
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            losses.append(float(outputs["loss"]))

    L.Trainer(
        max_epochs=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    ).fit(model, data)
    assert len(losses) == 24 and all(loss == loss for loss in losses)
    assert any(not torch.equal(old, new) for old, new in zip(before, network.body.parameters()))
    assert sum(losses[-8:]) < sum(losses[:8])  # the last epoch's pairs against the first's (other pairs)


def test_fit_names_a_monai_network_and_test_reads_its_checkpoint(tmp_path):
    network = [
        "--model.network",
        ROOT / "configs" / "network" / "monai_basicunet.yaml",  # the file users start from
        "--model.network.init_args.network_options",
        '{"features": [8, 8, 16, 16, 16, 8]}',
    ]
    done = lightning_reg(["fit", *network, *TINY_2D], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (checkpoint,) = (tmp_path / "runs" / "lightning-reg").glob("*/checkpoints/last.ckpt")
    done = lightning_reg(["test", "--ckpt_path", str(checkpoint), *TINY_2D], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test/dice" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("NoSuchNet", {}, "not a network of monai.networks.nets"),
        ("BasicUNet", {"no_such_option": 1}, "does not take these options"),
    ],
)
def test_unknown_networks_and_options_are_clear_errors(name, options, message):
    with pytest.raises(ValueError, match=message):
        MonaiFeatures(network=name, network_options=options)
