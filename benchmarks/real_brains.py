"""Real anatomy, held-out individuals: no registration, our classical solver, our learned models and the
peers, on the held-out pairs the builder writes (AHBA donors 15496 and 15697 and fsaverage, both
directions; centroid-aligned, or pre-aligned to MNI with --test mni; 2 mm). Dice over the 82 DK
labels (mean, cortical, subcortical), HD95, folding % and NDV % (one Jacobian and one NDV definition
for every method: each method's whole map as a voxel displacement on the fixed grid), seconds per
pair; JSON + markdown + plot.

    python -m lightning_reg.anatomy brains                  # once: builds the folder
    pip install -e ".[bench]"
    python benchmarks/real_brains.py --brains brains --dims 3 --threads 2 \
        [--methods none ours-greedy ours-svf learned-greedy ants-syn fireants-greedy picsl-greedy ...] \
        [--checkpoint brain3d] [--voxelmorph vxm3d.ckpt] [--recipe t2like] [--shift thick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from measure import provenance

from lightning_reg.data.brains.anisotropy import thicken
from lightning_reg.data.brains.cohort import TISSUE_LABELS
from lightning_reg.data.brains.datamodule import HeldOutPairs
from lightning_reg.data.brains.grid import with_tissue
from lightning_reg.data.brains.recipes import recipe_means, render_recipe
from lightning_reg.errors import InputError
from lightning_reg.evaluation.metrics import dice_per_label, folding_percent, hd95, non_diffeomorphic_volume
from lightning_reg.solver import RegistrationResult, register
from lightning_reg.solver.resample import onto_fixed_grid, through_header

#: the classical settings of every iterative method (ours, FireANTs): scales, iterations, LNCC window
SCALES, ITERATIONS, WINDOW = [4, 2, 1], [200, 100, 50], 7
#: the label prompt: left and right hippocampus where both images show them, else the two largest
#: subcortical structures the pair shares (a 2D slice may miss the hippocampi)
PROMPT_LABELS = [40, 81]


def render_donor(brains: Path, donor: str, recipe: str = "t1like") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A training or validation donor's label map rendered as the held-out images are (tissue added,
    the recipe's means, seeded by the donor's number): image, labels and affine."""
    with open(brains / "dk_labels.csv") as handle:
        table = [
            {
                "id": int(row["id"]),
                "hemisphere": row["hemisphere"],
                "structure": row["structure"],
                "label": row.get("label", row["structure"]),
            }
            for row in csv.DictReader(handle)
        ]
    header = nib.load(brains / "labels" / f"{donor}.nii.gz")
    labels = np.asarray(header.dataobj)
    image = render_recipe(with_tissue(labels), recipe_means(table, recipe), seed=int(donor))
    return np.asarray(image, dtype=np.float32), labels, header.affine


def prompt_labels(pair: dict, subcortical: list[int]) -> list[int]:
    shared = set(pair["fixed_seg"].unique().tolist()) & set(pair["moving_seg"].unique().tolist())
    if set(PROMPT_LABELS) <= shared:
        return PROMPT_LABELS
    sizes = {label: int((pair["fixed_seg"] == label).sum()) for label in subcortical if label in shared}
    return sorted(sorted(sizes, key=sizes.get)[-2:])


def voxel_displacement(grid: torch.Tensor) -> torch.Tensor:
    """A normalized sampling grid ``[1, *S, d]`` (``grid_sample`` order) as a voxel displacement
    ``[1, d, *S]`` in array order."""
    shape = grid.shape[1:-1]
    identity = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, n) for n in shape], indexing="ij"), -1).flip(-1)
    half = torch.tensor([(n - 1) / 2 for n in shape][::-1])
    return ((grid - identity) * half).flip(-1).movedim(-1, 1)


def thick_slices(pair: dict, factor: int = 3) -> dict:
    """The pair with its moving image stored with slices ``factor`` times thicker along the last axis."""
    axis = pair["moving"].dim() - 2
    moving, moving_seg, affine = thicken(pair["moving"], pair["moving_seg"], pair["moving_affine"], axis, factor)
    return {**pair, "moving": moving, "moving_seg": moving_seg, "moving_affine": affine}


