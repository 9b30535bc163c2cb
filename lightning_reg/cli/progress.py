"""What a long command says while it works: one line per phase with its seconds, and the solver's
progress: a tqdm bar on a terminal, plain lines (one per scale) when stderr is a file or a pipe, where
a bar's carriage returns would pile up in a log."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

import torch
from tqdm import tqdm


def _on_terminal() -> bool:
    return sys.stderr.isatty()


class Phases:
    """Times the phases of one command (:attr:`seconds`, for its result file) and, unless ``quiet``,
    says each on stderr as it ends: ``<program>: <what> (<seconds> s)``."""

    def __init__(self, program: str, quiet: bool = False) -> None:
        self.program, self.quiet = program, quiet
        self.seconds: dict[str, float] = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"{self.program}: {text}", file=sys.stderr, flush=True)

    @contextmanager
    def phase(self, name: str, what: str | None, starting: str | None = None) -> Iterator[None]:
        """Time the block as phase ``name`` (a key of :attr:`seconds`), said as ``what`` when it ends
        (``None``: a quick step, timed but not said) and as ``starting`` when it starts (for a step that
        shows no progress of its own)."""
        if starting:
            self.say(starting)
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if what is not None:
            self.say(f"{what} ({seconds:.1f} s)")

    def solver_progress(self, total: int) -> "SolverProgress":
        return SolverProgress(total, self)


class SolverProgress:
    """The solver's ``callback(scale_index, iteration, energies)``: a bar on a terminal, else one line
    per scale when it ends (its iterations and mean energy). :meth:`close` ends the last scale."""

    def __init__(self, total: int, phases: Phases) -> None:
        self.phases = phases
        self.bar = (
            tqdm(total=total, unit="it", dynamic_ncols=True, file=sys.stderr)
            if not phases.quiet and _on_terminal()
            else None
        )
        self.scale: int | None = None
        self.iterations = 0
        self.energy = float("nan")
        self.start = time.perf_counter()

    def __call__(self, scale_index: int, iteration: int, energies: torch.Tensor) -> None:
        if self.scale is not None and scale_index != self.scale:
            self._scale_done()
        self.scale, self.iterations, self.energy = scale_index, self.iterations + 1, float(energies.mean())
        if self.bar is not None:
            self.bar.set_postfix(scale=scale_index, energy=f"{self.energy:.5f}", refresh=False)
            self.bar.update(1)

    def _scale_done(self) -> None:
        if self.bar is None:
            self.phases.say(
                f"  level {(self.scale or 0) + 1}: {self.iterations} iterations, energy {self.energy:.5f} "
                f"({time.perf_counter() - self.start:.1f} s)"
            )
        self.iterations, self.start = 0, time.perf_counter()

    def close(self) -> None:
        if self.scale is not None:
            self._scale_done()
        if self.bar is not None:
            self.bar.total = self.bar.n  # pairs may stop early: end the bar where the solver ended
            self.bar.close()
