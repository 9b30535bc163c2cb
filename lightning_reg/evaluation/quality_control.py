"""A picture of one registration to check by eye (``qc.png`` beside ``lightning-reg register``'s
outputs): fixed, moving and warped images, the warped labels' outlines on the fixed image, a
checkerboard of fixed and warped, the deformed grid and the Jacobian determinant (blue below 1,
red above, 0 to 2; folding, where it is not positive, in black);
three orthogonal middle slices of a 3D pair (one row for 2D).

Slices are shown with the first in-plane voxel axis to the right and the second up (for RAS images:
axial, coronal and sagittal views in neurological convention). Built without pyplot, so it works
headless and never touches a notebook's backend.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .pictures import checkerboard

#: the panels of each row, left to right
PANELS = ("fixed", "moving", "warped", "labels on fixed", "checkerboard", "deformation", "Jacobian determinant")
#: inches per panel, and the figure's resolution
PANEL_INCHES, DPI = 2.2, 100
#: grid lines every this many voxels of a slice's longer side / 16
GRID_LINES = 16


def slices(volume: torch.Tensor) -> list[np.ndarray]:
    """``[*S]`` -> its middle slice along each axis of a 3D volume (axis 2, 1, 0: axial, coronal,
    sagittal for RAS), or the 2D image itself; each ``[first in-plane axis, second]``."""
    array = volume.detach().cpu().float().numpy()
    if array.ndim == 2:
        return [array]
    return [np.take(array, array.shape[axis] // 2, axis=axis) for axis in (2, 1, 0)]


def _aspects(spacing: tuple[float, ...] | None, dims: int) -> list[float]:
    """Per view of :func:`slices`, its second in-plane voxel size over its first."""
    if spacing is None:
        return [1.0] * (1 if dims == 2 else 3)
    if dims == 2:
        return [spacing[1] / spacing[0]]
    return [spacing[b] / spacing[a] for a, b in ((0, 1), (0, 2), (1, 2))]


def _in_plane(displacement: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Displacement ``[d, *S]`` (voxels, array order) -> per view, its two in-plane components."""
    if displacement.shape[0] == 2:
        first, second = slices(displacement[0]), slices(displacement[1])
        return [(first[0], second[0])]
    components = [slices(displacement[axis]) for axis in range(3)]
    planes = [(0, 1), (0, 2), (1, 2)]  # the axes left in each view of :func:`slices`
    return [(components[a][view], components[b][view]) for view, (a, b) in enumerate(planes)]


def _scaled(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, (1, 99))
    return np.clip((image - low) / max(high - low, 1e-8), 0, 1)


def _show(axis, image: np.ndarray, aspect: float = 1.0, **options) -> None:
    """``image`` ``[first axis, second axis]``, the first to the right; ``aspect``: the second axis'
    voxel size over the first's."""
    axis.imshow(image.T, origin="lower", interpolation="nearest", aspect=aspect, **options)


def _outlines(labels: np.ndarray) -> np.ma.MaskedArray:
    """The label values on the boundaries between labels (elsewhere masked)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    return np.ma.masked_where(~edge | (labels == 0), labels % 20)


def _grid(axis, first: np.ndarray, second: np.ndarray, aspect: float = 1.0) -> None:
    """The fixed grid's lines moved by the in-plane displacement (voxels)."""
    rows, columns = np.meshgrid(np.arange(first.shape[0]), np.arange(first.shape[1]), indexing="ij")
    x, y = rows + first, columns + second
    every = max(max(first.shape) // GRID_LINES, 1)
    for index in range(0, first.shape[0], every):
        axis.plot(x[index], y[index], color="tab:orange", linewidth=0.5)
    for index in range(0, first.shape[1], every):
        axis.plot(x[:, index], y[:, index], color="tab:orange", linewidth=0.5)
    axis.set_xlim(-0.5, first.shape[0] - 0.5)
    axis.set_ylim(-0.5, first.shape[1] - 0.5)
    axis.set_aspect(aspect)


def quality_figure(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    warped: torch.Tensor,
    displacement: torch.Tensor,
    jacobian: torch.Tensor,
    warped_seg: torch.Tensor | None = None,
    spacing: tuple[float, ...] | None = None,
    title: str = "",
) -> Figure:
    """The figure of one registered pair.

    Args:
        fixed: ``[C, *S]`` (the first channel is shown), 2D or 3D.
        moving: ``[C, *S_moving]``, on its own grid.
        warped: ``[C, *S]``, the moving image on the fixed grid.
        displacement: ``[d, *S]`` in fixed voxels (array order).
        jacobian: ``[*S]``, the map's Jacobian determinant (folding where it is not positive).
        warped_seg: ``[1, *S]`` warped label map, outlined on the fixed image (``None``: no labels).
        spacing: the fixed voxel sizes (mm, array order), so slices keep their proportions
            (``None``: square voxels; the moving image is shown on its own grid, as square voxels).
        title: the figure's title.
    """
    images = [slices(volume[0]) for volume in (fixed, moving, warped)]
    labels = None if warped_seg is None else slices(warped_seg[0].round())
    determinants = slices(jacobian)
    fields = _in_plane(displacement)
    rows = len(images[0])
    aspects = _aspects(spacing, fixed.dim() - 1)
    figure = Figure(figsize=(PANEL_INCHES * len(PANELS), PANEL_INCHES * rows + 0.4), dpi=DPI)
    axes = figure.subplots(rows, len(PANELS), squeeze=False)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=1 - 0.5 / (PANEL_INCHES * rows + 0.4), wspace=0.04)
    folding = float((jacobian <= 0).float().mean()) * 100
    for row in range(rows):
        fixed_view, moving_view, warped_view = (_scaled(image[row]) for image in images)
        panels, aspect = axes[row], aspects[row]
        _show(panels[0], fixed_view, aspect, cmap="gray")
        _show(panels[1], moving_view, cmap="gray")
        _show(panels[2], warped_view, aspect, cmap="gray")
        _show(panels[3], fixed_view, aspect, cmap="gray")
        if labels is not None:
            _show(panels[3], _outlines(labels[row].astype(np.int64)), aspect, cmap="tab20")
        board = checkerboard(torch.from_numpy(fixed_view), torch.from_numpy(warped_view)).numpy()
        _show(panels[4], board, aspect, cmap="gray")
        _show(panels[5], warped_view, aspect, cmap="gray", alpha=0.4)
        _grid(panels[5], *fields[row], aspect)
        determinant = determinants[row]
        _show(panels[6], determinant, aspect, cmap="coolwarm", vmin=0.0, vmax=2.0)
        folded = np.ma.masked_where(determinant > 0, np.ones_like(determinant))
        _show(panels[6], folded, aspect, cmap="Greys", vmin=0, vmax=1)
        for axis in panels:
            axis.set_xticks([])
            axis.set_yticks([])
    for axis, name in zip(axes[0], PANELS):
        extra = f" ({folding:.3g} % folding, black)" if name == "Jacobian determinant" else ""
        extra = " (none given)" if name == "labels on fixed" and labels is None else extra
        axis.set_title(name + extra, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9, y=0.999)
    return figure