def run_none(pair: dict, context: dict):
    if pair["moving"].shape == pair["fixed"].shape:
        return pair["moving_seg"][None], None, 0.0
    result = register(
        pair["fixed"][None],
        pair["moving"][None],
        transform="greedy",
        iterations=0,
        fixed_affine=pair["fixed_affine"][None],
        moving_affine=pair["moving_affine"][None],
    )
    return result.warp_labels(pair["moving_seg"][None]), None, 0.0


def _ours(transform: str, similarity: str = "lncc", iterations: list[int] = ITERATIONS):
    """Our classical solver; ``mi``: mutual information, the classical answer to a contrast shift."""

    def run(pair: dict, context: dict):
        start = time.perf_counter()
        options = {"window": WINDOW} if similarity == "lncc" else {}
        result = register(
            pair["fixed"][None],
            pair["moving"][None],
            transform=transform,
            similarity=similarity,
            scales=SCALES,
            iterations=iterations,
            similarity_options=options,
            fixed_affine=pair["fixed_affine"][None],
            moving_affine=pair["moving_affine"][None],
        )
        seconds = time.perf_counter() - start
        return result.warp_labels(pair["moving_seg"][None]), result, seconds

    return run


def _learned(transform: str | None, prompt: bool = False, resample: bool = False):
    """Our learned model; ``resample``: a moving image on its own grid (thick slices) resampled onto
    the fixed grid first, as for VoxelMorph, instead of its features computed on its native grid."""

    def run(pair: dict, context: dict):
        from dataclasses import replace

        model = context["model"]
        # as trained: the training solver (a bundled model's evaluation default may differ)
        settings = model.train_solver if transform is None else replace(model.eval_solver, transform=transform)
        if transform is not None:
            settings = replace(settings, iterations=ITERATIONS)
        if prompt:
            settings = replace(settings, prompt_labels=pair["prompt_labels"], prompt_weight=1.0)
        batch = {key: value[None] for key, value in pair.items() if torch.is_tensor(value)}
        start = time.perf_counter()
        header, moving = (
            onto_fixed_grid(batch["fixed"], batch["moving"], batch["fixed_affine"], batch["moving_affine"])
            if resample
            else (None, batch["moving"])
        )
        inputs = batch if header is None else {**batch, "moving": moving, "moving_affine": batch["fixed_affine"]}
        with torch.no_grad():
            result = through_header(header, model.register(inputs, settings)[-1])
        seconds = time.perf_counter() - start
        return result.warp_labels(batch["moving_seg"]), result, seconds

    return run


def run_voxelmorph(pair: dict, context: dict):
    """The VoxelMorph baseline trained on the same renderings (``voxelmorph_baseline.py``); a thick
    moving image is resampled onto the fixed grid first, as its users do."""
    batch = {key: value[None] for key, value in pair.items() if torch.is_tensor(value)}
    start = time.perf_counter()
    with torch.no_grad():
        result = context["voxelmorph"](batch)
    seconds = time.perf_counter() - start
    return result.warp_labels(batch["moving_seg"]), result, seconds


def _ants_map(fixed, moving, transforms: list[str], margin: int = 32) -> RegistrationResult:
    """ANTs' whole map (its warp and its affine) as a voxel displacement on the fixed grid: each world
    coordinate, written as an image on the moving grid grown by ``margin`` voxels (so points that land
    outside the moving image are still exact), resampled by ANTs with the transforms."""
    import ants

    spacing, origin = np.asarray(moving.spacing), np.asarray(moving.origin)
    index = np.meshgrid(*[np.arange(-margin, n + margin, dtype=np.float64) for n in moving.shape], indexing="ij")
    mapped = []
    for axis in range(len(index)):
        coordinate = ants.from_numpy(
            (origin[axis] + index[axis] * spacing[axis]).astype(np.float32),
            origin=tuple(origin - margin * spacing),
            spacing=tuple(spacing),
        )
        mapped.append(ants.apply_transforms(fixed, coordinate, transforms, interpolator="linear").numpy())
    fixed_index = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in fixed.shape], indexing="ij")
    displacement = [
        (mapped[axis] - fixed.origin[axis]) / fixed.spacing[axis] - fixed_index[axis] for axis in range(len(index))
    ]
    return RegistrationResult.from_voxel_displacement(torch.as_tensor(np.stack(displacement))[None].float())


