"""When the solver stops: a line search that only goes downhill, per-pair stops on stationarity,
no stop while the energy still falls on average, a warning where the Hessian is singular and an
error instead of a silently zero gradient."""

import warnings

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import CLASSICAL, Adam, RegistrationLayer, SingularHessianWarning, register
from lightning_reg.solver.loop.implicit import (
    CG_ITERATIONS_PER_SIDE,
    ConjugateGradientWarning,
    cg_cap,
    conjugate_gradient,
)
from lightning_reg.solver.loop.optimize import keeps_going

PAIR = warped_pair((32, 32), magnitude=2.0, seed=3)
PROBLEM = dict(similarity="mse", regularizer="diffusion", regularizer_weight=0.1)


def _solve(optimizer, iterations=100, tolerance=0.0, fixed=PAIR["fixed"], moving=PAIR["moving"], **options):
    layer = RegistrationLayer(
        "freeform", iterations=iterations, optimizer=optimizer, tolerance=tolerance, **PROBLEM, **options
    )
    with torch.no_grad():
        return layer([fixed], [moving])[-1]


@pytest.mark.parametrize("optimizer", ["lbfgs", "gd"])
def test_line_search_optimizers_never_let_the_energy_rise(optimizer):
    trace = _solve(optimizer, 80).loss_trace[0][:, 0]
    assert (trace[1:] <= trace[:-1]).all()
    assert float(trace[-1]) < 0.5 * float(trace[0])


def test_lbfgs_stops_a_pair_at_the_tolerance_and_reaches_a_stationary_point_where_adam_does_not():
    result = _solve("lbfgs", 500, tolerance=1e-3)
    assert result.loss_trace[0].shape[0] < 500 and float(result.stationarity) <= 1e-3
    converged = _solve("lbfgs", 500)
    adam = _solve("adam", 500, interpolation="cubic")  # the same energy
    # Adam's bounded steps circle at a gradient norm of about 9% of the start; L-BFGS stops at a minimum
    # (not always Adam's basin: on this single-level problem Adam's long steps find a lower one)
    assert float(converged.stationarity) < 0.01 * float(adam.stationarity)


def test_pairs_stop_on_their_own_and_a_batch_gives_each_pair_its_own_answer():
    other = warped_pair((32, 32), magnitude=0.5, seed=5)
    fixed, moving = torch.cat([PAIR["fixed"], other["fixed"]]), torch.cat([PAIR["moving"], other["moving"]])
    batched = _solve("lbfgs", 200, tolerance=1e-3, fixed=fixed, moving=moving)
    for index, (one_fixed, one_moving) in enumerate(
        [(PAIR["fixed"], PAIR["moving"]), (other["fixed"], other["moving"])]
    ):
        alone = _solve("lbfgs", 200, tolerance=1e-3, fixed=one_fixed, moving=one_moving)
        assert torch.allclose(batched.grid[index : index + 1], alone.grid, atol=1e-4)
        assert float(batched.stationarity[index]) <= 1e-3


def test_no_stop_while_the_energy_falls_on_average():
    patience = 10
    steps = torch.arange(60, dtype=torch.float64)
    falling = 1.0 / (1 + 0.05 * steps) + 0.02 * (-1) ** steps  # Adam-like: rises every other step
    gradient = [torch.ones(1, 4)]
    trace = [value.view(1) for value in falling]
    for end in range(2 * patience, 61):
        assert bool(keeps_going(trace[:end], gradient, torch.ones(1), 1e-6, patience))
    flat = [torch.tensor([1.0 + 0.02 * (-1) ** n + 1e-3 * (n >= 30)]) for n in range(40)]  # settled, then up
    assert not bool(keeps_going(flat, gradient, torch.ones(1), 1e-6, patience))
    assert not bool(keeps_going(trace[:5], [torch.full((1, 4), 1e-7)], torch.ones(1), 1e-6, patience))


def test_adams_default_stop_does_not_end_a_pair_far_from_its_energy():
    """The case that started issue 16: the old rule stopped after 20 of 300 iterations at 3.1x the energy."""
    kept = _solve("adam", 300, tolerance=CLASSICAL.tolerance, patience=CLASSICAL.patience)
    full = _solve("adam", 300)
    assert float(kept.loss_trace[0][-1]) <= 1.05 * float(full.loss_trace[0][-1])


