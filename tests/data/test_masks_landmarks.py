"""Cost-function masks and landmarks listed in a CSV manifest: read with the images (masks resampled
with them), carried in batches, used by the solver, and the target registration error, the
inverse consistency and NDV reported by ``test``."""

from __future__ import annotations

import lightning as L
import nibabel as nib
import numpy as np
import pytest
import torch
from trees import write_scan

from lightning_reg.data import PairsDataModule
from lightning_reg.nn import IdentityFeatures
from lightning_reg.solver import SolverOptions
from lightning_reg.training.batch_terms import batch_masks
from lightning_reg.training.module import RegistrationModule

SHIFT_MM = (3.0, 4.0, 0.0)  # moving landmarks = fixed ones + this: 5 mm apart before registration


def _mask(image_path, path, empty=False, shape=None):
    image = nib.load(str(image_path))
    mask = np.zeros(shape or image.shape, np.uint8)
    if not empty:
        mask[4:-4, 4:-4, 3:-3] = 1
    nib.save(nib.Nifti1Image(mask, image.affine), path)


@pytest.fixture
def manifest(tmp_path):
    folder = tmp_path / "pairs"
    for number in range(3):
        image = folder / f"scan{number}.nii.gz"
        write_scan(image, folder / f"seg{number}.nii.gz", seed=number)
        _mask(image, folder / f"mask{number}.nii.gz")
    centre = nib.load(str(folder / "scan0.nii.gz")).affine @ np.array([10.0, 12.0, 9.0, 1.0])
    points = np.array([centre[:3], centre[:3] + [2.0, -1.0, 1.0]])
    (folder / "fixed_points.csv").write_text(
        "id,x,y,z\n" + "".join(f"{i},{p[0]},{p[1]},{p[2]}\n" for i, p in enumerate(points))
    )
    (folder / "moving_points.csv").write_text(
        "x,y,z\n" + "".join(f"{p[0] + SHIFT_MM[0]},{p[1] + SHIFT_MM[1]},{p[2] + SHIFT_MM[2]}\n" for p in points)
    )
    rows = ["fixed,moving,fixed_seg,moving_seg,fixed_mask,moving_mask,fixed_landmarks,moving_landmarks,split"]
    for fixed, moving, split in ((0, 1, "train"), (1, 2, "val"), (0, 2, "test")):
        rows.append(
            f"scan{fixed}.nii.gz,scan{moving}.nii.gz,seg{fixed}.nii.gz,seg{moving}.nii.gz,mask{fixed}.nii.gz,"
            f"mask{moving}.nii.gz,fixed_points.csv,moving_points.csv,{split}"
        )
    path = folder / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_masks_are_resampled_with_the_images_and_landmarks_ride_along(manifest):
    data = PairsDataModule(manifest, spacing=2.0)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    assert batch["fixed_mask"].shape == (1, 1, *batch["fixed"].shape[2:])  # on the resampled grid
    assert set(torch.unique(batch["fixed_mask"]).tolist()) == {0.0, 1.0}
    inside = float(batch["fixed_mask"].mean())
    assert 0.1 < inside < 0.9
    assert isinstance(batch["fixed_landmarks"], list) and batch["fixed_landmarks"][0].shape == (2, 3)
    shift = batch["moving_landmarks"][0] - batch["fixed_landmarks"][0]
    assert torch.allclose(shift, torch.tensor(SHIFT_MM, dtype=torch.float64).expand(2, 3))
    masks = batch_masks(batch)
    assert masks is not None and torch.equal(masks.fixed, batch["fixed_mask"])


def test_training_pairs_carry_masks_but_no_landmarks(manifest):
    data = PairsDataModule(manifest, augmentation="spatial")
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert "fixed_mask" in batch and "moving_mask" in batch
    assert "fixed_landmarks" not in batch  # a random spatial augmentation would move them


def test_the_test_loop_reports_tre_inverse_consistency_and_ndv(manifest, tmp_path):
    solver = SolverOptions(transform="greedy", similarity="lncc", iterations=[10, 5], scales=[2, 1])
    model = RegistrationModule(network=IdentityFeatures(dims=3), train_solver=solver)
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    metrics = trainer.test(model, PairsDataModule(manifest), verbose=False)[0]
    (row,) = model.test_rows
    assert row["tre_before_mm"] == pytest.approx(5.0, abs=1e-4)  # the landmark files' own distance
    # the map moves each landmark by at most a few mm on these 20x24x18 scans
    assert abs(row["tre_mm"] - row["tre_before_mm"]) < 5.0 and row["tre_mm"] != row["tre_before_mm"]
    assert 0 <= row["inverse_consistency_mm"] < 0.5 and row["inverse_consistency_p95_mm"] >= 0
    assert row["ndv_percent"] == 0.0  # greedy does not fold
    for key in ("tre_mm", "inverse_consistency_mm", "ndv_percent"):
        assert metrics[f"test/{key}"] == pytest.approx(row[key], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    "change, message",
    [
        ("empty", "mask of .* is empty"),
        ("shape", "mask .* has shape .* but its image"),
        ("landmarks", "needs a header row with the columns x, y, z"),
        ("column", "may have fixed_seg"),
    ],
)
def test_bad_masks_and_landmarks_get_clear_errors(manifest, change, message):
    folder = manifest.parent
    if change == "empty":
        _mask(folder / "scan0.nii.gz", folder / "mask0.nii.gz", empty=True)
    elif change == "shape":
        _mask(folder / "scan0.nii.gz", folder / "mask0.nii.gz", shape=(5, 5, 5))
    elif change == "landmarks":
        (folder / "fixed_points.csv").write_text("a,b\n1,2\n")
    else:
        manifest.write_text(manifest.read_text().replace("fixed_mask", "fixed_masks", 1))
    with pytest.raises(Exception, match=message):
        data = PairsDataModule(manifest)
        data.setup("test")
        next(iter(data.test_dataloader()))
