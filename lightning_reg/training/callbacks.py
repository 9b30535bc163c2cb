"""Lightning callbacks: the validation picture of one pair, saved as PNG and logged to W&B; on
request, the quality-control picture of every test pair; the
final metrics of a run as JSON; a checkpoint when training is interrupted (Ctrl-C); the NIfTI files
of ``lightning-reg predict``; progress as plain lines for logs; how exact ``ift``'s backward was."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import lightning as L
import nibabel as nib
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from lightning.pytorch.loggers import WandbLogger

from ..errors import InputError
from ..evaluation.pictures import registration_panel, save_figure
from ..evaluation.quality_control import quality_figure
from ..evaluation.rows import pair_id
from ..files import strict_json
from ..files.names import file_name
from ..files.nifti import Volume, save_itk_displacement, save_volume
from ..files.output_folder import OutputFolder, write_text
from ..solver.geometry.spatial import voxel_spacing
from ..solver.loop.implicit import take_cg_reports
from .checkpoints import INTERRUPTED_FILE
from .run_folder import run_directory


class RegistrationPanel(L.Callback):
    """After each validation, draw the first validation pair: fixed, moving, warped, checkerboard,
    deformation grid and the features of every scale (PCA as RGB). Saved under
    ``<run>/panels/`` and logged to W&B as ``val/panel``."""

    def __init__(self) -> None:
        self.batch: dict | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            self.batch = {key: value[:1] for key, value in batch.items()}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if self.batch is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        batch, self.batch = self.batch, None
        with torch.no_grad():
            fixed_features, moving_features = pl_module.features(batch["fixed"], batch["moving"])
            result = pl_module(batch)
            warped = result.warp(batch["moving"])
        pyramids = [[level[0] for level in fixed_features], [level[0] for level in moving_features]]
        title = f"{pair_id(batch, 0)}  epoch {trainer.current_epoch}  step {trainer.global_step}"
        figure = registration_panel(
            batch["fixed"][0], batch["moving"][0], warped[0], result.displacement_voxels()[0], pyramids, title=title
        )
        path = save_figure(
            figure,
            run_directory(trainer)
            / "panels"
            / f"val_epoch{trainer.current_epoch:03d}_step{trainer.global_step:06d}.png",
        )
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.log_image(key="val/panel", images=[str(path)], step=trainer.global_step)


class QualityFigures(L.Callback):
    """On request, ``lightning-reg test`` draws every test pair as ``lightning-reg register`` draws
    its one (``evaluation/quality_control.py``): ``<run>/qc/<pair id>.png``. Add it with
    ``--trainer.callbacks+=lightning_reg.training.callbacks.QualityFigures``. Each batch is solved once
    more for its pictures."""

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        with torch.no_grad():
            result = pl_module(batch)
            warped = result.warp(batch["moving"]).cpu()
            displacement, jacobian = result.displacement_voxels().cpu(), result.jacobian_determinant().cpu()
            labels = None if "moving_seg" not in batch else result.warp_labels(batch["moving_seg"]).cpu()
        folder = run_directory(trainer) / "qc"
        for index in range(len(batch["fixed"])):
            affine = batch.get("fixed_affine")
            spacing = None if affine is None else tuple(voxel_spacing(affine[index].double()).tolist())
            figure = quality_figure(
                batch["fixed"][index].cpu(),
                batch["moving"][index].cpu(),
                warped[index],
                displacement[index],
                jacobian[index, 0],
                None if labels is None else labels[index],
                spacing=spacing,
                title=pair_id(batch, index),
            )
            save_figure(figure, folder / f"{file_name(pair_id(batch, index))}.png")


class ConjugateGradientLog(L.Callback):
    """After each backward through ``ift``, log what its conjugate gradient reached: the largest
    relative residual (``train/cg_relative_residual``; its tolerance is ``cg_tolerance``) and the
    iterations run, summed over the scales (``train/cg_iterations``). Nothing is logged for ``jfb``
    and ``unroll``."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        take_cg_reports()  # nothing from another model's backward (a test, a notebook) is counted

    def on_after_backward(self, trainer: L.Trainer, pl_module) -> None:
        reports = take_cg_reports()
        if reports:
            pl_module.log(
                "train/cg_relative_residual", max(report.relative_residual for report in reports), batch_size=1
            )
            pl_module.log("train/cg_iterations", float(sum(report.iterations for report in reports)), batch_size=1)


