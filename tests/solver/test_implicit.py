"""The implicit layer: gradients of the solver's optimum against the unrolled reference and finite
differences, every transform in every backward mode, learning through the layer, bad input."""

import pytest
import torch
import torch.nn.functional as F

from lightning_reg.data.synthetic import smooth_noise, warped_pair
from lightning_reg.solver import RegistrationLayer, interpolation, label_prompt
from lightning_reg.solver.geometry.interpolation import linear_sample
from lightning_reg.solver.geometry.spatial import apply_matrix, identity_grid, sample

DENSE = dict(smooth_grad_sigma=0, smooth_warp_sigma=0)


def _cosine(first: torch.Tensor, second: torch.Tensor) -> float:
    return float(F.cosine_similarity(first.flatten(), second.flatten(), dim=0))


def _feature_gradients(layer, fixed, moving, loss_of):
    """Gradient of ``loss_of(result)`` with respect to both (one-level) pyramids, concatenated."""
    fixed, moving = fixed.clone().requires_grad_(True), moving.clone().requires_grad_(True)
    result = layer([fixed], [moving])[-1]
    loss_of(result).backward()
    return torch.cat([fixed.grad.flatten(), moving.grad.flatten()]), result


def _convex_problem(shape):
    """MSE + diffusion on two-channel features of a label-image pair; the loss is the image mismatch."""
    pair = warped_pair(shape, magnitude=1.0, seed=3, smoothness=3.0)
    fixed = torch.cat([pair["fixed"], pair["fixed"] ** 2], 1)
    moving = torch.cat([pair["moving"], pair["moving"] ** 2], 1)

    def loss_of(result):
        return (pair["fixed"] - sample(pair["moving"], result.grid)).pow(2).mean()

    return fixed, moving, loss_of


def _layer(transform="freeform", backward="ift", iterations=600, **options):
    settings = dict(
        optimizer="gd",
        tolerance=0,
        damping=1e-6,
        cg_iterations=300,
        cg_tolerance=1e-7,
        regularizer="diffusion",
        regularizer_weight=0.2,
    )
    settings.update(options)
    transform_options = DENSE if transform in ("freeform", "greedy", "svf") else {}
    return RegistrationLayer(
        transform, "mse", iterations=[iterations], backward=backward, transform_options=transform_options, **settings
    )


@pytest.mark.parametrize("shape", [(16, 16), (8, 8, 8)])
def test_ift_agrees_with_unroll_and_jfb_is_a_descent_direction(shape):
    fixed, moving, loss_of = _convex_problem(shape)
    gradients, results = {}, {}
    for mode in ("unroll", "ift", "jfb"):
        # cubic: a twice differentiable energy, whose minimum both derivatives describe
        layer = _layer(backward=mode, interpolation="cubic")
        gradients[mode], results[mode] = _feature_gradients(layer, fixed, moving, loss_of)
    trace = results["ift"].loss_trace[0]
    assert float(trace[-11] - trace[-1]) < 1e-3 * float(trace[-1])  # converged: flat over 10 steps
    assert _cosine(gradients["ift"], gradients["unroll"]) >= 0.95
    assert _cosine(gradients["jfb"], gradients["unroll"]) >= 0.5
    assert 0.5 < float(gradients["ift"].norm() / gradients["unroll"].norm()) < 2.0


def test_ift_matches_central_finite_differences_of_the_total_derivative():
    torch.set_default_dtype(torch.float64)
    try:
        generator = torch.Generator().manual_seed(0)
        shape = (12, 12)
        moving = smooth_noise(shape, 2, 3.0, generator)
        matrix = torch.eye(3)
        matrix[:2, :2] += 0.05 * torch.randn(2, 2, generator=generator)
        matrix[:2, 2] = 0.05
        fixed = sample(moving, apply_matrix(matrix[None], identity_grid(shape, dtype=torch.float64)))
        weights = torch.randn(1, *shape, 2, generator=generator)
        layer = RegistrationLayer(
            "affine", "mse", iterations=[500], backward="ift", optimizer="gd", tolerance=0, damping=0.0
        )

        def loss(fixed_features, moving_features):
            return (layer([fixed_features], [moving_features])[-1].grid * weights).sum()

        analytic, _ = _feature_gradients(layer, fixed, moving, lambda r: (r.grid * weights).sum())
        step = 1e-4
        for _ in range(2):
            direction = torch.randn(analytic.shape, generator=generator)
            along_fixed = direction[: fixed.numel()].view_as(fixed)
            along_moving = direction[fixed.numel() :].view_as(moving)
            with torch.no_grad():
                difference = (
                    loss(fixed + step * along_fixed, moving + step * along_moving)
                    - loss(fixed - step * along_fixed, moving - step * along_moving)
                ) / (2 * step)
            assert float(analytic @ direction) == pytest.approx(float(difference), rel=0.02)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("transform", ["rigid", "affine", "freeform", "greedy", "svf", "bspline", "syn"])
