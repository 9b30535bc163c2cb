"""0.3's solver settings read as :class:`SolverOptions`: ``SolverSettings(...)``, ``EvalSolverSettings(...)``
and their keys in configs and checkpoints (``learning_rate``, ``smooth_grad_sigma``, ``smooth_warp_sigma``,
``backward_options``) keep working until 0.6, with a warning that names the new spelling (a
``FutureWarning`` for a config's keys, which the user of a command wrote).

In 0.4 ``SolverOptions`` is the one options type: ``train_solver`` is one, ``eval_solver`` the changes
applied to it (:meth:`SolverOptions.changed`).
"""

from __future__ import annotations

import warnings
from dataclasses import fields
from typing import Any, Mapping

from ..moved import REMOVED_IN
from ..solver import TRANSFORMS, SolverOptions, stages

#: 0.3's keys that moved, and their 0.4 spelling
MOVED_KEYS = {
    "learning_rate": "transform_options: {learning_rate: ...}",
    "smooth_grad_sigma": "transform_options: {smooth_grad_sigma: ...}",
    "smooth_warp_sigma": "transform_options: {smooth_warp_sigma: ...}",
    "backward_options": "backward: {mode: ..., cg_tolerance: ...} (the settings beside the mode)",
}
#: what the warning for 0.3's keys says (a regular expression that matches it)
OLD_SPELLING = ".*the 0.3 spelling is read until"
#: the names every option of ``SolverOptions`` and the 0.3 keys above go by
KNOWN_KEYS = {item.name for item in fields(SolverOptions)} | set(MOVED_KEYS)


def current_keys(settings: Mapping[str, Any], changes: bool = False) -> tuple[dict[str, Any], list[str]]:
    """``settings`` (``SolverOptions`` fields, or 0.3's keys) in 0.4's spelling, and the 0.3 keys it
    had. 0.3 wrote every field, ``null`` for "as in training" in its evaluation settings: with
    ``changes`` and 0.3 keys present, the ``null`` ones are dropped."""
    unknown = sorted(set(settings) - KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"unknown solver option(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS - set(MOVED_KEYS)))}"
        )
    old = [key for key in MOVED_KEYS if key in settings]
    current = dict(settings)
    if changes and old:
        current = {key: value for key, value in current.items() if value is not None}
    moved = {key: current.pop(key, None) for key in MOVED_KEYS}
    backward = current.get("backward")
    if moved["backward_options"]:
        mode = backward if isinstance(backward, str) else "jfb"
        current["backward"] = {"mode": mode, **moved["backward_options"]}
    transform = current.get("transform", None if changes else SolverOptions.transform)
    name = stages(transform)[1] if isinstance(transform, str) else getattr(transform, "name", None)
    kind = None if name is None else TRANSFORMS.get(name)  # None: the training transform's, unknown here
    steps = {
        key: moved[key]
        for key in ("learning_rate", "smooth_grad_sigma", "smooth_warp_sigma")
        if moved[key] is not None
        if kind is None or (kind.deformable and (key == "learning_rate" or kind.smoothed))
    }
    if steps:
        current["transform_options"] = {**steps, **(current.get("transform_options") or {})}
    if old and not changes and kind is not None and not kind.deformable:  # 0.3 dropped them for a linear map
        current.update(regularizer=None, regularizer_weight=0.0)
    return current, old


def warn_old_keys(owner: str, old: list[str], stacklevel: int = 3) -> None:
    """The deprecation warning for 0.3 keys ``old`` of ``owner`` (``train_solver``, ``eval_solver``)."""
    if old:
        spelled = "; ".join(f"{owner}.{key}: write {MOVED_KEYS[key]}" for key in old)
        warnings.warn(
            f"{spelled} (the 0.3 spelling is read until {REMOVED_IN['0.4']})",
            FutureWarning,  # shown to the user of a command, as a config's keys are theirs
            stacklevel=stacklevel,
        )


def as_solver_options(
    given: SolverOptions | Mapping[str, Any], base: SolverOptions | None = None, owner: str = "train_solver"
) -> SolverOptions:
    """``given`` as ``SolverOptions``; a mapping (from a config or a checkpoint; 0.3 keys read with a
    warning) changes ``base`` (default: ``SolverOptions()``). ValueError naming ``owner`` for what is
    not an option."""
    if isinstance(given, SolverOptions):
        return given
    try:
        current, old = current_keys(given)
        options = SolverOptions(**current) if base is None else base.changed(**current)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{owner}: {error}") from None
    warn_old_keys(owner, old, stacklevel=4)
    return options


def as_changes(given: Mapping[str, Any] | None, owner: str = "eval_solver") -> dict[str, Any]:
    """Changes of the options (field names) from a config or a checkpoint, 0.3 keys read with a warning."""
    if not given:
        return {}
    try:
        current, old = current_keys(given, changes=True)
    except ValueError as error:
        raise ValueError(f"{owner}: {error}") from None
    warn_old_keys(owner, old, stacklevel=4)
    return current


def SolverSettings(**settings: Any) -> SolverOptions:  # noqa: N802 (0.3's class name)
    """Deprecated since 0.4, removed in 0.6: ``SolverOptions(...)`` (0.3's keys read as in a config)."""
    warnings.warn(
        "SolverSettings is SolverOptions since 0.4 (lightning_reg.solver.SolverOptions; SolverSettings is "
        f"removed in {REMOVED_IN['0.4']})",
        DeprecationWarning,
        stacklevel=2,
    )
    return as_solver_options(settings)


def EvalSolverSettings(**settings: Any) -> dict[str, Any]:  # noqa: N802 (0.3's class name)
    """Deprecated since 0.4, removed in 0.6: evaluation options are a dict of changes
    (``eval_solver={"transform": "svf"}``); fields left ``None`` are as in training, as in 0.3."""
    warnings.warn(
        "EvalSolverSettings is a dict of changes to the training options since 0.4 (eval_solver={'transform': "
        f"'svf'}}; removed in {REMOVED_IN['0.4']})",
        DeprecationWarning,
        stacklevel=2,
    )
    return as_changes({key: value for key, value in settings.items() if value is not None})


def upgraded_hyperparameters(hparams: dict) -> dict:
    """A checkpoint's hyperparameters with 0.3's solver keys in 0.4's spelling (no warning: the user
    wrote none of them)."""
    upgraded = dict(hparams)
    for key, changes in (("train_solver", False), ("eval_solver", True)):
        if isinstance(upgraded.get(key), Mapping):
            upgraded[key] = current_keys(upgraded[key], changes=changes)[0]
    return upgraded
