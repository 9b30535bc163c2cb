"""Test-time solver settings of a trained model: field-by-field overrides, linear then deformable
transforms, other scales, and label prompts on held-out synthetic pairs."""

from dataclasses import asdict, replace

import lightning as L
import pytest
import torch

from lightning_reg.data import SyntheticDataModule
from lightning_reg.nn import IdentityFeatures, UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.solver.geometry.pyramid import solver_levels
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.network_solver import check_levels

TRAIN = SolverOptions(transform="greedy", similarity="lncc", iterations=[30, 20, 10], regularizer_weight=0.0)


def _model(eval_solver=None, network=None) -> RegistrationModule:
    return RegistrationModule(network=network or IdentityFeatures(dims=2), train_solver=TRAIN, eval_solver=eval_solver)


@pytest.fixture(scope="module")
def test_batches():
    L.seed_everything(0)
    data = SyntheticDataModule(shape=(48, 48), test_pairs=8)
    data.setup("test")
    return list(data.test_dataloader())


@pytest.fixture(scope="module")
def same_contrast_batches():
    """Pairs the classical solver registers well (one contrast for both images)."""
    L.seed_everything(0)
    data = SyntheticDataModule(shape=(48, 48), test_pairs=4, same_contrast=True)
    data.setup("test")
    return list(data.test_dataloader())


def _rows(model, batches):
    return [row for batch in batches for row in model.evaluate(batch)]


def _mean(rows, key):
    return sum(row[key] for row in rows) / len(rows)


def test_evaluation_settings_change_only_the_fields_given():
    train = replace(TRAIN, similarity="ncc")  # not the dataclass default, so inheriting it shows
    model = RegistrationModule(
        network=IdentityFeatures(dims=2),
        train_solver=train,
        eval_solver=dict(transform="svf", iterations=[5, 5, 5]),
    )
    assert model.eval_solver.transform == "svf" and model.eval_solver.iterations == (5, 5, 5)
    assert model.eval_solver.similarity == "ncc"  # from training, not the dataclass default
    assert model.train_solver.transform == "greedy"
    assert _model().eval_solver == TRAIN
    every = asdict(SolverOptions(transform="svf"))  # every field given: those options, whatever the training ones
    assert _model(every).eval_solver == SolverOptions(transform="svf")
    with pytest.raises(ValueError, match="eval_solver: unknown solver option"):
        _model({"transfrom": "svf"})


def test_test_time_scales_build_the_pyramid_from_the_network_levels():
    network = UNet(dims=2, out_channels=4)
    image = torch.rand(1, 1, 64, 64)
    levels = network(image)
    pyramid = solver_levels(levels, network.scales, [8, 4, 2, 1])
    assert [tuple(level.shape[2:]) for level in pyramid] == [(8, 8), (16, 16), (32, 32), (64, 64)]
    assert torch.equal(pyramid[1], levels[0]) and torch.equal(pyramid[3], levels[2])
    assert torch.allclose(pyramid[0].mean(), levels[0].mean(), atol=0.05)  # smoothed down, not another signal
    finest_only = solver_levels(levels, network.scales, [4, 1])
    assert torch.equal(finest_only[0], levels[0]) and torch.equal(finest_only[1], levels[2])
    with pytest.raises(ValueError, match="finest level's scale"):
        check_levels(SolverOptions(scales=[1, 0.5], iterations=[5]), network.scales)
    with pytest.raises(ValueError, match="coarse to fine"):
        check_levels(SolverOptions(scales=[1, 2], iterations=[5]), network.scales)
    with pytest.raises(ValueError, match="eval_solver: give one iteration count"):
        _model(dict(scales=[8, 4, 2, 1]), network=network)
    # the module's layer takes the same levels: a solver level per scale, each at its resolution
    model = _model(dict(scales=[8, 4, 2, 1], iterations=[2]), network=network)
    results = model.eval_layer(levels, levels, feature_scales=network.scales)
    assert [result.fixed_shape for result in results] == [(8, 8), (16, 16), (32, 32), (64, 64)]


