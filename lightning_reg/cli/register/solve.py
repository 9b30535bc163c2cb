"""One solve of a request: classical on the intensities, or on a ``--checkpoint`` model's features."""

from __future__ import annotations

import torch

from ...errors import InputError
from ...solver import RegistrationLayer, RegistrationResult, label_prompt, register
from ...solver.checks import level_iterations
from ..progress import Phases
from .load import Loaded
from .request import RegisterRequest


def solve(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
    """The registration of ``loaded`` as ``request`` asks, checked finite, and every setting it used."""
    result, described = (_solve_learned if request.learned else _solve_classical)(request, loaded, phases)
    _check_result(result, learned=request.learned)
    return result, described


def _check_result(result: RegistrationResult, learned: bool) -> None:
    if not bool(torch.isfinite(result.grid).all()):
        cause = (
            "the model's features are too large (a checkpoint of a diverged training run?)"
            if learned
            else "try a smaller --learning-rate or a --regularizer"
        )
        raise InputError(f"the solver diverged: its warp is not finite; {cause}")


def _prompts(request: RegisterRequest, loaded: Loaded) -> list:
    if not request.prompt_labels or loaded.fixed_seg is None or loaded.moving_seg is None:
        return []
    fixed, moving = loaded.fixed_seg.data.to(request.device), loaded.moving_seg.data.to(request.device)
    return [label_prompt(fixed, moving, list(request.prompt_labels), request.prompt_weight)]


def _solve_classical(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
    """Classical registration of the intensities; returns the result and every setting it used."""
    options = request.classical_options()
    iterations = level_iterations(options.iterations, len(options.scales or (1,)))
    described = RegistrationLayer(options).describe()
    progress = phases.solver_progress(sum(iterations) * (2 if options.linear else 1))
    device = request.device
    with phases.phase("registration", "registered"):
        result = register(
            loaded.fixed.data.to(device),
            loaded.moving.data.to(device),
            options,
            fixed_affine=loaded.fixed.affine,
            moving_affine=loaded.moving.affine,
            prompts=_prompts(request, loaded),
            callback=progress,
            **{name: None if mask is None else mask.to(device) for name, mask in loaded.masks.items()},
        )
        progress.close()
    return result, described


def _solve_learned(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
    """Registration on the features of the ``--checkpoint`` model; returns the result and every
    setting it used."""
    from .model import (  # noqa: I001 (Lightning loads slowly)
        check_model_input,
        load_model,
        model_batch,
        settings_with,
        warn_thick_slices,
    )

    with phases.phase("model", None):
        model = load_model(request.checkpoint, request.device)
    check_model_input(model, loaded.fixed)
    warn_thick_slices([loaded.fixed, loaded.moving])
    linear, transform = model.eval_solver.stages()
    settings = settings_with(
        model,
        transform=request.transform or transform,
        linear=request.init or linear or "none",
        similarity=request.similarity,
        scales=None if request.scales is None else list(request.scales),
        iterations=None if request.iterations is None else list(request.iterations),
        learning_rate=request.learning_rate,
        regularizer=request.regularizer,
        regularizer_weight=request.regularizer_weight,
        tolerance=request.tolerance,
        optimizer=request.optimizer,
        interpolation=request.interpolation,
        similarity_options={"window": request.window} if request.window else None,
        prompt_labels=list(request.prompt_labels) or None,
        prompt_weight=request.prompt_weight if request.prompt_labels else None,
        feature_channels=request.feature_channels,
    )
    described = settings.layer().describe()
    described.update(
        scales=list(settings.scales or model.network.scales),
        iterations=list(settings.iterations),
        network=type(model.network).__name__,
        feature_channels=settings.feature_channels,
    )
    batch = model_batch(loaded.fixed, loaded.moving, loaded.fixed_seg, loaded.moving_seg, request.device, loaded.masks)
    progress = phases.solver_progress(sum(settings.iterations) * (2 if settings.stages()[0] else 1))
    with torch.no_grad():
        network = type(model.network).__name__
        with phases.phase("features", f"computed the features ({network})", f"computing the features ({network}) ..."):
            features = model.features(batch["fixed"], batch["moving"])
        with phases.phase("registration", "registered"):
            result = model.solve(batch, features, settings, callback=progress)[-1]
            progress.close()
    return result, described