#: environment variable naming an extra file for a run's final metrics (set by ``lightning-reg sweep``)
METRICS_FILE_VARIABLE = "LIGHTNING_REG_METRICS"


class MetricsFile(L.Callback):
    """At the end of fit, validate and test, write the last logged value of every metric
    (``trainer.callback_metrics``, reduced over processes) to ``<run>/metrics.json``, and to the
    file named by ``$LIGHTNING_REG_METRICS`` when set: that is where ``lightning-reg sweep`` reads
    each run's result, as W&B's summary would be read online."""

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage == "predict" or not trainer.is_global_zero or not trainer.callback_metrics:
            return
        values = {key: float(value) for key, value in trainer.callback_metrics.items()}
        text = strict_json.dumps({"stage": stage, **values}, indent=2)
        paths = [run_directory(trainer) / "metrics.json"]
        if os.environ.get(METRICS_FILE_VARIABLE):
            paths.append(Path(os.environ[METRICS_FILE_VARIABLE]))
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C during ``fit``, save the state of that moment as ``interrupted.ckpt`` beside the
    other checkpoints (``last.ckpt`` stays the end of the last complete epoch, from which
    ``--ckpt_path last`` resumes exactly). Lightning then closes the loggers and exits; what happened
    is kept in :attr:`interrupted` for the command's one line."""

    FILENAME = INTERRUPTED_FILE
    #: after Ctrl-C in any stage: what was kept (empty when nothing was), else ``None``
    interrupted: str | None = None

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):
            return
        InterruptCheckpoint.interrupted = ""
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        folders = [getattr(callback, "dirpath", None) for callback in trainer.checkpoint_callbacks]
        given = [Path(folder) for folder in folders if folder]
        path = (given[0] if given else run_directory(trainer) / "checkpoints") / self.FILENAME
        trainer.save_checkpoint(path)
        resumes = (
            "--ckpt_path last resumes this run from its last complete epoch"
            if (path.parent / "last.ckpt").is_file()
            else "no epoch of this run was complete, so --ckpt_path last resumes it from this state"
        )
        InterruptCheckpoint.interrupted = f"the state at step {trainer.global_step} is in {path}; {resumes}"


def fixed_reference(batch: dict, index: int) -> Volume:
    """The fixed image of pair ``index`` as the reference space of the outputs: its affine when the
    batch carries ``fixed_affine``, else 1 mm voxels at the origin."""
    data = batch["fixed"][index : index + 1]
    dims = data.dim() - 2
    affine = (
        batch["fixed_affine"][index].double().cpu()
        if "fixed_affine" in batch
        else torch.eye(dims + 1, dtype=torch.float64)
    )
    return Volume(
        data=data, affine=affine, header=nib.Nifti1Header(), path=Path("fixed"), file_shape=tuple(data.shape[2:])
    )