def test_other_test_time_scales_still_register(same_contrast_batches):
    none = _mean(_rows(_model(dict(iterations=[0, 0, 0])), same_contrast_batches), "dice")
    three = _mean(_rows(_model(), same_contrast_batches), "dice")
    four = _mean(
        _rows(_model(dict(scales=[8, 4, 2, 1], iterations=[30, 30, 20, 10])), same_contrast_batches),
        "dice",
    )
    finest = _mean(_rows(_model(dict(scales=[1], iterations=[60])), same_contrast_batches), "dice")
    assert three > none + 0.2
    assert four != three and four > none + 0.2
    assert finest < four  # one fine level alone is trapped by local minima the pyramid avoids


def test_affine_then_greedy_starts_from_the_affine_solution(test_batches):
    batch = test_batches[0]
    affine = _model(dict(transform="affine"))(batch)
    combined = _model(dict(transform="affine+greedy"))(batch)
    greedy = _model(dict(transform="greedy"))(batch)
    identity = torch.eye(3, dtype=affine.matrix.dtype).expand_as(affine.matrix)
    assert not torch.allclose(affine.matrix, identity, atol=1e-3)
    assert torch.allclose(combined.matrix, affine.matrix, atol=1e-5)
    assert torch.allclose(greedy.matrix, identity, atol=1e-6)
    assert not torch.allclose(combined.grid, greedy.grid, atol=1e-3)
    for bad in ("affine+rigid", "greedy+svf", "affine+svf+greedy"):
        with pytest.raises(ValueError, match="combine one linear transform"):
            _model(dict(transform=bad))


def test_prompting_structure_k_raises_its_dice_without_hurting_the_others(test_batches):
    """On the held-out synthetic test pairs (random contrast per image), each structure in turn."""
    blind = _rows(_model(), test_batches)
    labels = sorted(int(key[5:]) for key in blind[0] if key.startswith("dice_"))
    assert len(labels) >= 3
    for label in labels:
        prompted = _rows(_model(dict(prompt_labels=[label], prompt_weight=1.0)), test_batches)
        others = [f"dice_{other}" for other in labels if other != label]
        gain = _mean(prompted, f"dice_{label}") - _mean(blind, f"dice_{label}")
        change = (sum(_mean(prompted, key) for key in others) - sum(_mean(blind, key) for key in others)) / len(others)
        assert gain >= 0.05, (label, gain)  # measured: +0.45 to +0.58
        assert change >= -0.01, (label, change)  # measured: +0.13 to +0.26 (aligned borders help neighbours)


def test_a_prompt_needs_label_maps(test_batches):
    batch = {key: value for key, value in test_batches[0].items() if "seg" not in key}
    with pytest.raises(ValueError, match="prompt_labels need label maps"):
        _model(dict(prompt_labels=[1]))(batch)


def test_a_checkpoint_saved_from_python_keeps_its_settings_and_loads_safely(tmp_path):
    model = _model(dict(transform="svf"), network=UNet(dims=2, out_channels=4))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    stored = torch.load(tmp_path / "model.ckpt", weights_only=True)  # plain types only: no pickled classes
    assert stored["hyper_parameters"]["eval_solver"]["transform"] == "svf"
    loaded = RegistrationModule.load_from_checkpoint(tmp_path / "model.ckpt", network=UNet(dims=2, out_channels=4))
    assert loaded.eval_solver.transform == "svf" and loaded.eval_solver.similarity == "lncc"
    assert loaded.train_solver == TRAIN


def test_feature_channels_solve_on_principal_components_of_the_features(test_batches):
    """Every channel kept: the same warp bit for bit; fewer: a different solve on fewer channels that
    still registers; a bad count is refused when the settings are built."""
    torch.manual_seed(0)
    network = UNet(dims=2, out_channels=6, widths=[4, 8, 8])
    batch = test_batches[0]
    grids = {}
    for channels in (None, 6, 2):
        model = _model(network=network, eval_solver=dict(feature_channels=channels)).eval()
        with torch.no_grad():
            grids[channels] = model.register(batch)[-1].grid
    assert torch.equal(grids[None], grids[6])
    assert not torch.allclose(grids[None], grids[2]) and bool(torch.isfinite(grids[2]).all())
    with pytest.raises(ValueError, match="feature_channels must be a whole number"):
        TRAIN.changed(feature_channels=0)
