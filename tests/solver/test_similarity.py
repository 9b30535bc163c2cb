"""Similarities: minimal at alignment, gradients correct, MI registers across contrasts."""

import pytest
import torch
from helpers import mean_dice

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import SIMILARITIES, make_similarity, register
from lightning_reg.solver.energy.similarity import first_order


@pytest.mark.parametrize("name", sorted(SIMILARITIES))
def test_aligned_is_better_than_shifted(name):
    pair = warped_pair((48, 48), magnitude=0.0, seed=9)
    image = pair["moving"].clamp(0, 1)
    features = image if name == "mi" else torch.cat([image, image.pow(2), 1 - image], dim=1)
    similarity = make_similarity(name)
    aligned = similarity(features, features)
    shifted = similarity(features, torch.roll(features, shifts=3, dims=2))
    assert aligned.shape == (1,)
    assert float(aligned) < float(shifted)


@pytest.mark.parametrize("name", ["mse", "lncc", "ncc", "cosine", "mi"])
def test_gradients_match_finite_differences(name):
    torch.manual_seed(0)
    fixed = torch.rand(2, 1 if name == "mi" else 2, 6, 7, dtype=torch.float64)
    warped = torch.rand(2, 1 if name == "mi" else 2, 6, 7, dtype=torch.float64, requires_grad=True)
    options = {"window": 3} if name == "lncc" else {}
    similarity = make_similarity(name, **options)
    assert torch.autograd.gradcheck(lambda w: similarity(fixed, w), (warped,))


def test_mutual_information_registers_inverted_contrast():
    pair = warped_pair((64, 64), magnitude=2.0, seed=10)
    inverted = 1.0 - pair["moving"]
    inverted[pair["moving_seg"] == 0] = 0.0  # dark background, inverted tissue contrast
    result = register(pair["fixed"], inverted, similarity="mi", scales=(2, 1), iterations=(100, 100))
    before = mean_dice(pair["fixed_seg"], pair["moving_seg"])
    assert mean_dice(pair["fixed_seg"], result.warp_labels(pair["moving_seg"])) > before + 0.1


def test_unknown_names_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown similarity 'foo'"):
        make_similarity("foo")
    with pytest.raises(ValueError, match="bad option for similarity 'lncc'"):
        make_similarity("lncc", windw=5)
    with pytest.raises(ValueError, match="single-channel"):
        make_similarity("mi")(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))


@pytest.mark.parametrize("shape", [(2, 3, 12, 14), (1, 2, 8, 9, 7)], ids=["2d", "3d"])
def test_first_order_lncc_gradient_equals_autograds_and_finite_differences(shape):
    """The solver's hand-written LNCC gradient (flat regions included, where the variance clamps)
    against autograd of the plain formula, and against finite differences on smooth inputs."""
    generator = torch.Generator().manual_seed(0)
    fixed = torch.randn(shape, generator=generator, dtype=torch.float64)
    warped = torch.randn(shape, generator=generator, dtype=torch.float64)
    fixed[..., :4], warped[..., :5] = 1.0, 2.0
    fixed, warped = fixed.requires_grad_(True), warped.requires_grad_(True)
    weights = torch.randn(shape[0], generator=generator, dtype=torch.float64)
    lncc = make_similarity("lncc", window=5)
    expected = torch.autograd.grad((lncc(fixed, warped) * weights).sum(), [fixed, warped])
    with first_order():
        value = lncc(fixed, warped)
        got = torch.autograd.grad((value * weights).sum(), [fixed, warped])
    assert torch.allclose(value, lncc(fixed, warped), atol=1e-14)
    for a, b in zip(got, expected):  # flat windows: eps / eps ratios amplify rounding to ~1e-9 there
        assert float((a - b).abs().max()) <= 1e-6 * float(b.abs().max())
    smooth = [torch.randn(1, 2, 6, 7, generator=generator, dtype=torch.float64).requires_grad_(True) for _ in range(2)]
    with first_order():
        assert torch.autograd.gradcheck(lambda f, w: make_similarity("lncc", window=3)(f, w), smooth)


def test_first_order_lncc_reuses_the_fixed_moments_only_while_the_fixed_image_is_unchanged():
    """The solver's iterations reuse the fixed side's box moments; an edited or new fixed image
    must give the value of the plain formula, never a stale one."""
    generator = torch.Generator().manual_seed(3)
    fixed, warped = (torch.rand(1, 1, 9, 8, 7, generator=generator, dtype=torch.float64) for _ in range(2))
    warped.requires_grad_(True)
    lncc = make_similarity("lncc", window=3)
    with first_order():
        first = lncc(fixed, warped)
        fixed.mul_(2.0).add_(torch.rand(fixed.shape, generator=generator, dtype=torch.float64))
        edited = lncc(fixed, warped)
        other = fixed.flip(-1)
        new = lncc(other, warped)
    assert float(first) != pytest.approx(float(edited), abs=1e-6)
    assert float(edited) == pytest.approx(float(lncc(fixed, warped)), abs=1e-14)
    assert float(new) == pytest.approx(float(lncc(other, warped)), abs=1e-14)


def test_mutual_information_reuses_the_fixed_weights_only_while_the_fixed_image_is_unchanged():
    generator = torch.Generator().manual_seed(4)
    fixed, warped = (torch.rand(2, 1, 12, 10, generator=generator, dtype=torch.float64) for _ in range(2))
    mi = make_similarity("mi")

    def fresh(a, b):
        return make_similarity("mi")(a, b)

    first = mi(fixed, warped)
    torch.testing.assert_close(mi(fixed, warped), first)  # from the kept weights
    fixed.mul_(0.5)
    torch.testing.assert_close(mi(fixed, warped), fresh(fixed, warped))  # edited: recomputed
    other = fixed.flip(-1)
    torch.testing.assert_close(mi(other, warped), fresh(other, warped))
    leaf = fixed.clone().requires_grad_(True)  # a fixed side with a gradient is never taken from the cache
    mi(leaf, warped).sum().backward()
    assert leaf.grad is not None and bool(leaf.grad.abs().sum() > 0)


def test_first_order_lncc_refuses_a_second_derivative():
    fixed, warped = (torch.randn(1, 1, 8, 8, requires_grad=True) for _ in range(2))
    with first_order():
        value = make_similarity("lncc")(fixed, warped).sum()
    with pytest.raises(RuntimeError, match="cannot be differentiated again"):
        torch.autograd.grad(value, warped, create_graph=True)
