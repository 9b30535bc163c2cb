"""Synthetic brain-like images, label maps and known smooth warps (no download, fully seeded).

Used by the tests, the demos and the benchmarks. A "brain" is an ellipsoid of random labels
(argmax of smoothed noise) with a random intensity per label, blurred, with noise and a bias field.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..solver.geometry.filters import gaussian_smooth
from ..solver.geometry.spatial import exponentiate, field_to_grid, identity_grid, resize, sample


def _noise(shape: Sequence[int], channels: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(1, channels, *shape, generator=generator)


def smooth_noise(shape: Sequence[int], channels: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise ``[1, channels, *shape]`` drawn every ``scale`` voxels and interpolated
    (no boundary artefacts, unlike smoothing full-resolution noise); about unit variance."""
    coarse = [max(int(round(n / scale)), 2) for n in shape]
    return resize(_noise(coarse, channels, generator), shape)


def random_labels(
    shape: Sequence[int],
    num_labels: int = 8,
    smoothness: float = 8.0,
    generator: torch.Generator | None = None,
    brain: bool = True,
) -> torch.Tensor:
    """Label map ``[1, 1, *shape]`` (int64): 0 outside an ellipsoid, ``1..num_labels`` inside.

    ``smoothness`` is the Gaussian sigma (voxels) of the noise whose argmax makes the regions.
    """
    generator = generator or torch.Generator().manual_seed(0)
    noise = smooth_noise(shape, num_labels, smoothness, generator)
    labels = noise.argmax(1, keepdim=True) + 1
    if brain:
        radius = identity_grid(shape).squeeze(0).pow(2).sum(-1).sqrt()
        labels = torch.where(radius.unsqueeze(0).unsqueeze(0) < 0.85, labels, torch.zeros_like(labels))
    return labels


def label_image(
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: float = 0.02,
    bias: float = 0.1,
    blur: float = 0.7,
) -> torch.Tensor:
    """Intensity image ``[1, 1, *S]`` in about ``[0, 1]``: a random mean per label, blurred,
    multiplied by a smooth bias field of relative amplitude ``bias``, plus Gaussian ``noise``."""
    generator = generator or torch.Generator().manual_seed(0)
    count = int(labels.max()) + 1
    means = torch.rand(count, generator=generator) * 0.8 + 0.2
    means[0] = 0.0
    image = gaussian_smooth(means[labels], blur)
    shape = labels.shape[2:]
    field = smooth_noise(shape, 1, max(shape) / 3, generator)
    field = field / field.abs().amax().clamp_min(1e-8)
    image = image * (1 + bias * field)
    return image + noise * _noise(shape, 1, generator)


def random_velocity(
    shape: Sequence[int], magnitude: float = 3.0, smoothness: float = 12.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Smooth random velocity ``[1, d, *shape]`` in normalized units whose root-mean-square
    length is ``magnitude`` voxels."""
    generator = generator or torch.Generator().manual_seed(0)
    dims = len(shape)
    velocity = gaussian_smooth(smooth_noise(shape, dims, smoothness, generator), smoothness / 2)
    voxel = torch.tensor([2.0 / (n - 1) for n in shape][::-1]).view(1, dims, *([1] * dims))
    in_voxels = velocity / velocity.pow(2).sum(1).mean().sqrt().clamp_min(1e-8)
    return in_voxels * magnitude * voxel


def warped_pair(
    shape: Sequence[int], magnitude: float = 3.0, num_labels: int = 8, seed: int = 0, smoothness: float = 12.0
) -> dict[str, torch.Tensor]:
    """A pair with a known diffeomorphic warp: ``fixed(x) = moving(true_grid(x))``.

    Returns ``fixed``, ``moving`` ``[1, 1, *S]`` float, ``fixed_seg``, ``moving_seg`` ``[1, 1, *S]`` int64
    and ``true_grid`` ``[1, *S, d]`` (normalized), the answer a registration should find.
    """
    generator = torch.Generator().manual_seed(seed)
    moving_seg = random_labels(shape, num_labels, generator=generator)
    moving = label_image(moving_seg, torch.Generator().manual_seed(seed + 1))
    displacement = exponentiate(random_velocity(shape, magnitude, smoothness, generator))
    true_grid = identity_grid(shape) + field_to_grid(displacement)
    fixed_seg = sample(moving_seg.float(), true_grid, mode="nearest").long()
    fixed = label_image(fixed_seg, torch.Generator().manual_seed(seed + 1))  # same label intensities
    return {"fixed": fixed, "moving": moving, "fixed_seg": fixed_seg, "moving_seg": moving_seg, "true_grid": true_grid}


def oblique_affine(
    spacing: Sequence[float] = (1.2, 1.0, 1.5), angle: float = 0.1, origin: Sequence[float] = (40.0, -30.0, -20.0)
):
    """A NIfTI voxel-to-world affine (4x4 numpy) with a flip of the first axis, a rotation of
    ``angle`` radians about the third, anisotropic ``spacing`` (mm) and ``origin`` (mm)."""
    import numpy as np

    cosine, sine = np.cos(angle), np.sin(angle)
    rotation = np.array([[cosine, -sine, 0], [sine, cosine, 0], [0, 0, 1]]) @ np.diag([-1, 1, 1])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def write_demo_pair(
    folder: str, shape: Sequence[int] = (64, 72, 56), magnitude: float = 2.5, seed: int = 0, overwrite: bool = False
) -> dict[str, str]:
    """Write a 3D pair with labels as NIfTI (oblique affines, 1.2 x 1.0 x 1.5 mm voxels) into a new
    ``folder`` (or, with ``overwrite``, one written here before)."""
    from pathlib import Path

    import nibabel as nib
    import numpy as np

    from ..files.output_folder import OutputFolder

    pair = warped_pair(shape, magnitude=magnitude, seed=seed)
    affine = oblique_affine()
    with OutputFolder(folder, overwrite, flag="the demo folder").staged("lightning_reg.data.synthetic") as staging:
        for key in ("fixed", "moving", "fixed_seg", "moving_seg"):
            array = pair[key][0, 0].numpy()
            array = array.astype(np.int16) if key.endswith("seg") else array.astype(np.float32)
            nib.save(nib.Nifti1Image(array, affine), str(staging / f"{key}.nii.gz"))
    return {key: str(Path(folder) / f"{key}.nii.gz") for key in ("fixed", "moving", "fixed_seg", "moving_seg")}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lightning_reg.data.synthetic [FOLDER] [--overwrite]``: write the demo pair."""
    import sys

    from ..errors import OneLineParser, interrupted, report

    parser = OneLineParser(prog="python -m lightning_reg.data.synthetic", description=write_demo_pair.__doc__)
    parser.add_argument("folder", nargs="?", default="demo")
    parser.add_argument("--overwrite", action="store_true", help="replace a demo folder written here before")
    args = parser.parse_args(argv)
    try:
        paths = write_demo_pair(args.folder, overwrite=args.overwrite)
    except KeyboardInterrupt:
        return interrupted(parser.prog, "nothing half-written was left")
    except Exception as error:
        return report(error, parser.prog)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"{parser.prog}: wrote {args.folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
