"""The files of one registration: ANTs transforms, the composed warp, the warped image and labels, qc.png."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from ...files.ants import save_ants_transforms
from ...files.nifti import save_itk_displacement, save_volume
from ...solver import RegistrationResult
from ...solver.geometry.inverse import InverseField
from ...solver.geometry.spatial import voxel_spacing
from .load import Loaded


def write_outputs(
    folder: Path,
    result: RegistrationResult,
    inverse: InverseField | None,
    loaded: Loaded,
    warped: torch.Tensor,
    warped_seg: torch.Tensor | None,
) -> None:
    """The ANTs transforms (with ``inverse`` when given), the composed warp, the warped image ``[C, *S]``
    and labels."""
    fixed = loaded.fixed
    displacement = result.displacement_mm()[0]
    # gzip releases the GIL: the files compress side by side (1.3 s -> 0.7 s for a 2 mm brain, 2 threads)
    with ThreadPoolExecutor(max_workers=max(torch.get_num_threads(), 1)) as pool:
        tasks: list[Future] = [
            pool.submit(save_ants_transforms, result, inverse, fixed, folder),
            pool.submit(save_itk_displacement, displacement, fixed, folder / "warp.nii.gz"),
            pool.submit(save_volume, warped, fixed, folder / "warped.nii.gz"),
        ]
        if warped_seg is not None:
            tasks.append(pool.submit(save_volume, warped_seg[0], fixed, folder / "warped_seg.nii.gz", kind="label"))
        for task in tasks:
            task.result()  # a failed write raises here, as it would have in turn


def write_quality_figure(
    path: Path, result: RegistrationResult, loaded: Loaded, warped: torch.Tensor, warped_seg: torch.Tensor | None
) -> None:
    """``qc.png``: the registration to check by eye (``evaluation/quality_control.py``); ``warped``
    ``[C, *S]``."""
    from ...evaluation.pictures import save_figure  # matplotlib takes 0.45 s to import: only qc.png pays it
    from ...evaluation.quality_control import quality_figure

    figure = quality_figure(
        loaded.fixed.data[0],
        loaded.moving.data[0],
        warped.cpu(),
        result.displacement_voxels()[0].cpu(),
        result.jacobian_determinant()[0, 0].cpu(),
        None if warped_seg is None else warped_seg[0],
        spacing=tuple(voxel_spacing(loaded.fixed.affine).tolist()),
        title=f"{loaded.moving.path.name} -> {loaded.fixed.path.name}",
    )
    save_figure(figure, path)
