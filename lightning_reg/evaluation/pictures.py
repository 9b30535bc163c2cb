"""Pictures of one registered pair: images, checkerboard, deformation grid, and the learned features
of each scale as RGB (their first three principal components). 3D volumes show their middle slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ..files.output_folder import atomic_path

# Figures are built without pyplot, so drawing here never touches the user's backend (a notebook's
# inline plots, a desktop GUI) and works headless.


def middle_slice(volume: torch.Tensor) -> torch.Tensor:
    """``[C, *S]`` -> ``[C, H, W]``: the middle slice along the first axis for 3D, as is for 2D."""
    return volume[:, volume.shape[1] // 2] if volume.dim() == 4 else volume


def pca_rgb(features: torch.Tensor) -> np.ndarray:
    """Features ``[C, H, W]`` -> RGB ``[H, W, 3]`` in [0, 1]: projections on the first three principal
    components over the pixels, each stretched between its 1st and 99th percentiles."""
    channels = features.shape[0]
    flat = features.detach().float().reshape(channels, -1).T
    flat = flat - flat.mean(0, keepdim=True)
    _, _, components = torch.linalg.svd(flat, full_matrices=False)
    projected = flat @ components[:3].T
    if projected.shape[1] < 3:
        projected = torch.cat([projected, projected[:, :1].expand(-1, 3 - projected.shape[1])], dim=1)
    low, high = torch.quantile(projected, 0.01, dim=0), torch.quantile(projected, 0.99, dim=0)
    rgb = ((projected - low) / (high - low).clamp_min(1e-8)).clamp(0, 1)
    return rgb.reshape(*features.shape[1:], 3).cpu().numpy()


def checkerboard(first: torch.Tensor, second: torch.Tensor, tiles: int = 8) -> torch.Tensor:
    """Alternate ``tiles x tiles`` squares of two ``[H, W]`` images."""
    rows = (torch.arange(first.shape[0]) * tiles // first.shape[0]).view(-1, 1)
    columns = (torch.arange(first.shape[1]) * tiles // first.shape[1]).view(1, -1)
    return torch.where((rows + columns) % 2 == 0, first, second)


def draw_grid(axis, displacement: torch.Tensor, every: int = 4) -> None:
    """Deformed lines of the fixed grid, every ``every`` pixels; ``displacement`` ``[2, H, W]`` in
    pixels (array order: rows, columns)."""
    height, width = displacement.shape[1:]
    rows, columns = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    y, x = (rows + displacement[0]).numpy(), (columns + displacement[1]).numpy()
    for index in range(0, height, every):
        axis.plot(x[index], y[index], color="tab:orange", linewidth=0.6)
    for index in range(0, width, every):
        axis.plot(x[:, index], y[:, index], color="tab:orange", linewidth=0.6)
    axis.set_xlim(-0.5, width - 0.5)
    axis.set_ylim(height - 0.5, -0.5)
    axis.set_aspect("equal")


def registration_panel(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    warped: torch.Tensor,
    displacement: torch.Tensor,
    feature_pyramids: list[list[torch.Tensor]] | None = None,
    title: str = "",
):
    """A figure for one pair. Images ``[1, *S]``; ``displacement`` ``[d, *S]`` in voxels (array
    order); ``feature_pyramids`` = [fixed levels, moving levels], each level ``[C, *S_s]``."""
    images = [middle_slice(t)[0].detach().cpu().float() for t in (fixed, moving, warped)]
    field = middle_slice(displacement.detach().cpu().float())[-2:]
    levels = len(feature_pyramids[0]) if feature_pyramids else 0
    columns = max(5, levels)
    figure = Figure(figsize=(2.4 * columns, 2.4 * (1 + 2 * (levels > 0))))
    axes = figure.subplots(1 + 2 * (levels > 0), columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    named = [
        ("fixed", images[0]),
        ("moving", images[1]),
        ("warped", images[2]),
        ("checkerboard", checkerboard(images[0], images[2])),
    ]
    for axis, (name, image) in zip(axes[0], named):
        axis.imshow(image.numpy(), cmap="gray")
        axis.set_title(name, fontsize=9)
    axes[0, 4].imshow(images[0].numpy(), cmap="gray")
    draw_grid(axes[0, 4], field)
    axes[0, 4].set_title("deformation", fontsize=9)
    for row, (name, pyramid) in enumerate(zip(("fixed", "moving"), feature_pyramids or []), start=1):
        for axis, level in zip(axes[row], pyramid):
            axis.imshow(pca_rgb(middle_slice(level)))
            axis.set_title(f"{name} features {tuple(level.shape[1:])}", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path