def test_singular_hessian_warns():
    """Stripes along one axis: a translation along them changes nothing (the aperture problem)."""
    x = torch.linspace(0, 6.28, 24)
    stripes = torch.sin(x).view(1, 1, 1, 24).expand(1, 1, 24, 24).contiguous()
    shifted = torch.sin(x + 0.3).view(1, 1, 1, 24).expand(1, 1, 24, 24).contiguous()
    layer = RegistrationLayer("rigid", "mse", iterations=[50], backward="ift", optimizer="lbfgs")
    fixed, moving = stripes.clone().requires_grad_(True), shifted.clone().requires_grad_(True)
    result = layer([fixed], [moving])[-1]
    with pytest.warns(SingularHessianWarning, match="regularizer"):
        result.grid.sum().backward()
    assert torch.isfinite(fixed.grad).all()


def test_an_all_zero_implicit_gradient_is_an_error(monkeypatch):
    monkeypatch.setattr(Adam, "pair_scales", lambda self: [torch.zeros(1, 1, 1, 1)])
    layer = RegistrationLayer("freeform", "mse", iterations=[5], backward="jfb")
    fixed, moving = PAIR["fixed"].clone().requires_grad_(True), PAIR["moving"].clone().requires_grad_(True)
    result = layer([fixed], [moving])[-1]
    with pytest.raises(RuntimeError, match="all-zero gradient"):
        result.grid.sum().backward()


def test_register_takes_the_line_search_optimizers_under_inference_mode():
    with torch.inference_mode():
        result = register(
            PAIR["fixed"],
            PAIR["moving"],
            transform="svf",
            similarity="mse",
            scales=(2, 1),
            iterations=(30, 20),
            optimizer="lbfgs",
            regularizer="diffusion",
            regularizer_weight=0.1,
        )
    before = float((PAIR["fixed"] - PAIR["moving"]).pow(2).mean())
    after = float((PAIR["fixed"] - result.warp(PAIR["moving"])).pow(2).mean())
    assert after < 0.5 * before and 0 < float(result.stationarity) < 1


def test_conjugate_gradient_on_negative_curvature_returns_the_scaled_gradient_step_and_warns():
    """Along ``rhs`` the curvature is -3: CG cannot take a step, so it returns ``rhs / 3``, not zero."""
    matrix = torch.tensor([[-3.0, 1.0], [1.0, 1.0]])
    rhs = [torch.tensor([[1.0, 0.0]])]
    with pytest.warns(SingularHessianWarning):
        (solution,) = conjugate_gradient(lambda v: [v[0] @ matrix], rhs, damping=0.0, iterations=10, tolerance=1e-8)
    assert torch.allclose(solution, torch.tensor([[1 / 3, 0.0]]))


def test_conjugate_gradient_warns_when_its_cap_ends_it_far_from_the_tolerance():
    matrix = torch.diag(torch.logspace(0, 4, 40, dtype=torch.float64))  # condition 1e4: 2 iterations are too few
    rhs = [torch.ones(1, 40, dtype=torch.float64)]
    with pytest.warns(ConjugateGradientWarning, match="cap of 2 iterations"):
        conjugate_gradient(lambda v: [v[0] @ matrix], rhs, damping=0.0, iterations=2, tolerance=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConjugateGradientWarning)
        (solution,) = conjugate_gradient(lambda v: [v[0] @ matrix], rhs, damping=0.0, iterations=400, tolerance=1e-6)
    assert torch.allclose(solution @ matrix, rhs[0], rtol=1e-4)


def test_the_default_cap_of_conjugate_gradient_grows_with_the_grid():
    field = [torch.zeros(1, 3, 8, 8, 8)]
    assert cg_cap(field, None) == CG_ITERATIONS_PER_SIDE * 8
    assert cg_cap([torch.zeros(1, 3, 64, 64, 64)], None) == CG_ITERATIONS_PER_SIDE * 64
    assert cg_cap([torch.zeros(1, 2, 2, 2)], None) == 8  # never more than the unknowns
    assert cg_cap(field, 7) == 7
