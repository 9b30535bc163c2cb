"""``SolverOptions``: one typed home for every solver option. Its choices are the registries', its
docstring documents every field, it refuses what it cannot solve with, and the calls of 0.2 still
mean what they meant."""

import dataclasses
from typing import get_args

import pytest
import torch

from lightning_reg.solver import CLASSICAL, LEARNED, LINEAR, TRANSFORMS, BackwardSettings, RegistrationLayer, register
from lightning_reg.solver.options import CHOICES, PlanName, SolverOptions, choices, option_help


@pytest.mark.parametrize("option", sorted(CHOICES))
def test_the_typed_choices_are_the_registries(option):
    kind, registry = CHOICES[option]
    assert choices(option) == tuple(registry)


def test_the_plan_names_are_every_linear_then_deformable_pair():
    deformable = [name for name in TRANSFORMS if name not in LINEAR]
    assert set(get_args(PlanName)) == {f"{linear}+{name}" for linear in LINEAR for name in deformable}


def test_every_field_is_documented_once():
    for item in dataclasses.fields(SolverOptions):
        assert len(option_help(item.name)) > 10, item.name
    with pytest.raises(KeyError, match="no option 'window'"):
        option_help("window")


def test_options_are_frozen_and_changed_by_copy():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CLASSICAL.iterations = (1,)
    fewer = CLASSICAL.changed(iterations=[5, 3, 1])
    assert fewer.iterations == (5, 3, 1) and CLASSICAL.iterations == (200, 100, 50)
    assert fewer.transform == CLASSICAL.transform and fewer.scales == (4.0, 2.0, 1.0)


def test_a_plan_is_read_as_a_linear_stage_and_a_transform():
    options = SolverOptions(transform="affine+svf")
    assert (options.linear, options.transform, options.plan) == ("affine", "svf", "affine+svf")
    assert options == SolverOptions(linear="affine", transform="svf")
    assert options.changed(transform="greedy").linear is None  # a new transform: the old plan is gone
    assert options.changed(iterations=3).linear == "affine"
    with pytest.raises(ValueError, match="disagree"):
        SolverOptions(transform="affine+svf", linear="rigid")
    with pytest.raises(ValueError, match="combine one linear transform"):
        SolverOptions(transform="svf+affine")
    with pytest.raises(ValueError, match="'affine' is linear"):
        SolverOptions(linear="rigid", transform="affine")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transform": "elastic"}, "unknown transform 'elastic'; choose one of rigid, affine"),
        ({"similarity": "nmi"}, "unknown similarity 'nmi'"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; choose one of adam, lbfgs, gd"),
        ({"interpolation": "nearest"}, "unknown interpolation 'nearest'; choose one of linear, cubic"),
        ({"regularizer": "elastic"}, "unknown regularizer 'elastic'; choose one of diffusion, bending"),
        ({"linear": "similarity"}, "unknown linear 'similarity'; choose one of rigid, affine"),
        ({"tolerance": float("nan")}, "tolerance must be a finite number"),
        ({"regularizer_weight": -1.0}, "regularizer_weight must be >= 0"),
        ({"scales": (1, 2)}, "coarse to fine"),
        ({"scales": (4, 2, 1), "iterations": (10, 5)}, "one iteration count"),
        ({"iterations": (10, -1)}, "one iteration count"),
        ({"transform_options": {"sigma": 1.0}}, "bad option for transform 'freeform'"),
        ({"similarity_options": {"radius": 3}}, "radius"),
        ({"backward": "implicit"}, "unknown backward mode 'implicit'; choose one of jfb, ift, unroll"),
        ({"cg_iterations": 0}, "cg_iterations must be a whole number >= 1"),
        ({"damping": -1e-3}, "damping must be >= 0"),
    ],
)
def test_what_cannot_be_solved_is_refused_when_the_options_are_made(changes, message):
    with pytest.raises(ValueError, match=message):
        LEARNED.changed(**changes)


def test_an_unknown_option_name_says_which_exist():
    with pytest.raises(TypeError, match=r"unknown solver option\(s\) iteration; known: .*iterations"):
        LEARNED.changed(iteration=3)
    with pytest.raises(TypeError, match="unknown solver option"):
        register(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), iteration=3)


def test_backward_settings_are_given_whole_or_by_their_old_flat_names():
    flat = LEARNED.changed(backward="ift", cg_tolerance=1e-8, damping=1e-4)
    assert flat.backward == BackwardSettings(mode="ift", cg_tolerance=1e-8, damping=1e-4)
    assert RegistrationLayer(backward="ift", cg_tolerance=1e-8, damping=1e-4).settings == flat.backward
    assert LEARNED.changed(backward=flat.backward).backward is flat.backward


def test_the_calls_of_0_2_mean_what_they_meant():
    positional = RegistrationLayer("greedy", "mse", (2, 1), (3, 3), tolerance=1e-3)
    named = RegistrationLayer(transform="greedy", similarity="mse", scales=(2, 1), iterations=(3, 3), tolerance=1e-3)
    whole = RegistrationLayer(
        SolverOptions("greedy", similarity="mse", scales=(2, 1), iterations=(3, 3), tolerance=1e-3)
    )
    assert positional.options == named.options == whole.options
    with pytest.raises(TypeError, match="given twice"):
        RegistrationLayer("greedy", transform="svf")
    with pytest.raises(TypeError, match="at most 4 positional"):
        RegistrationLayer("greedy", "mse", (1,), (1,), "jfb")


def test_register_solves_with_the_options_it_is_given():
    """The same registration from options, from changes to the defaults, and from 0.2's positional call."""
    fixed, moving = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    options = CLASSICAL.changed(transform="affine", similarity="mse", scales=(2, 1), iterations=(5, 5))
    results = [
        register(fixed, moving, options),
        register(fixed, moving, transform="affine", similarity="mse", scales=(2, 1), iterations=(5, 5)),
        register(fixed, moving, "affine", "mse", (2, 1), (5, 5)),
    ]
    assert all(torch.equal(result.grid, results[0].grid) for result in results)
