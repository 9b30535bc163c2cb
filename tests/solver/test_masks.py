"""Cost-function masks: a synthetic lesion in the moving image pulls an unmasked registration, and
a masked one ignores it; the masked similarities weigh only the voxels inside the masks."""

from __future__ import annotations

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import SIMILARITIES, Masks, make_similarity, register

CENTRE, LESION, MARGIN = (40, 24), 6, 9  # pixels: lesion radius, mask radius


def _lesion_pair():
    fixed = warped_pair((64, 64), magnitude=0.0, seed=1)["fixed"]
    rows, columns = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    distance = ((rows - CENTRE[0]) ** 2 + (columns - CENTRE[1]) ** 2).sqrt()
    lesion = (distance <= LESION).float()[None, None]
    moving = fixed * (1 - lesion) + lesion * float(fixed.max())  # the same anatomy, plus a bright lesion
    outside = (distance > MARGIN).float()[None, None]
    return fixed, moving, outside, distance <= 2 * LESION


def test_a_masked_registration_ignores_a_lesion_that_pulls_an_unmasked_one():
    fixed, moving, outside, near = _lesion_pair()  # the true map is the identity
    moved = {}
    for name, masks in (("unmasked", {}), ("moving", {"moving_mask": outside}), ("fixed", {"fixed_mask": outside})):
        result = register(fixed, moving, transform="greedy", similarity="lncc", iterations=[100, 50, 25], **masks)
        moved[name] = float(result.displacement_voxels()[0].norm(dim=0)[near].mean())
    assert moved["unmasked"] > 1.5  # pixels: the lesion drags the map around it
    assert moved["moving"] < 0.45 * moved["unmasked"] and moved["fixed"] < 0.3 * moved["unmasked"]


@pytest.mark.parametrize("name", sorted(SIMILARITIES))
def test_masked_similarities_weigh_only_the_voxels_inside(name):
    similarity = make_similarity(name)
    channels = 2 if similarity.multichannel else 1  # cosine compares channel vectors
    channels = 4 if name == "added" else channels  # the image, two learned channels, the gate
    fixed, warped = torch.rand(2, channels, 20, 24), torch.rand(2, channels, 20, 24)
    if name == "added":
        fixed[:, -1] = 0.5  # the gate: constant, read from the fixed side
    weights = torch.zeros(2, 1, 20, 24)
    weights[..., 5:15, 6:18] = 1
    changed = warped.clone()
    changed[..., :3, :] = torch.rand(2, channels, 3, 24)  # outside the weights, further than any window reaches
    assert torch.allclose(similarity(fixed, warped, weights), similarity(fixed, changed, weights), atol=1e-6)
    assert not torch.allclose(similarity(fixed, warped), similarity(fixed, changed), atol=1e-6)
    if name != "lncc":  # lncc's weighted windows count only the voxels inside the image at its edges
        full = similarity(fixed, warped, torch.ones(2, 1, 20, 24))
        assert torch.allclose(full, similarity(fixed, warped), atol=1e-5)  # all-ones weights: the plain value


def test_an_empty_or_misshapen_mask_is_refused():
    fixed, moving, outside, _ = _lesion_pair()
    with pytest.raises(ValueError, match="empty"):
        register(fixed, moving, iterations=1, moving_mask=torch.zeros_like(outside))
    with pytest.raises(ValueError, match="does not fit"):
        register(fixed, moving, iterations=1, fixed_mask=outside[:, :, None])
    assert Masks(outside, None).weights(torch.zeros(1, 64, 64, 2)).shape == (1, 1, 64, 64)