def _ants(kind: str):
    def run(pair: dict, context: dict):
        import ants

        def image(key: str, role: str):  # axis-aligned grids: spacing and origin say it all
            affine = pair[f"{role}_affine"]
            return ants.from_numpy(
                pair[key][0].numpy().astype(np.float32),
                origin=tuple(affine[:-1, -1].tolist()),
                spacing=tuple(affine.diagonal()[:-1].tolist()),
            )

        fixed, moving, labels = image("fixed", "fixed"), image("moving", "moving"), image("moving_seg", "moving")
        start = time.perf_counter()
        done = ants.registration(fixed, moving, type_of_transform=kind)
        seconds = time.perf_counter() - start
        warped = ants.apply_transforms(fixed, labels, done["fwdtransforms"], interpolator="genericLabel")
        return (
            torch.as_tensor(warped.numpy()).round().long()[None, None],
            _ants_map(fixed, moving, done["fwdtransforms"]),
            seconds,
        )

    return run


def _fireants(kind: str, iterations: list[int] = ITERATIONS):
    def run(pair: dict, context: dict):
        import SimpleITK as sitk
        from fireants.io.image import BatchedImages, Image
        from fireants.registration.greedy import GreedyRegistration
        from fireants.registration.syn import SyNRegistration

        from lightning_reg.solver.geometry.labels import label_values, one_hot

        if pair["moving"].shape != pair["fixed"].shape:
            raise SystemExit("the FireANTs runner here registers images of one grid only; leave it out with --shift")

        def batched(tensor):
            return BatchedImages([Image(sitk.GetImageFromArray(tensor[0].numpy()), device="cpu")])

        fixed, moving = batched(pair["fixed"]), batched(pair["moving"])
        method = GreedyRegistration if kind == "greedy" else SyNRegistration
        start = time.perf_counter()
        registration = method(
            scales=SCALES,
            iterations=list(iterations),
            fixed_images=fixed,
            moving_images=moving,
            loss_type="cc",
            cc_kernel_size=WINDOW,
            optimizer="Adam",
            optimizer_lr=0.5,
            smooth_warp_sigma=0.5,
            smooth_grad_sigma=1.0,
            progress_bar=False,
        )
        with contextlib.redirect_stderr(io.StringIO()):  # FireANTs' SyN draws a progress bar whatever it is told
            registration.optimize()
        seconds = time.perf_counter() - start
        grid = registration.get_warped_coordinates(fixed, moving).detach().float()
        values = label_values(pair["moving_seg"][None], background=False)
        warped = torch.nn.functional.grid_sample(one_hot(pair["moving_seg"][None], values), grid, align_corners=True)
        warped = values[warped.argmax(1, keepdim=True)] * (warped.amax(1, keepdim=True) > 0.5)
        return warped, RegistrationResult.from_voxel_displacement(voxel_displacement(grid)), seconds

    return run


