"""Similarities: minimal at alignment, gradients correct, MI registers across contrasts."""
import pytest
import torch
from helpers import mean_dice

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import SIMILARITIES, make_similarity, register


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
