"""AddedFeatures (issue 41): the image kept, learned channels beside it and a gate. Untrained, the model
registers exactly as the classical solver with the image's similarity; the gate and then the learned
channels get gradients through the solver, so training can add to the classical start."""

from __future__ import annotations

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.nn import AddedFeatures, IdentityFeatures
from lightning_reg.solver import SolverOptions, normalize_intensities, register
from lightning_reg.solver.energy.similarity import AddedChannels, make_similarity
from lightning_reg.training.losses import soft_dice_loss
from lightning_reg.training.module import RegistrationModule


def _pair(shape):
    pair = warped_pair(shape, magnitude=2.0, seed=1)
    return normalize_intensities(pair["fixed"]), normalize_intensities(pair["moving"]), pair


@pytest.mark.parametrize("similarity", ["lncc", "mi"])
@pytest.mark.parametrize("shape", [(48, 40), (24, 28, 20)], ids=["2d", "3d"])
def test_an_untrained_model_registers_as_the_classical_solver(shape, similarity):
    fixed, moving, _ = _pair(shape)
    settings = SolverOptions(
        transform="greedy",
        similarity="added",
        similarity_options={"image": similarity},
        scales=[4, 2, 1],
        iterations=[20, 10, 5],
        tolerance=1e-6,
    )
    model = RegistrationModule(network=AddedFeatures(dims=len(shape)), train_solver=settings).eval()
    with torch.no_grad():
        (features,) = model.network(fixed)
        assert float(features[:, 1:-1].std()) > 0  # the learned channels are not blank: the gate holds them off
        learned = model.register({"fixed": fixed, "moving": moving}, settings)[-1]
    classical = register(
        fixed,
        moving,
        transform="greedy",
        similarity=similarity,
        scales=(4, 2, 1),
        iterations=(20, 10, 5),
        tolerance=1e-6,
        normalize=False,
    )
    assert torch.equal(classical.grid, learned.grid)
    assert float(learned.displacement_voxels().abs().max()) > 0.5  # it did register


def test_with_area_averaged_levels_an_untrained_model_registers_as_identity_features():
    fixed, moving, _ = _pair((48, 40))
    settings = SolverOptions(similarity="added", similarity_options={"image": "mi"}, iterations=[20, 10, 5])
    classical = SolverOptions(similarity="mi", iterations=[20, 10, 5])
    batch = {"fixed": fixed, "moving": moving}
    with torch.no_grad():
        learned = RegistrationModule(network=AddedFeatures(scales=(4, 2, 1)), train_solver=settings).register(batch)
        identity = RegistrationModule(network=IdentityFeatures(scales=(4, 2, 1)), train_solver=classical).register(
            batch
        )
    assert len(learned) == 3 and all(torch.equal(a.grid, b.grid) for a, b in zip(learned, identity))


def test_the_gate_and_then_the_learned_channels_get_gradients_through_the_solver():
    fixed, moving, pair = _pair((40, 40))
    labels = (pair["fixed_seg"] == 1).float(), (pair["moving_seg"] == 1).float()
    settings = SolverOptions(similarity="added", iterations=[10, 5, 5], scales=[4, 2, 1], backward="unroll")
    network = AddedFeatures(dims=2)
    model = RegistrationModule(network=network, train_solver=settings)
    head = network.unet.heads[-1].weight

    def gradients():
        network.zero_grad()
        result = model.register({"fixed": fixed, "moving": moving}, settings)[-1]
        soft_dice_loss(labels[0], result.warp(labels[1])).backward()
        return float(network.gate.grad.abs()), float(head.grad.abs().sum())

    gate, weights = gradients()
    assert gate > 0 and weights == 0  # at gate 0 only the gate is reached, to first order
    with torch.no_grad():
        network.gate.fill_(0.5)
    gate, weights = gradients()
    assert gate > 0 and weights > 0


def test_the_gate_weighs_the_learned_term_and_image_weight_the_image_term():
    fixed = torch.rand(2, 1, 16, 16)
    warped = torch.rand(2, 1, 16, 16)
    learned_f, learned_w = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    gates = torch.tensor([0.0, 2.0]).view(2, 1, 1, 1).expand(2, 1, 16, 16)
    similarity = AddedChannels(image="mse", features="mse", image_weight=0.5)
    value = similarity(torch.cat([fixed, learned_f, gates], 1), torch.cat([warped, learned_w, gates], 1))
    image = (fixed - warped).pow(2).flatten(1).mean(1)
    features = (learned_f - learned_w).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(value, 0.5 * image + torch.tensor([0.0, 2.0]) * features)
    # the image's channels alone: the image term
    torch.testing.assert_close(AddedChannels(image="mse")(fixed, warped), image)


def test_bad_added_options_and_layouts_are_refused():
    with pytest.raises(ValueError, match="plain similarity"):
        make_similarity("added", image="added")
    with pytest.raises(ValueError, match="image_weight"):
        make_similarity("added", image_weight=-1)
    with pytest.raises(ValueError, match="gate channel"):
        AddedChannels()(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="learned"):
        AddedFeatures(learned=0)


def test_a_plain_similarity_is_the_image_s_with_added_features_and_another_network_keeps_its_own():
    from lightning_reg.nn import UNet
    from lightning_reg.solver.energy.similarity import MutualInformation

    trained = SolverOptions(similarity="added", similarity_options={"image": "lncc"}, scales=[4, 2, 1])
    model = RegistrationModule(network=AddedFeatures(), train_solver=trained, eval_solver=dict(similarity="mi"))
    layer_similarity = model.eval_layer.similarity
    assert isinstance(layer_similarity, AddedChannels) and isinstance(
        layer_similarity.image_similarity, MutualInformation
    )
    assert model.with_eval_solver(similarity="lncc").eval_solver.similarity_options["image"] == "lncc"
    # a plain training similarity with AddedFeatures: the image's; the default added one with a UNet: LNCC
    assert (
        RegistrationModule(
            network=AddedFeatures(), train_solver=SolverOptions(similarity="mse", scales=[4, 2, 1])
        ).train_solver.similarity_options["image"]
        == "mse"
    )
    assert RegistrationModule(network=UNet()).train_solver.similarity == "lncc"
    with pytest.raises(ValueError, match="reads the channels of AddedFeatures"):
        RegistrationModule(network=UNet(), train_solver=trained)