def _picsl_greedy(iterations: str):
    """PICSL Greedy (``picsl-greedy``, the C++ tool behind ITK-SNAP's registration): NCC 2x2x2 (its
    brain quick start), ``iterations`` coarse to fine at 4/2/1 (its default levels), one grid only.
    Its warp (ITK: LPS millimetres) is read back as a voxel displacement in array order, so every
    method's folding and NDV come from one definition."""

    def run(pair: dict, context: dict):
        import nibabel as nib
        from picsl_greedy import Greedy2D, Greedy3D

        if pair["moving"].shape != pair["fixed"].shape:
            raise SystemExit(
                "the PICSL Greedy runner here registers images of one grid only; leave it out with --shift"
            )
        dims = pair["fixed"].dim() - 1
        affine = np.eye(4)  # a 2D grid's 3x3 affine goes into NIfTI's 4x4
        affine[:dims, :dims], affine[:dims, 3] = pair["fixed_affine"][:dims, :dims], pair["fixed_affine"][:dims, dims]
        with tempfile.TemporaryDirectory() as scratch:
            paths = {key: os.path.join(scratch, f"{key}.nii.gz") for key in ("fixed", "moving", "moving_seg")}
            for key, path in paths.items():
                data = pair[key][0].numpy()
                nib.save(nib.Nifti1Image(data.astype(np.int16 if key.endswith("seg") else np.float32), affine), path)
            warp, warped = os.path.join(scratch, "warp.nii.gz"), os.path.join(scratch, "warped_seg.nii.gz")
            greedy = (Greedy3D if dims == 3 else Greedy2D)()
            start = time.perf_counter()
            greedy.execute(
                f"-d {dims} -V 0 -threads {torch.get_num_threads()} -i {paths['fixed']} {paths['moving']} "
                f"-m NCC {'x'.join(['2'] * dims)} -n {iterations} -o {warp}"
            )
            seconds = time.perf_counter() - start
            greedy.execute(
                f"-d {dims} -V 0 -rf {paths['fixed']} -ri LABEL 0.2vox -rm {paths['moving_seg']} {warped} -r {warp}"
            )
            labels = torch.as_tensor(np.asarray(nib.load(warped).dataobj)).long()
            field = np.asarray(nib.load(warp).dataobj, dtype=np.float64).reshape(*pair["fixed"].shape[1:], dims)
        field[..., :2] *= -1  # ITK's LPS -> RAS; the grid's axes are RAS-aligned (diagonal affine)
        voxels = torch.as_tensor(field / np.diag(affine)[:dims]).movedim(-1, 0)[None].float()
        return labels[None, None], RegistrationResult.from_voxel_displacement(voxels), seconds

    return run


def run_convexadam(pair: dict, context: dict):
    """ConvexAdam 0.2 (``convexadam``; Siebert, Hansen and Heinrich 2021): MIND-SSC features, a
    coupled convex discrete search, then Adam instance optimisation; its defaults, float32 on the CPU
    (its float16 default is GPU-only), 3D only, one grid only. Its answer is a voxel displacement in
    array order, which is what ``from_voxel_displacement`` reads."""
    from convexAdam.convex_adam_MIND import convex_adam_pt

    if pair["moving"].shape != pair["fixed"].shape or pair["fixed"].dim() != 4:
        raise SystemExit(
            "the ConvexAdam runner here registers 3D images of one grid only; leave it out with --shift or --dims 2"
        )
    start = time.perf_counter()
    displacement = convex_adam_pt(pair["fixed"][0], pair["moving"][0], dtype=torch.float32, device=torch.device("cpu"))
    seconds = time.perf_counter() - start
    voxels = torch.as_tensor(displacement, dtype=torch.float32).movedim(-1, 0)[None]
    result = RegistrationResult.from_voxel_displacement(voxels)
    return result.warp_labels(pair["moving_seg"][None]), result, seconds


def run_elastix(pair: dict, context: dict):
    """itk-elastix with its default B-spline parameter map (Mattes MI, 4 resolutions), same grid."""
    import itk

    if pair["moving"].shape != pair["fixed"].shape:
        raise SystemExit("the elastix runner here registers images of one grid only; leave it out with --shift")
    spacing = pair["fixed_affine"].diagonal()[:-1].tolist()

    def image(tensor: torch.Tensor):
        converted = itk.image_from_array(np.ascontiguousarray(tensor[0].numpy().astype(np.float32)))
        converted.SetSpacing(spacing[::-1])  # ITK's axes are numpy's reversed
        return converted

    fixed, moving, labels = image(pair["fixed"]), image(pair["moving"]), image(pair["moving_seg"].float())
    parameters = itk.ParameterObject.New()
    parameters.AddParameterMap(parameters.GetDefaultParameterMap("bspline"))
    start = time.perf_counter()
    _, found = itk.elastix_registration_method(fixed, moving, parameter_object=parameters, log_to_console=False)
    seconds = time.perf_counter() - start
    found.SetParameter(0, "FinalBSplineInterpolationOrder", "0")  # labels: nearest neighbour
    with tempfile.TemporaryDirectory() as scratch:  # transformix writes its field file there, not here
        warped = itk.transformix_filter(labels, found, log_to_console=False, output_directory=scratch)
        field = itk.array_from_image(
            itk.transformix_deformation_field(moving, found, log_to_console=False, output_directory=scratch)
        )
    displacement = torch.as_tensor(field[..., ::-1].copy()) / torch.tensor(spacing)  # mm -> voxels, array order
    result = RegistrationResult.from_voxel_displacement(displacement.movedim(-1, 0)[None].float())
    return torch.as_tensor(itk.array_from_image(warped)).round().long()[None, None], result, seconds


