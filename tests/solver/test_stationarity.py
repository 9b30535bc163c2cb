"""Every result says how close the solver came to a minimum: ``stationarity``, the gradient norm at
the returned parameters over its norm where the scale started."""

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import RegistrationLayer, register
from lightning_reg.solver.energy.objective import Objective
from lightning_reg.solver.energy.regularizers import get_regularizer
from lightning_reg.solver.energy.similarity import make_similarity

PAIR = warped_pair((24, 24), magnitude=1.5, seed=3)
PROBLEM = dict(
    similarity="mse",
    regularizer="diffusion",
    regularizer_weight=0.1,
    transform_options=dict(smooth_grad_sigma=0, smooth_warp_sigma=0),
)


def _solve(iterations, optimizer="gd", batch=1):  # gd: cubic interpolation by default
    layer = RegistrationLayer("freeform", iterations=iterations, optimizer=optimizer, **PROBLEM)
    fixed, moving = PAIR["fixed"].repeat(batch, 1, 1, 1), PAIR["moving"].repeat(batch, 1, 1, 1)
    with torch.no_grad():
        return layer([fixed], [moving])[-1]


def _gradient_norm(result) -> float:
    """The energy's gradient at the result's parameters, computed here from scratch."""
    field = result.transform.field.detach().clone().requires_grad_(True)
    transform = result.transform
    transform.set_parameters([field])
    objective = Objective(make_similarity("mse"), get_regularizer("diffusion", 0.1), 0.1, interpolation="cubic")
    energy = objective(transform, PAIR["fixed"], PAIR["moving"]).sum()
    (gradient,) = torch.autograd.grad(energy, [field])
    return float(gradient.double().norm())


def test_stationarity_is_the_gradient_norm_ratio_and_falls_as_the_solver_converges():
    start = _solve(0)
    assert torch.equal(start.stationarity, torch.ones(1, dtype=torch.float64))
    initial = _gradient_norm(start)
    values = []
    for iterations in (10, 100, 1000):
        result = _solve(iterations)
        assert result.stationarity.shape == (1,) and result.stationarity.dtype == torch.float64
        assert float(result.stationarity) == pytest.approx(_gradient_norm(result) / initial, rel=1e-4)
        values.append(float(result.stationarity))
    assert values[0] > values[1] > values[2]


def test_stationarity_is_per_pair_and_follows_the_result():
    batched = _solve(50, optimizer="adam", batch=2)
    assert batched.stationarity.shape == (2,)
    assert torch.allclose(batched.stationarity[0], batched.stationarity[1])
    assert torch.equal(batched.pair(1).stationarity, batched.stationarity[1:])
    result = register(PAIR["fixed"], PAIR["moving"], scales=(2, 1), iterations=(20, 20))
    assert result.stationarity.shape == (1,) and 0 < float(result.stationarity) < 1