def test_every_transform_in_every_mode(transform):
    fixed, moving, loss_of = _convex_problem((16, 16))
    results, gradients = {}, {}
    for mode in ("unroll", "ift", "jfb"):
        gradients[mode], results[mode] = _feature_gradients(_layer(transform, mode, 300), fixed, moving, loss_of)
        assert torch.isfinite(gradients[mode]).all()
        half = fixed.numel()
        assert gradients[mode][:half].abs().sum() > 0 and gradients[mode][half:].abs().sum() > 0
    # the forward answer does not depend on the backward mode
    assert torch.allclose(results["ift"].grid, results["jfb"].grid)
    assert torch.allclose(results["ift"].grid, results["unroll"].grid, atol=1e-5)
    # syn's free midpoint (test_exactness.py) is where 300 gd steps are furthest from the minimum that
    # ift describes, so unroll differs more (measured 0.82, also after 1000 steps); ift is exact there
    assert _cosine(gradients["ift"], gradients["unroll"]) >= (0.8 if transform == "syn" else 0.9)


def test_multilevel_pyramids_of_any_size_get_gradients_at_every_level():
    generator = torch.Generator().manual_seed(1)
    shapes = [(7, 9), (13, 17), (26, 33)]
    fixed = [smooth_noise(shape, 3, 3.0, generator).requires_grad_(True) for shape in shapes]
    moving = [smooth_noise(shape, 3, 3.0, generator).requires_grad_(True) for shape in shapes]
    layer = RegistrationLayer("greedy", "lncc", iterations=(20, 10, 5), backward="jfb")
    results = layer(fixed, moving)
    assert [r.fixed_shape for r in results] == shapes
    image = torch.rand(1, 1, 26, 33, requires_grad=True)
    loss = sum(r.resized((26, 33)).warp(image).pow(2).mean() for r in results)
    loss.backward()
    for level in fixed + moving:
        assert level.grad is not None and level.grad.abs().sum() > 0
    assert image.grad.abs().sum() > 0  # the warped image's gradient reaches the image itself


def test_one_level_with_several_scales_builds_the_pyramid():
    pair = warped_pair((40, 36), magnitude=2.0, seed=5)
    layer = RegistrationLayer("greedy", "lncc", scales=(4, 2, 1), iterations=(50, 30, 10))
    with torch.no_grad():
        results = layer([pair["fixed"]], [pair["moving"]])
    assert [r.fixed_shape for r in results] == [(10, 9), (20, 18), (40, 36)]
    assert results[-1].loss_trace[0][-1].item() < results[-1].loss_trace[0][0].item()


def test_resized_linear_warp_equals_the_warp_computed_at_that_size():
    pair = warped_pair((20, 24), magnitude=1.0, seed=2)
    layer = RegistrationLayer("affine", "mse", scales=(2,), iterations=[20])
    with torch.no_grad():
        coarse = layer([pair["fixed"]], [pair["moving"]])[-1]
    fine = coarse.resized((20, 24))
    expected = apply_matrix(coarse.matrix, identity_grid((20, 24)))
    assert torch.allclose(fine.grid, expected, atol=1e-5)
    assert torch.allclose(fine.jacobian_determinant(), coarse.jacobian_determinant().mean(), atol=1e-4)