METHODS = {
    "none": run_none,
    "ours-greedy": _ours("greedy"),
    "ours-svf": _ours("svf"),
    "ours-syn": _ours("syn"),
    "ours-greedy-mi": _ours("greedy", "mi"),
    "ours-greedy-quick": _ours("greedy", iterations=[100, 50, 10]),
    "learned-freeform": _learned(None),
    "learned-greedy": _learned("greedy"),
    "learned-svf": _learned("svf"),
    "learned-syn": _learned("syn"),
    "learned-greedy-prompt": _learned("greedy", prompt=True),
    "learned-greedy-resampled": _learned("greedy", resample=True),
    "voxelmorph": run_voxelmorph,
    "ants-syn": _ants("SyN"),
    "ants-syncc": _ants("SyNCC"),
    "elastix-bspline": run_elastix,
    "fireants-greedy": _fireants("greedy"),
    "fireants-syn": _fireants("syn"),
    "convexadam": run_convexadam,
    "picsl-greedy-quick": _picsl_greedy("100x50x10"),
    "picsl-greedy": _picsl_greedy("200x100x50"),
}


def label_groups(brains: Path, test: str) -> dict[str, list[int]]:
    """The labels each Dice column averages: cortical and subcortical DK labels, or the tissues."""
    if test == "tissue":
        return {name.replace(" ", "_"): [label] for label, name in TISSUE_LABELS.items()}
    with open(brains / "dk_labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "cortical": [int(r["id"]) for r in rows if r["structure"] == "cortex"],
        "subcortical": [int(r["id"]) for r in rows if r["structure"] != "cortex"],
    }


def score(pair: dict, warped: torch.Tensor, result: RegistrationResult | None, seconds: float, groups: dict) -> dict:
    """One pair's row; ``result`` is the method's map (``None``: the identity)."""
    fixed_seg = pair["fixed_seg"][None]
    scores = dice_per_label(fixed_seg, warped)
    row = {
        "id": pair["id"],
        "prompt_labels": pair["prompt_labels"],
        "seconds": seconds,
        "dice": float(np.mean(list(scores.values()))),
        "hd95": hd95(fixed_seg, warped, spacing=pair["fixed_affine"].diagonal()[:-1].tolist()),
        "folding_percent": 0.0 if result is None else folding_percent(result.jacobian_determinant()[0]),
        "ndv_percent": 0.0 if result is None else non_diffeomorphic_volume(result.displacement_voxels()[0]),
    }
    for name, labels in {**groups, "prompted": pair["prompt_labels"]}.items():
        found = [scores[label] for label in labels if label in scores]
        row[f"dice_{name}"] = float(np.mean(found)) if found else float("nan")
    return row


def summarize(rows: list[dict], groups: dict) -> dict:
    keys = (
        "dice",
        *[f"dice_{name}" for name in groups],
        "dice_prompted",
        "hd95",
        "folding_percent",
        "ndv_percent",
        "seconds",
    )
    with warnings.catch_warnings():  # no prompted structures in the tissue test: NaN, said so
        warnings.simplefilter("ignore", RuntimeWarning)
        # rows from before NDV was measured have none: NaN
        return {key: float(np.nanmean([row.get(key, float("nan")) for row in rows])) for key in keys}


