"""What ``lightning-reg register`` is asked to do, as one typed object (``RegisterRequest``), and the
checks of its option combinations that need no file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping

from ...errors import InputError
from ...solver import PRESETS, SolverOptions
from ...solver.checks import check_number
from ...solver.result import LABEL_MODE, LabelMode

#: the solver options with a flag of their own name (``--transform``, ``--prompt-labels``, ...)
SOLVER_FLAGS: tuple[str, ...] = ("transform", "similarity", "scales", "iterations", "tolerance", "optimizer")
SOLVER_FLAGS += ("interpolation", "regularizer", "regularizer_weight", "feature_channels", "prompt_labels")
SOLVER_FLAGS += ("prompt_weight",)

#: what becomes of the inverse warp (``--inverse-warp``), and which metrics are measured (``--metrics``)
InverseWarp = Literal["write", "converged", "skip"]
MetricsSet = Literal["all", "quick"]


@dataclass(frozen=True)
class RegisterRequest:
    """One registration of two files: the command's options (``lightning-reg register --help``).

    ``solver`` holds the solver options the user gave, by ``SolverOptions`` field name; they change
    the options of ``preset`` (classical) or the model's evaluation options (``checkpoint``).
    """

    fixed: Path
    moving: Path
    out: Path
    fixed_seg: Path | None = None
    moving_seg: Path | None = None
    fixed_mask: Path | None = None
    moving_mask: Path | None = None
    fixed_landmarks: Path | None = None
    moving_landmarks: Path | None = None
    checkpoint: Path | None = None
    preset: Literal["default", "fast"] = "default"
    solver: Mapping[str, Any] = field(default_factory=dict)
    label_mode: LabelMode = LABEL_MODE
    inverse_warp: InverseWarp = "write"
    metrics: MetricsSet = "all"
    device: Any = "cpu"
    threads: int | None = None
    max_voxels: int | None = None
    ignore_header: bool = False
    overwrite: bool = False
    quiet: bool = False
    no_qc: bool = False
    command_line: tuple[str, ...] = field(default=("lightning-reg", "register"))

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> RegisterRequest:
        """The request of the parsed command line (``build_parser``: solver flags left out are absent)."""
        given = vars(args)
        own = {item.name: given[item.name] for item in fields(cls) if given.get(item.name) is not None}
        own["solver"] = solver_changes(given)
        if "command_line" in own:
            own["command_line"] = tuple(own["command_line"])
        return cls(**own)

    @property
    def learned(self) -> bool:
        """Whether a trained model registers (``--checkpoint``) rather than the classical solver."""
        return self.checkpoint is not None

    @property
    def input_files(self) -> dict[str, Path]:
        """Every input file given, by its option's name."""
        names: tuple[str, ...] = ("fixed", "moving", "fixed_seg", "moving_seg", "fixed_mask", "moving_mask")
        names += ("fixed_landmarks", "moving_landmarks")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def changes(self, base: SolverOptions) -> dict[str, Any]:
        """The user's solver options as changes of ``base``: a new ``--transform`` keeps ``base``'s
        linear stage unless ``--init`` says otherwise."""
        changes = dict(self.solver)
        if "transform" in changes and "linear" not in changes:
            changes["linear"] = base.linear
        return changes

    def classical_options(self) -> SolverOptions:
        """The options of classical registration: the preset's with the ones given (ValueError if they
        cannot be solved with)."""
        preset = PRESETS[self.preset]
        return preset.changed(**self.changes(preset))

    def check(self) -> None:
        """InputError for what can be told before reading an image: option combinations and (without
        a checkpoint) the solver's options, by building them."""
        check_number("--prompt-weight", self.solver.get("prompt_weight", 1.0), 0)
        if (self.fixed_seg is None) != (self.moving_seg is None):
            raise InputError("give both --fixed-seg and --moving-seg, or neither")
        if (self.fixed_landmarks is None) != (self.moving_landmarks is None):
            raise InputError("give both --fixed-landmarks and --moving-landmarks, or neither")
        if self.solver.get("prompt_labels") and self.fixed_seg is None:
            raise InputError("--prompt-labels needs the label maps of both images: give --fixed-seg and --moving-seg")
        if "feature_channels" in self.solver and not self.learned:
            raise InputError(
                "--feature-channels reduces a --checkpoint model's features; classical registration "
                "solves on the image itself"
            )
        if self.learned and self.preset != "default":
            raise InputError(
                f"--preset {self.preset} sets the classical solver's iterations; a --checkpoint model has its "
                f"own (give --iterations to change them)"
            )
        regularizer = self.solver.get("regularizer")
        if regularizer is not None and "regularizer_weight" not in self.solver and not self.learned:
            raise InputError(f"--regularizer {regularizer} needs its weight: give --regularizer-weight W (e.g. 0.1)")
        if not self.learned:
            try:
                self.classical_options()
            except (TypeError, ValueError) as error:
                raise InputError(str(error)) from None


def solver_changes(given: Mapping[str, Any]) -> dict[str, Any]:
    """The solver options among the parsed flags ``given``, by ``SolverOptions`` field name."""
    changes = {name: given[name] for name in SOLVER_FLAGS if name in given}
    for name in ("scales", "iterations", "prompt_labels"):
        if name in changes:
            changes[name] = tuple(changes[name])
    if "init" in given:
        changes["linear"] = given["init"]
    if "learning_rate" in given:
        changes["transform_options"] = {"learning_rate": given["learning_rate"]}
    if "window" in given:
        changes["similarity_options"] = {"window": given["window"]}
    return changes
