"""``lightning-reg predict`` output: NIfTI files per pair in the fixed image's space."""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from .io import Volume, save_itk_displacement, save_volume
from .output_files import OutputFolder
from .runs import run_directory


def fixed_reference(batch: dict, index: int) -> Volume:
    """The fixed image of pair ``index`` as the reference space of the outputs: its affine when the
    batch carries ``fixed_affine``, else 1 mm voxels at the origin."""
    data = batch["fixed"][index:index + 1]
    dims = data.dim() - 2
    affine = batch["fixed_affine"][index].double().cpu() if "fixed_affine" in batch else \
        torch.eye(dims + 1, dtype=torch.float64)
    return Volume(data=data, affine=affine, header=nib.Nifti1Header(), path=Path("fixed"),
                  file_shape=tuple(data.shape[2:]))


class NiftiPredictionWriter(BasePredictionWriter):
    """For every predicted pair, into ``<run>/predictions/<pair id>/``: ``warped.nii.gz`` (moving
    image resampled to the fixed space), ``warped_seg.nii.gz`` (moving labels, when the data has
    them; linear one-hot warping), ``warp.nii.gz`` (displacement in the ITK/ANTs convention, mm).

    The pairs are written into a new folder beside ``predictions/`` that takes its place when every
    pair is done; earlier predictions there are refused unless ``overwrite`` (``predict --overwrite``).
    """

    STAGING = ".predictions.partial"

    def __init__(self, overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.overwrite = overwrite
        self.staging: Path | None = None

    def _output(self, trainer) -> OutputFolder:
        return OutputFolder(run_directory(trainer) / "predictions", self.overwrite, flag="the predictions folder")

    def on_predict_start(self, trainer, pl_module) -> None:
        output = self._output(trainer)
        output.check()  # on every process, so that all of them stop alike
        staging = output.folder.with_name(self.STAGING)
        if trainer.is_global_zero:
            output.begin("lightning-reg predict", staging)
        trainer.strategy.barrier()
        self.staging = staging

    def on_predict_end(self, trainer, pl_module) -> None:
        trainer.strategy.barrier()
        if trainer.is_global_zero and self.staging is not None:
            self._output(trainer).commit(self.staging)
        self.staging = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.is_global_zero and self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging = None

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        result = prediction
        warped = result.warp(batch["moving"])
        warped_seg = result.warp_labels(batch["moving_seg"], mode="linear") if "moving_seg" in batch else None
        displacement = result.displacement_mm()
        ids = batch.get("id") or [str(index) for index in range(len(warped))]
        for index, pair_id in enumerate(ids):
            folder = self.staging / str(pair_id)
            folder.mkdir(parents=True, exist_ok=True)
            reference = fixed_reference(batch, index)
            save_volume(warped[index], reference, folder / "warped.nii.gz")
            save_itk_displacement(displacement[index], reference, folder / "warp.nii.gz")
            if warped_seg is not None:
                save_volume(warped_seg[index], reference, folder / "warped_seg.nii.gz", kind="label")