def write_outputs(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = output_stem(record)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2))
    columns = [*record["groups"], "prompted"]
    lines = [
        "| method | Dice | "
        + " | ".join(name.replace("_", " ") for name in columns)
        + " | HD95 mm | folding % | NDV % | s/pair |",
        "|---|---|" + "---|" * len(columns) + "---|---|---|---|",
    ]
    for name, summary in record["summary"].items():
        cells = " | ".join(f"{summary[f'dice_{column}']:.3f}" for column in columns)
        lines.append(
            f"| {name} | {summary['dice']:.3f} | {cells} | {summary['hd95']:.2f} | "
            f"{summary['folding_percent']:.3f} | {summary['ndv_percent']:.3f} | {summary['seconds']:.1f} |"
        )
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(record["summary"])
    figure, axis = plt.subplots(figsize=(1.0 + 0.9 * len(names), 3.4))
    for position, name in enumerate(names):
        values = [row["dice"] for row in record["pairs"][name]]
        axis.scatter([position] * len(values), values, s=12, color="grey")
        axis.bar(position, record["summary"][name]["dice"], 0.6, alpha=0.6)
    axis.set_xticks(range(len(names)), names, rotation=35, ha="right")
    axis.set_ylabel("mean Dice, " + ("grey and white matter" if record.get("test") == "tissue" else "82 DK labels"))
    axis.set_title(f"held-out pairs, {output_stem(record)[12:]}, {record['threads']} threads")
    figure.tight_layout()
    figure.savefig(out / f"{stem}.png", dpi=120)


def output_stem(record: dict) -> str:
    test = "" if record.get("test", "dk") == "dk" else f"_{record['test']}"
    return (
        f"real_brains_{record['dims']}d{test}"
        + ("" if record["recipe"] == "t1like" else f"_{record['recipe']}")
        + (f"_{record['shift']}" if record.get("shift") else "")
    )


