"""What ``lightning-reg register`` is asked to do, as one typed object (``RegisterRequest``), and the
checks of its option combinations that need no file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...solver import PRESETS, SolverOptions
from ...solver.checks import check_number


@dataclass(frozen=True)
class RegisterRequest:
    """One registration of two files: the command's options (``lightning-reg register --help``).

    The solver's options are kept as the user gave them (``None``: not given), because a classical
    registration fills them from ``preset`` and a model's from its own evaluation settings.
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
    transform: str | None = None
    similarity: str | None = None
    scales: tuple[float, ...] | None = None
    iterations: tuple[int, ...] | None = None
    preset: str = "default"
    init: str | None = None
    learning_rate: float | None = None
    window: int | None = None
    feature_channels: int | None = None
    regularizer: str | None = None
    regularizer_weight: float | None = None
    tolerance: float | None = None
    optimizer: str | None = None
    interpolation: str | None = None
    prompt_labels: tuple[int, ...] = ()
    prompt_weight: float = 1.0
    label_mode: str = "linear"
    inverse_warp: str = "write"
    metrics: str = "all"
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
        """The request of the parsed command line (``build_parser``)."""
        given = {
            item.name: getattr(args, item.name) for item in fields(cls) if getattr(args, item.name, None) is not None
        }
        for name in ("scales", "iterations", "prompt_labels", "command_line"):
            if name in given:
                given[name] = tuple(given[name])
        return cls(**given)

    @property
    def learned(self) -> bool:
        """Whether a trained model registers (``--checkpoint``) rather than the classical solver."""
        return self.checkpoint is not None

    @property
    def input_files(self) -> dict[str, Path]:
        """Every input file given, by its option's name."""
        names = ("fixed", "moving", "fixed_seg", "moving_seg", "fixed_mask", "moving_mask")
        names += ("fixed_landmarks", "moving_landmarks")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def classical_options(self) -> SolverOptions:
        """The options of classical registration: the ones given, else the preset's (ValueError if
        they cannot be solved with)."""
        given = {
            "transform": self.transform,
            "similarity": self.similarity,
            "scales": self.scales,
            "iterations": self.iterations,
            "tolerance": self.tolerance,
            "optimizer": self.optimizer,
            "interpolation": self.interpolation,
        }
        changes: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        if self.init is not None:
            changes["linear"] = None if self.init == "none" else self.init
        preset = PRESETS[self.preset]
        similarity = changes.get("similarity", preset.similarity)
        return preset.changed(
            **changes,
            regularizer=None if self.regularizer in (None, "none") else self.regularizer,
            regularizer_weight=self.regularizer_weight or 0.0,
            transform_options={} if self.learning_rate is None else {"learning_rate": self.learning_rate},
            similarity_options={"window": self.window} if self.window and similarity == "lncc" else {},
        )

    def check(self) -> None:
        """InputError for what can be told before reading an image: option combinations and (without
        a checkpoint) the solver's options, by building them."""
        check_number("--prompt-weight", self.prompt_weight, 0)
        if (self.fixed_seg is None) != (self.moving_seg is None):
            raise InputError("give both --fixed-seg and --moving-seg, or neither")
        if (self.fixed_landmarks is None) != (self.moving_landmarks is None):
            raise InputError("give both --fixed-landmarks and --moving-landmarks, or neither")
        if self.prompt_labels and self.fixed_seg is None:
            raise InputError("--prompt-labels needs the label maps of both images: give --fixed-seg and --moving-seg")
        if self.feature_channels is not None and not self.learned:
            raise InputError(
                "--feature-channels reduces a --checkpoint model's features; classical registration "
                "solves on the image itself"
            )
        if self.learned and self.preset != "default":
            raise InputError(
                f"--preset {self.preset} sets the classical solver's iterations; a --checkpoint model has its "
                f"own (give --iterations to change them)"
            )
        if self.regularizer not in (None, "none") and self.regularizer_weight is None and not self.learned:
            raise InputError(
                f"--regularizer {self.regularizer} needs its weight: give --regularizer-weight W (e.g. 0.1)"
            )
        if not self.learned:
            self.classical_options()
