"""Diffusion and bending energies: hand values, and their effect on a registration."""

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import register
from lightning_reg.solver.energy.regularizers import bending, diffusion


def test_energies_of_linear_and_quadratic_fields():
    rows = torch.arange(20.0).view(1, 1, 20, 1).expand(1, 1, 20, 20)
    linear = torch.cat([0.3 * rows, torch.zeros_like(rows)], dim=1)  # du0/drow = 0.3
    assert float(diffusion(linear)) == pytest.approx(0.3**2 / 4)  # one of 2 components x 2 axes
    assert float(bending(linear)) == pytest.approx(0.0, abs=1e-10)
    quadratic = torch.cat([0.5 * rows**2, torch.zeros_like(rows)], dim=1)
    interior = bending(quadratic[..., 3:-3, :])  # second derivative 1 away from the edges
    assert float(interior) > 0


@pytest.mark.parametrize("name", ["diffusion", "bending"])
def test_weighted_penalty_gives_smoother_warp(name):
    pair = warped_pair((48, 48), magnitude=2.0, seed=12)
    options = dict(
        transform="freeform",
        scales=(2, 1),
        iterations=(60, 60),
        transform_options={"smooth_warp_sigma": 0.0, "smooth_grad_sigma": 0.0},
    )
    free = register(pair["fixed"], pair["moving"], **options)
    penalised = register(pair["fixed"], pair["moving"], regularizer=name, regularizer_weight=1.0, **options)
    penalty = diffusion if name == "diffusion" else bending
    assert float(penalty(penalised.displacement_voxels())) < 0.5 * float(penalty(free.displacement_voxels()))