def test_prompt_term_pulls_the_prompted_structure_into_place():
    pair = warped_pair((40, 40), magnitude=3.0, num_labels=4, seed=7)
    prompt = label_prompt(pair["fixed_seg"], pair["moving_seg"], [2], weight=1.0)
    structure = (pair["fixed_seg"] == 2).float()

    blank = torch.zeros_like(pair["fixed"])  # features that carry no information: only the prompt acts

    def overlap(prompts):
        layer = RegistrationLayer("greedy", "mse", iterations=[60])
        with torch.no_grad():
            result = layer([blank], [blank], prompts=prompts)[-1]
        warped = result.warp((pair["moving_seg"] == 2).float())
        return float(2 * (warped * structure).sum() / (warped.sum() + structure.sum()))

    assert overlap([prompt]) > overlap([]) + 0.05


def test_a_feature_network_learns_through_the_layer():
    torch.manual_seed(0)
    pairs = []
    for seed in range(4):
        pair = warped_pair((32, 32), magnitude=2.0, num_labels=4, seed=seed)
        generator = torch.Generator().manual_seed(100 + seed)
        noisy = [pair[key] + 0.5 * torch.randn(pair[key].shape, generator=generator) for key in ("fixed", "moving")]
        one_hot = [F.one_hot(pair[key][:, 0], 5).movedim(-1, 1).float() for key in ("fixed_seg", "moving_seg")]
        pairs.append((*noisy, *one_hot))
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 4, 3, padding=1)
    )
    layer = RegistrationLayer("freeform", "mse", iterations=[40], backward="jfb", tolerance=0)

    def label_loss(fixed, moving, fixed_seg, moving_seg):
        warped = layer([network(fixed)], [network(moving)])[-1].warp(moving_seg)
        dice = 2 * (warped * fixed_seg).flatten(2).sum(2) / (warped + fixed_seg).flatten(2).sum(2)
        return 1 - dice[:, 1:].mean()

    def mean_loss():
        with torch.no_grad():
            return sum(float(label_loss(*pair)) for pair in pairs) / len(pairs)

    frozen = mean_loss()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    for step in range(40):
        loss = label_loss(*pairs[step % len(pairs)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert mean_loss() < frozen - 0.02


@pytest.mark.parametrize(
    "fixed, moving, message",
    [
        ([torch.rand(1, 2, 8, 8), torch.rand(1, 2, 16, 16)], [torch.rand(1, 2, 16, 16)], "levels"),
        ([torch.rand(1, 2, 8, 8)], [torch.rand(1, 3, 8, 8)], "channels"),
        (
            [torch.rand(1, 2, 16, 16), torch.rand(1, 2, 8, 8)],
            [torch.rand(1, 2, 16, 16), torch.rand(1, 2, 8, 8)],
            "coarse to fine",
        ),
        ([torch.full((1, 2, 8, 8), float("nan"))], [torch.rand(1, 2, 8, 8)], "NaN"),
        ([torch.rand(1, 2, 8, 8)], [torch.rand(1, 2, 8, 8, 8)], "dimensionality"),
        (torch.rand(1, 2, 8, 8), [torch.rand(1, 2, 8, 8)], "list of tensors"),
    ],
)
def test_bad_pyramids_get_clear_errors(fixed, moving, message):
    layer = RegistrationLayer("greedy", "mse", iterations=5)
    with pytest.raises((ValueError, TypeError), match=message):
        layer(fixed, moving)


def test_bad_settings_get_clear_errors():
    with pytest.raises(ValueError, match="backward mode"):
        RegistrationLayer(backward="newton")
    with pytest.raises(ValueError, match="unknown transform"):
        RegistrationLayer(transform="demons")
    with pytest.raises(ValueError, match="coarse to fine"):
        RegistrationLayer(scales=(1, 2))
    with pytest.raises(ValueError, match="one iteration count"):
        RegistrationLayer(iterations=(10, 10))([torch.rand(1, 1, 8, 8)], [torch.rand(1, 1, 8, 8)])
    with pytest.raises(ValueError, match="do not occur"):
        label_prompt(torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.ones(1, 1, 4, 4, dtype=torch.long), [1])


@pytest.mark.parametrize("shape", [(5, 7), (4, 5, 6)])
@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_own_sampler_matches_grid_sample_and_is_twice_differentiable(shape, padding):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, *shape, dtype=torch.float64, generator=generator)
    grid = (
        torch.rand(2, 4, 3, *([2] * (len(shape) - 2)), len(shape), dtype=torch.float64, generator=generator) * 2.6 - 1.3
    )  # some points outside the image
    expected = F.grid_sample(image, grid, padding_mode=padding, align_corners=True)
    assert torch.allclose(linear_sample(image, grid, padding), expected, atol=1e-12)
    inputs = (image[:1, :1].clone().requires_grad_(), (grid[:1] * 0.6).requires_grad_())
    assert torch.autograd.gradgradcheck(lambda i, g: linear_sample(i, g, padding), inputs)


def test_layer_falls_back_to_own_sampler_with_the_same_gradients(monkeypatch):
    fixed, moving, loss_of = _convex_problem((12, 12))
    expected, _ = _feature_gradients(_layer(backward="ift", iterations=100), fixed, moving, loss_of)
    monkeypatch.setitem(interpolation._TWICE_DIFFERENTIABLE, "cpu", False)
    fallback, _ = _feature_gradients(_layer(backward="ift", iterations=100), fixed, moving, loss_of)
    assert torch.allclose(fallback, expected, rtol=1e-3, atol=1e-6 * float(expected.abs().max()))


def _adam_layer(backward, **backward_options):
    return RegistrationLayer(
        "freeform", "mse", iterations=[12], backward=backward, transform_options=DENSE, tolerance=0, **backward_options
    )


def test_truncated_backprop_is_unroll_when_it_keeps_every_step_and_differs_when_it_keeps_fewer():
    fixed, moving, loss_of = _convex_problem((16, 16))
    unrolled, reference = _feature_gradients(_adam_layer("unroll"), fixed, moving, loss_of)
    whole, result = _feature_gradients(_adam_layer("truncated", truncated_steps=12), fixed, moving, loss_of)
    assert torch.equal(result.grid, reference.grid)  # the forward answer is the same
    torch.testing.assert_close(whole, unrolled)
    last, result = _feature_gradients(_adam_layer("truncated", truncated_steps=3), fixed, moving, loss_of)
    torch.testing.assert_close(result.grid, reference.grid)  # to rounding: Adam's in-place moments before
    assert bool(torch.isfinite(last).all()) and not torch.allclose(last, unrolled)
    # its direction lowers the loss: a small step of the features against it
    layer = _adam_layer("truncated", truncated_steps=3)
    half = fixed.numel()
    with torch.no_grad():
        before = float(loss_of(layer([fixed], [moving])[-1]))
        step = 1e-2 / float(last.abs().max())
        after = float(
            loss_of(
                layer([fixed - step * last[:half].view_as(fixed)], [moving - step * last[half:].view_as(moving)])[-1]
            )
        )
    assert after < before


def test_damped_phantom_steps_are_the_plain_steps_at_damping_one_and_shrink_the_gradient_below():
    fixed, moving, loss_of = _convex_problem((16, 16))
    plain, _ = _feature_gradients(_adam_layer("jfb", jfb_steps=1), fixed, moving, loss_of)
    undamped, _ = _feature_gradients(_adam_layer("jfb", jfb_steps=1, phantom_damping=1.0), fixed, moving, loss_of)
    torch.testing.assert_close(plain, undamped)
    # one damped step from the solution is the plain step times the damping
    half, _ = _feature_gradients(_adam_layer("jfb", jfb_steps=1, phantom_damping=0.5), fixed, moving, loss_of)
    torch.testing.assert_close(half, 0.5 * plain)
    five, _ = _feature_gradients(_adam_layer("jfb", jfb_steps=5, phantom_damping=0.5), fixed, moving, loss_of)
    assert _cosine(five, plain) > 0.5 and not torch.allclose(five, plain)
    with pytest.raises(ValueError, match="phantom_damping"):
        _adam_layer("jfb", phantom_damping=0)
    with pytest.raises(ValueError, match="optimizer adam"):
        fixed_features = fixed.clone().requires_grad_(True)
        RegistrationLayer("freeform", "mse", iterations=[3], backward="truncated", optimizer="gd")(
            [fixed_features], [moving]
        )
