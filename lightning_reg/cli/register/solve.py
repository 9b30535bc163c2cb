"""One solve of a request: one ``SolverOptions`` (a preset's, or a ``--checkpoint`` model's evaluation
options, with the flags the user gave), solved on the intensities or on the model's features."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch

from ...errors import InputError
from ...solver import RegistrationLayer, RegistrationResult, SolverOptions, register
from ...solver.checks import level_iterations
from ..progress import Phases
from .load import Loaded
from .request import RegisterRequest


def solve(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
    """The registration of ``loaded`` as ``request`` asks, checked finite, and every setting it used."""
    model = _model(request, loaded, phases) if request.learned else None
    options = _options(request, model)
    described = RegistrationLayer(options).describe()
    levels = len(options.scales or (model.network.scales if model is not None else (1,)))
    progress = phases.solver_progress(sum(level_iterations(options.iterations, levels)) * (2 if options.linear else 1))
    if model is None:
        result = _solve_on_images(options, request, loaded, phases, progress)
    else:
        described.update(scales=list(options.scales or model.network.scales), network=type(model.network).__name__)
        with torch.no_grad():
            result = _solve_on_features(model, options, request, loaded, phases, progress)
    progress.close()
    _check_result(result, learned=model is not None)
    return result, described


def _solve_on_images(options: SolverOptions, request: RegisterRequest, loaded: Loaded, phases: Phases, progress):
    """Classical registration of the intensities."""
    device = request.device
    labels = [None if seg is None else seg.data.to(device) for seg in (loaded.fixed_seg, loaded.moving_seg)]
    with phases.phase("registration", "registered"):
        return register(
            loaded.fixed.data.to(device),
            loaded.moving.data.to(device),
            options,
            fixed_affine=loaded.fixed.affine,
            moving_affine=loaded.moving.affine,
            prompts=options.label_prompts(*labels),
            callback=progress,
            **{name: None if mask is None else mask.to(device) for name, mask in loaded.masks.items()},
        )


def _model(request: RegisterRequest, loaded: Loaded, phases: Phases):
    """The ``--checkpoint`` model, checked against the images."""
    from .model import check_model_input, load_model, warn_thick_slices  # Lightning loads slowly

    with phases.phase("model", None):
        model = load_model(cast(Path, request.checkpoint), request.device)  # a learned request has one
    check_model_input(model, loaded.fixed)
    warn_thick_slices([loaded.fixed, loaded.moving])
    return model


def _options(request: RegisterRequest, model) -> SolverOptions:
    """The one ``SolverOptions`` of the request: the preset's or the model's, with the user's flags."""
    if model is None:
        return request.classical_options()
    from ...training.network_solver import changed_for, check_levels

    try:
        options = changed_for(model.network, model.eval_solver, request.changes(model.eval_solver))
        check_levels(options, model.network.scales)
    except (TypeError, ValueError) as error:
        raise InputError(str(error)) from None
    return options


def _solve_on_features(model, options: SolverOptions, request, loaded: Loaded, phases: Phases, progress):
    """The model's features of the pair, then the solve on them."""
    from .model import model_batch

    batch = model_batch(loaded.fixed, loaded.moving, loaded.fixed_seg, loaded.moving_seg, request.device, loaded.masks)
    network = type(model.network).__name__
    with phases.phase("features", f"computed the features ({network})", f"computing the features ({network}) ..."):
        features = model.features(batch["fixed"], batch["moving"])
    with phases.phase("registration", "registered"):
        return model.solve(batch, features, options, callback=progress)[-1]


def _check_result(result: RegistrationResult, learned: bool) -> None:
    if not bool(torch.isfinite(result.grid).all()):
        cause = (
            "the model's features are too large (a checkpoint of a diverged training run?)"
            if learned
            else "try a smaller --learning-rate or a --regularizer"
        )
        raise InputError(f"the solver diverged: its warp is not finite; {cause}")
