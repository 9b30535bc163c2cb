"""The LightningModule: learning beats the classical solver on raw intensities, losses by hand,
progressive levels, and clear errors for missing labels, wrong dimensionality, another network."""

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lightning_reg.data import SyntheticDataModule
from lightning_reg.evaluation.metrics import dice_per_label
from lightning_reg.nn import IdentityFeatures, UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.training.losses import ImageDissimilarity, one_hot_labels, soft_dice_loss
from lightning_reg.training.module import RegistrationModule

QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def test_training_raises_validation_dice_above_the_classical_solver_on_raw_intensities():
    L.seed_everything(0)
    data = SyntheticDataModule(
        shape=(32, 32), num_labels=4, label_smoothness=4.0, warp_magnitude=1.5, train_pairs=64, val_pairs=6
    )
    baseline = RegistrationModule(
        network=IdentityFeatures(dims=2), train_solver=SolverOptions(similarity="lncc", iterations=[40, 20, 10])
    )
    classical = L.Trainer(**QUIET).validate(baseline, data, verbose=False)[0]["val/dice"]
    unregistered_model = RegistrationModule(
        network=IdentityFeatures(dims=2), train_solver=SolverOptions(iterations=[0, 0, 0])
    )
    unregistered = L.Trainer(**QUIET).validate(unregistered_model, data, verbose=False)[0]["val/dice"]
    model = RegistrationModule(
        network=UNet(dims=2, widths=[8, 16, 16, 16]), train_solver=SolverOptions(iterations=[40, 20, 10]), lr=3e-3
    )
    untrained = L.Trainer(**QUIET).validate(model, data, verbose=False)[0]["val/dice"]
    trainer = L.Trainer(max_steps=100, limit_val_batches=0, **QUIET)
    trainer.fit(model, data)
    logged = trainer.callback_metrics  # the solver's stationarity per level, as the user sees it in W&B
    assert {"train/stationarity", "train/stationarity_level0", "train/stationarity_level2"} <= set(logged)
    assert 0.0 < float(logged["train/stationarity"]) < 1.0
    learned = L.Trainer(**QUIET).validate(model, data, verbose=False)[0]["val/dice"]
    assert learned > classical + 0.1
    assert learned > untrained + 0.1
    assert learned > unregistered + 0.04  # measured: 0.667 against 0.586 unregistered, 0.365 classical


def test_soft_dice_equals_hard_dice_on_binary_maps():
    fixed = torch.zeros(1, 1, 10, 10, dtype=torch.long)
    moving = torch.zeros(1, 1, 10, 10, dtype=torch.long)
    fixed[..., 2:6, 2:6] = 3  # 16 pixels
    moving[..., 4:8, 2:6] = 3  # 16 pixels, 8 shared
    fixed_one_hot, moving_one_hot = one_hot_labels(fixed, moving)
    assert fixed_one_hot.shape[1] == 2  # background and label 3
    assert float(soft_dice_loss(fixed_one_hot, moving_one_hot)) == pytest.approx(1 - 2 * 8 / 32, abs=1e-5)


def test_image_dissimilarity_is_zero_for_identical_images_and_rejects_unknown_names():
    image = torch.rand(2, 1, 16, 16)
    assert float(ImageDissimilarity("mse")(image, image)) == 0.0
    assert float(ImageDissimilarity("lncc")(image, image)) < 1e-4
    with pytest.raises(ValueError, match="image loss"):
        ImageDissimilarity("ssim")


def test_progressive_schedule_adds_one_level_every_n_epochs():
    model = RegistrationModule(network=UNet(dims=2), progressive_epochs=2)
    levels = []
    for epoch in range(6):
        model._trainer = SimpleNamespace(current_epoch=epoch)
        levels.append(model.active_levels())
    assert levels == [1, 1, 2, 2, 3, 3]


def _batch(shape=(32, 32), labels=True):
    data = SyntheticDataModule(shape=shape, train_pairs=1)
    batch = next(iter(data.train_dataloader()))
    return batch if labels else {key: batch[key] for key in ("fixed", "moving", "id")}


def test_missing_labels_with_dice_weight_is_a_clear_error():
    model = RegistrationModule(network=UNet(dims=2), train_solver=SolverOptions(iterations=[2, 2, 2]))
    with pytest.raises(ValueError, match="dice_weight > 0 needs label maps"):
        model.training_step(_batch(labels=False), 0)


def test_images_of_the_wrong_dimensionality_are_a_clear_error():
    model = RegistrationModule(network=UNet(dims=2), train_solver=SolverOptions(iterations=[2, 2, 2]))
    with pytest.raises(ValueError, match="2D network"):
        model.training_step(_batch(shape=(16, 16, 16)), 0)


def test_a_checkpoint_of_another_network_is_a_clear_error():
    trained = RegistrationModule(network=UNet(dims=2, widths=[8, 16, 16, 16]))
    other = RegistrationModule(network=UNet(dims=2))
    with pytest.raises(ValueError, match="another network"):
        other.on_load_checkpoint({"state_dict": trained.state_dict()})
    other.on_load_checkpoint({"state_dict": other.state_dict()})  # the same network loads


def test_bad_solver_settings_fail_when_the_module_is_built():
    with pytest.raises(ValueError, match="unknown transform"):
        RegistrationModule(network=UNet(dims=2), eval_solver={"transform": "demons"})
    with pytest.raises(ValueError, match="one iteration count"):
        RegistrationModule(network=UNet(dims=2), train_solver={"iterations": [10, 10]})


def test_the_model_shows_optimization_as_a_layer_and_keeps_only_network_weights():
    model = RegistrationModule(
        train_solver=SolverOptions(transform="greedy"),
        eval_solver={"transform": "affine+svf", "iterations": [5]},
    )
    summary = repr(model)
    assert "(train_layer): RegistrationLayer(transform='greedy'" in summary
    assert "(eval_layer): RegistrationLayer(transform='affine+svf'" in summary
    assert model.register.__func__ is RegistrationModule.register
    assert model._layer(model.eval_solver) is model.eval_layer and model._layer(model.train_solver) is model.train_layer
    # the layers hold no weights: checkpoints of 0.1, which had no layers, load as they were
    assert all(key.startswith("network.") for key in model.state_dict())


def test_the_evaluation_label_mode_is_the_one_the_metrics_use():
    data = SyntheticDataModule(shape=(32, 32), num_labels=6, test_pairs=2, batch_size=2)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    settings = SolverOptions(transform="greedy", iterations=[10])
    scores = {}
    for mode in ("linear", "nearest"):
        model = RegistrationModule(network=IdentityFeatures(dims=2), train_solver=settings, eval_label_mode=mode)
        rows = model.evaluate(batch)
        result = model(batch)
        for index, row in enumerate(rows):
            warped = result.pair(index).warp_labels(batch["moving_seg"][index : index + 1], mode=mode)
            labels = [key for key in row if key.startswith("dice_")]
            assert labels and all(
                row[key]
                == pytest.approx(dice_per_label(batch["fixed_seg"][index : index + 1], warped)[int(key[5:])], abs=1e-6)
                for key in labels
            )
        scores[mode] = [row["dice"] for row in rows]
    assert scores["linear"] != scores["nearest"]  # the option reaches the metrics
    assert RegistrationModule(network=IdentityFeatures(dims=2)).eval_label_mode == "linear"
    with pytest.raises(ValueError, match="eval_label_mode must be 'linear' or 'nearest'"):
        RegistrationModule(network=IdentityFeatures(dims=2), eval_label_mode="cubic")