def merged(out: Path, record: dict) -> dict:
    """``record`` joined with the earlier run in ``out``: its methods and pairs that this run did not
    rerun (runs of one machine split by method, e.g. a model still training, or by pair)."""
    path = out / f"{output_stem(record)}.json"
    if not path.is_file():
        return record
    earlier = json.loads(path.read_text())
    if any(earlier.get(key, "dk") != record.get(key, "dk") for key in ("dims", "test", "recipe", "shift", "threads")):
        raise SystemExit(f"{path} is of another set-up; merge only runs of the same dims, recipe, shift and threads")
    pairs = {name: list(rows) for name, rows in earlier["pairs"].items()}
    for name, rows in record["pairs"].items():  # a rerun pair replaces its earlier row, a new one joins
        ids = {row["id"] for row in rows}
        pairs[name] = [row for row in pairs.get(name, []) if row["id"] not in ids] + rows
    groups = record["groups"]
    record["pairs"] = pairs
    record["summary"] = {name: summarize(rows, groups) for name, rows in pairs.items()}
    record["checkpoint"] = record["checkpoint"] or earlier.get("checkpoint")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True, help="the folder python -m lightning_reg.anatomy wrote")
    parser.add_argument("--dims", type=int, default=3, choices=(2, 3))
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), help="default: all (voxelmorph only with --voxelmorph)"
    )
    parser.add_argument("--checkpoint", help="the learned model: a .ckpt or a bundled name (default brain<dims>d)")
    parser.add_argument(
        "--voxelmorph",
        type=Path,
        help="the VoxelMorph checkpoint (voxelmorph_baseline.py "
        "trains it on the same renderings); needed by the method voxelmorph",
    )
    parser.add_argument(
        "--test",
        default="dk",
        choices=("dk", "mni", "tissue"),
        help="dk: the 6 held-out pairs "
        "on 82 DK labels, centroid-aligned; mni: the same pre-aligned to MNI (affine to ICBM152); "
        "tissue: real T1s (fsaverage, ICBM152, CAT12), grey and white matter",
    )
    parser.add_argument(
        "--recipe",
        default="t1like",
        help="contrast of the test images: t1like, t2like (dk, mni); real, t1like (tissue)",
    )
    parser.add_argument(
        "--shift",
        choices=("thick",),
        help="thick: moving images stored with slices 3x thicker "
        "along the last axis (2x2x6 mm in 3D, 2x6 mm in 2D), registered on their native grid",
    )
    parser.add_argument("--pairs", type=int, default=6, help="how many of the 6 held-out pairs")
    parser.add_argument("--start", type=int, default=0, help="the first pair (0-5), to split a run with --merge")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other methods and pairs of an earlier run in --out (same dims, recipe, threads)",
    )
    args = parser.parse_args()
    if not (args.brains / "dk_labels.csv").is_file():
        parser.error(f"{args.brains} is not a built real-anatomy folder: python -m lightning_reg.anatomy {args.brains}")
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(args.threads))
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    context = {}
    if args.methods is None:
        args.methods = [name for name in METHODS if name != "voxelmorph" or args.voxelmorph is not None]
    if any(name.startswith("learned") for name in args.methods):
        from lightning_reg.models import resolve_checkpoint
        from lightning_reg.training.module import RegistrationModule

        checkpoint = resolve_checkpoint(args.checkpoint or f"brain{args.dims}d")
        context["model"] = RegistrationModule.load_from_checkpoint(str(checkpoint), map_location="cpu").eval()
        context["checkpoint"] = str(args.checkpoint or f"brain{args.dims}d")
    if "voxelmorph" in args.methods:
        if args.voxelmorph is None:
            parser.error("the method voxelmorph needs --voxelmorph CKPT (python benchmarks/voxelmorph_baseline.py)")
        from voxelmorph_baseline import VoxelMorphBaseline

        context["voxelmorph"] = VoxelMorphBaseline.load_from_checkpoint(str(args.voxelmorph), map_location="cpu").eval()
    if args.test == "tissue" and "learned-greedy-prompt" in args.methods:
        parser.error("the tissue test has no structures to prompt; leave out learned-greedy-prompt")
    pairs = HeldOutPairs(args.brains, args.dims, args.recipe, args.test)
    groups = label_groups(args.brains, args.test)
    results: dict[str, list[dict]] = {name: [] for name in args.methods}
    for index in range(args.start, min(args.start + args.pairs, len(pairs))):
        pair = pairs[index] if args.shift is None else thick_slices(pairs[index])
        pair["prompt_labels"] = prompt_labels(pair, groups["subcortical"]) if args.test != "tissue" else []
        for name in args.methods:
            warped, result, seconds = METHODS[name](pair, context)
            row = score(pair, warped, result, seconds, groups)
            results[name].append(row)
            parts = ", ".join(f"{group} {row[f'dice_{group}']:.3f}" for group in groups)
            print(
                f"{pair['id']:>22} {name:>22}: Dice {row['dice']:.3f} ({parts}) HD95 {row['hd95']:.2f} mm, folding "
                f"{row['folding_percent']:.3f} %, NDV {row['ndv_percent']:.3f} %, {seconds:.1f} s",
                flush=True,
            )
    record = {
        "dims": args.dims,
        "test": args.test,
        "groups": list(groups),
        "recipe": args.recipe,
        "shift": args.shift,
        "threads": args.threads,
        "checkpoint": context.get("checkpoint"),
        **provenance(args.threads),
        "settings": {"scales": SCALES, "iterations": ITERATIONS, "lncc_window": WINDOW},
        "pairs": results,
        "summary": {name: summarize(rows, groups) for name, rows in results.items()},
    }
    if args.merge:
        record = merged(args.out, record)
    write_outputs(args.out, record)
    for name, summary in record["summary"].items():
        print(
            f"{name:>22}: Dice {summary['dice']:.3f} HD95 {summary['hd95']:.2f} folding "
            f"{summary['folding_percent']:.3f} % {summary['seconds']:.1f} s/pair"
        )


if __name__ == "__main__":
    try:
        main()
    except InputError as error:  # a folder not built, a wrong recipe: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
