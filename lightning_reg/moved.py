"""Modules that moved when the package was regrouped (0.1 -> 0.2; files and evaluation in 0.3; the
solver's geometry, energy and loop rooms and the register command's package in 0.4),
importable under their old names so that configs, sweep files and run folders written before keep working
(``lightning_reg.module.RegistrationModule``, ``lightning_reg.checkpoints.AtomicCheckpointIO``, ...).

Python has no alias for a module path; a finder on ``sys.meta_path`` that hands out the new module
for the old name is the smallest thing that does it (the module is the same object, not a copy).
Each old path warns once per process (``DeprecationWarning``) with its new path and the release that
removes it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: the release without the old paths (they keep working one minor version after their move)
REMOVED_IN = {"0.2": "0.4", "0.3": "0.5", "0.4": "0.6"}
#: old module path (relative to the package) -> (where it lives now, the release that moved it)
MOVED = {
    **{
        old: (new, "0.2")
        for old, new in {
            "module": "training.module",
            "settings": "training.solver_settings",
            "losses": "training.losses",
            "callbacks": "training.callbacks",
            "prediction": "training.callbacks",
            "runs": "training.run_folder",
            "demo": "training.demo",
            "checkpoints": "training.checkpoints",
            "distributed": "evaluation.rows",
            "trainer_cli": "cli.lightning",
            "register_cli": "cli.register",
            "learned": "cli.register_model",
            "sweep_cli": "cli.sweep",
            "sweep_summary": "sweep.summary",
            "data.datamodule": "data.synthetic_datamodule",
            "data.files": "data.file_datamodule",
            "data.pairs": "data.datasets",
        }.items()
    },
    **{
        old: (new, "0.3")
        for old, new in {
            "io": "files.nifti",
            "transform_files": "files.ants",
            "landmarks": "files.landmarks",
            "output_files": "files.output_folder",
            "apply": "files.apply_transforms",
            "metrics": "evaluation.metrics",
            "viz": "evaluation.pictures",
            "solver.inversion": "solver.invert_field",
            "data.brains.build": "anatomy.build",
            "data.brains.sources": "anatomy.sources",
            "data.brains.tissue": "anatomy.tissue",
            "data.brains.mni": "anatomy.mni",
        }.items()
    },
    **{
        old: (new, "0.4")
        for old, new in {
            "solver.spatial": "solver.geometry.spatial",
            "solver.interpolation": "solver.geometry.interpolation",
            "solver.filters": "solver.geometry.filters",
            "solver.frames": "solver.geometry.frames",
            "solver.labels": "solver.geometry.labels",
            "solver.invert_field": "solver.geometry.invert_field",
            "solver.pyramid": "solver.geometry.pyramid",
            "solver.transforms": "solver.geometry.transforms",
            "solver.inverse": "solver.geometry.inverse",
            "solver.similarity": "solver.energy.similarity",
            "solver.regularizers": "solver.energy.regularizers",
            "solver.objective": "solver.energy.objective",
            "solver.optimize": "solver.loop.optimize",
            "solver.optimizers": "solver.loop.optimizers",
            "solver.implicit": "solver.loop.implicit",
            "cli.register_request": "cli.register.request",
            "cli.register_model": "cli.register.model",
            "cli.register_report": "cli.register.report",
            "data.oasis": "data.oasis_datamodule",
            "data.abcd": "data.abcd_datamodule",
            "data.manifest": "data.pairs_datamodule",
        }.items()
    },
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, package: str) -> None:
        self.targets = {f"{package}.{old}": (f"{package}.{new}", moved) for old, (new, moved) in MOVED.items()}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.targets:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new, moved = self.targets[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new} in {moved}; import it from there "
            f"(the old path is removed in {REMOVED_IN[moved]})",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The new module is already executed."""


def install(package: str) -> None:
    """Make the old module paths of ``package`` importable (once)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias(package))