class NiftiPredictionWriter(BasePredictionWriter):
    """For every predicted pair, into ``<run>/predictions/<pair id>/``: ``warped.nii.gz`` (moving
    image resampled to the fixed space), ``warped_seg.nii.gz`` (moving labels, when the data has
    them; warped as the model's ``eval_label_mode``), ``warp.nii.gz`` (displacement in the ITK/ANTs convention, mm).

    The pairs are written into a new folder beside ``predictions/`` that takes its place when every
    pair is done; earlier predictions there are refused unless ``overwrite`` (``predict --overwrite``).
    """

    STAGING = ".predictions.partial"

    def __init__(self, overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.overwrite = overwrite
        self.staging: Path | None = None
        self.output: OutputFolder | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self.output = OutputFolder(
            run_directory(trainer) / "predictions", self.overwrite, flag="the predictions folder"
        )
        self.output.check()  # on every process, so that all of them stop alike
        staging = self.output.folder.with_name(self.STAGING)
        if trainer.is_global_zero:
            self.output.begin("lightning-reg predict", staging)
        trainer.strategy.barrier()
        self.staging = staging

    def on_predict_end(self, trainer, pl_module) -> None:
        trainer.strategy.barrier()
        if trainer.is_global_zero and self.staging is not None and self.output is not None:
            self.output.commit(self.staging)
        self.staging = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.is_global_zero and self.staging is not None and self.output is not None:
            self.output.failed(self.staging, exception)  # removes the staging folder; Lightning re-raises
        self.staging = None

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        result = prediction
        warped = result.warp(batch["moving"])
        warped_seg = None
        if "moving_seg" in batch:
            warped_seg = result.warp_labels(batch["moving_seg"], mode=pl_module.eval_label_mode)
        displacement = result.displacement_mm()
        staging = self.staging
        assert staging is not None, "on_predict_start makes the staging folder"
        for index in range(len(warped)):
            folder = staging / file_name(pair_id(batch, index))
            if folder.exists():
                raise InputError(
                    f"two prediction pairs are named {folder.name}: give the pairs distinct names, so that "
                    f"neither replaces the other"
                )
            folder.mkdir(parents=True)
            reference = fixed_reference(batch, index)
            save_volume(warped[index], reference, folder / "warped.nii.gz")
            save_itk_displacement(displacement[index], reference, folder / "warp.nii.gz")
            if warped_seg is not None:
                save_volume(warped_seg[index], reference, folder / "warped_seg.nii.gz", kind="label")


class LogLines(ProgressBar):
    """Lightning's progress for a log file or a pipe: plain lines (no carriage returns) on stderr, the
    training steps every ``every`` steps and at each epoch's end with the bar's metrics, and one line
    per evaluation (validation, test, predict) with its pairs and seconds. The CLI uses it when stderr
    is not a terminal; on a terminal, Lightning's bar."""

    def __init__(self, every: int = 50) -> None:
        super().__init__()
        self.every = int(every)
        self._enabled = True
        self._start = time.perf_counter()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _say(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(text, file=sys.stderr, flush=True)

    def _metrics(self, trainer: L.Trainer, pl_module) -> str:
        shown = {key: value for key, value in self.get_metrics(trainer, pl_module).items() if key != "v_num"}
        return ", ".join(
            f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in shown.items()
        )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        total = self.total_train_batches
        if (batch_idx + 1) % self.every == 0 and batch_idx + 1 != total:
            self._say(
                trainer,
                f"epoch {trainer.current_epoch}: step {batch_idx + 1}/{total} "
                f"({time.perf_counter() - self._start:.0f} s): {self._metrics(trainer, pl_module)}",
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self._say(
            trainer,
            f"epoch {trainer.current_epoch}: {self.total_train_batches} steps "
            f"({time.perf_counter() - self._start:.0f} s): {self._metrics(trainer, pl_module)}",
        )

    def _evaluation_start(self, trainer: L.Trainer, pl_module) -> None:
        self._evaluation_started = time.perf_counter()

    on_validation_start = on_test_start = on_predict_start = _evaluation_start

    def _evaluation_end(self, trainer: L.Trainer, what: str, batches) -> None:
        if trainer.sanity_checking:
            return
        total = batches if isinstance(batches, (int, float)) else sum(batches)
        self._say(trainer, f"{what}: {total:g} batches ({time.perf_counter() - self._evaluation_started:.0f} s)")

    def on_validation_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.state.fn == "validate":  # during fit, the epoch's line says it
            self._evaluation_end(trainer, "validation", self.total_val_batches)

    def on_test_end(self, trainer: L.Trainer, pl_module) -> None:
        self._evaluation_end(trainer, "test", trainer.num_test_batches)

    def on_predict_end(self, trainer: L.Trainer, pl_module) -> None:
        self._evaluation_end(trainer, "predict", trainer.num_predict_batches)
