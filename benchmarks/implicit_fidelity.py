"""How exact is the implicit layer? Directional derivatives of the layer's output against central
finite differences of the solver's own output, per transform, similarity, optimizer and backward
mode, on tiny float64 problems (2D 16x16 by default), with the time of forward + backward.

For each case: the scalar ``L = sum(w * grid)`` (``w`` fixed, random), its gradient with respect to
both feature maps from the layer's backward, and ``(L(F + h d) - L(F - h d)) / 2h`` along random
directions ``d`` of both maps, the solver re-run from scratch each time. Reported: the median
relative error ``|g.d - fd| / |fd|`` over the directions, whether any direction has the wrong sign,
the stationarity the solver reached, and (per optimizer) the cosine between the ``jfb`` and ``ift``
gradients.

    python benchmarks/implicit_fidelity.py --threads 2 [--shape 16 16] [--directions 3] [--out docs]
    python benchmarks/implicit_fidelity.py --plot benchmarks/results/implicit_fidelity.json   # redraw the figure only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from measure import provenance

from lightning_reg.data.synthetic import smooth_noise
from lightning_reg.evaluation.pictures import save_figure
from lightning_reg.solver import RegistrationLayer
from lightning_reg.solver.geometry.spatial import apply_matrix, identity_grid, sample

TRANSFORMS = ("rigid", "affine", "freeform", "greedy", "svf", "bspline")
DENSE = dict(smooth_grad_sigma=0, smooth_warp_sigma=0)


def problem(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two-channel smooth features, the moving ones an affine warp of the fixed ones; upstream weights."""
    generator = torch.Generator().manual_seed(seed)
    moving = smooth_noise(shape, 2, 3.0, generator)
    dims = len(shape)
    matrix = torch.eye(dims + 1)
    matrix[:dims, :dims] += 0.05 * torch.randn(dims, dims, generator=generator)
    matrix[:dims, dims] = 0.05
    fixed = sample(moving, apply_matrix(matrix[None], identity_grid(shape, dtype=torch.float64)))
    return fixed, moving, torch.randn(1, *shape, dims, generator=generator)


def layer_for(transform: str, similarity: str, optimizer: str, backward: str, iterations: int) -> RegistrationLayer:
    """Adam as the default runs it (linear interpolation, every iteration); the line-search optimizers
    with their default cubic interpolation, stopping at stationarity 3e-7 or at rounding level."""
    deformable = transform not in ("rigid", "affine")
    return RegistrationLayer(
        transform,
        similarity,
        iterations=[iterations],
        backward=backward,
        optimizer=optimizer,
        tolerance=0 if optimizer == "adam" else 3e-7,
        damping=1e-6,
        cg_iterations=300,
        cg_tolerance=1e-9,
        regularizer="diffusion" if deformable else None,
        regularizer_weight=0.1 if deformable else 0.0,
        transform_options=DENSE if transform in ("freeform", "greedy", "svf") else {},
        similarity_options={"window": 5} if similarity == "lncc" else None,
    )


def measure(
    layer: RegistrationLayer,
    fixed: torch.Tensor,
    moving: torch.Tensor,
    weights: torch.Tensor,
    directions: int,
    step: float,
    seed: int,
) -> dict:
    fixed_leaf, moving_leaf = fixed.clone().requires_grad_(True), moving.clone().requires_grad_(True)
    start = time.perf_counter()
    result = layer([fixed_leaf], [moving_leaf])[-1]
    (result.grid * weights).sum().backward()
    seconds = time.perf_counter() - start
    gradient = torch.cat([fixed_leaf.grad.flatten(), moving_leaf.grad.flatten()])
    trace = result.loss_trace[0]
    generator = torch.Generator().manual_seed(seed)
    errors, wrong_sign, differences = [], 0, []
    for _ in range(directions):
        direction = torch.randn(gradient.shape, generator=generator, dtype=torch.float64)
        along_fixed = direction[: fixed.numel()].view_as(fixed)
        along_moving = direction[fixed.numel() :].view_as(moving)
        with torch.no_grad():
            plus = (layer([fixed + step * along_fixed], [moving + step * along_moving])[-1].grid * weights).sum()
            minus = (layer([fixed - step * along_fixed], [moving - step * along_moving])[-1].grid * weights).sum()
        difference = float(plus - minus) / (2 * step)
        analytic = float(gradient @ direction)
        errors.append(abs(analytic - difference) / max(abs(difference), 1e-12))
        wrong_sign += (analytic * difference) < 0
        differences.append(difference)
    return {
        "median_relative_error": statistics.median(errors),
        "wrong_sign": int(wrong_sign),
        "finite_differences": differences,
        "gradient_is_zero": bool(gradient.abs().max() == 0),
        "seconds": seconds,
        "iterations_run": int(trace.shape[0]),
        "stationarity": float(result.stationarity[0]),
        "gradient": gradient,
    }


def plot(record: dict, path: Path) -> Path:
    """Median relative error per transform, one bar per similarity x optimizer x backward mode (log scale)."""
    rows = record["rows"]
    transforms = list(dict.fromkeys(row["transform"] for row in rows))
    cases = list(dict.fromkeys((row["similarity"], row["optimizer"], row["backward"]) for row in rows))
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots()
    width = 0.8 / len(cases)
    for number, case in enumerate(cases):
        values = [
            next(
                (
                    row["median_relative_error"]
                    for row in rows
                    if row["transform"] == transform and (row["similarity"], row["optimizer"], row["backward"]) == case
                ),
                float("nan"),
            )
            for transform in transforms
        ]
        axes.bar([index + number * width for index in range(len(transforms))], values, width, label=" ".join(case))
    axes.axhline(0.05, color="black", linewidth=0.8, linestyle="--", label="5 %")
    axes.set_yscale("log")
    axes.set_xticks([index + 0.4 - width / 2 for index in range(len(transforms))], transforms)
    axes.set_ylabel("median |g.d - fd| / |fd|")
    axes.set_title(
        f"implicit layer vs finite differences, {'x'.join(map(str, record['shape']))} float64, "
        f"{record['iterations']} iterations ({record['machine']})",
        fontsize=9,
    )
    axes.legend(fontsize=7, ncol=4)
    figure.tight_layout()
    return save_figure(figure, path)


def _error(row: dict) -> str:
    wrong = f" ({row['wrong_sign']}✗)" if row["wrong_sign"] else ""
    return f"{row['median_relative_error']:.2g}{wrong}"


def table(rows: list[dict]) -> str:
    """``ift``'s median relative error per transform (columns: similarity, optimizer; ✗: directions
    with the wrong sign), and L-BFGS's stationarity and ``cos(jfb, ift)`` per similarity."""
    found = {(row["transform"], row["similarity"], row["optimizer"], row["backward"]): row for row in rows}
    transforms = list(dict.fromkeys(row["transform"] for row in rows))
    similarities = list(dict.fromkeys(row["similarity"] for row in rows))
    optimizers = list(dict.fromkeys(row["optimizer"] for row in rows))
    pairs = [(similarity, optimizer) for similarity in similarities for optimizer in optimizers]
    both = " / ".join(similarities)
    header = ["transform", *(f"{s}, {o}" for s, o in pairs)]
    header += [f"lbfgs stationarity ({both})", f"lbfgs cos(jfb, ift) ({both})"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for transform in transforms:
        cells = [_error(found[(transform, s, o, "ift")]) for s, o in pairs]
        lbfgs = [found[(transform, s, "lbfgs", "ift")] for s in similarities]
        cells.append(" / ".join(f"{row['stationarity']:.1e}" for row in lbfgs))
        cells.append(" / ".join(f"{row.get('cosine_jfb_ift', float('nan')):.2f}" for row in lbfgs))
        lines.append(f"| {transform} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--directions", type=int, default=3)
    parser.add_argument("--step", type=float, default=1e-5)
    parser.add_argument("--transforms", nargs="+", default=list(TRANSFORMS))
    parser.add_argument("--similarities", nargs="+", default=["mse", "lncc"])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "lbfgs"])
    parser.add_argument("--backward", nargs="+", default=["jfb", "ift"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--plot", type=Path, help="only redraw the figure of this JSON written by an earlier run")
    args = parser.parse_args()
    if args.plot:
        print(f"written: {plot(json.loads(args.plot.read_text()), args.plot.with_suffix('.png'))}")
        return
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    fixed, moving, weights = problem(tuple(args.shape), seed=0)
    rows = []
    print(
        f"{'transform':9s} {'sim':5s} {'opt':5s} {'mode':5s} {'median rel err':>14s} {'wrong sign':>10s} "
        f"{'zero':>5s} {'s':>6s} {'iters':>5s} {'stationarity':>12s} {'cos(jfb,ift)':>12s}"
    )
    for transform in args.transforms:
        for similarity in args.similarities:
            for optimizer in args.optimizers:
                gradients = {}
                for backward in args.backward:
                    layer = layer_for(transform, similarity, optimizer, backward, args.iterations)
                    row = {
                        "transform": transform,
                        "similarity": similarity,
                        "optimizer": optimizer,
                        "backward": backward,
                        **measure(layer, fixed, moving, weights, args.directions, args.step, seed=1),
                    }
                    gradients[backward] = row.pop("gradient")
                    if {"jfb", "ift"} <= set(gradients):
                        row["cosine_jfb_ift"] = float(
                            torch.nn.functional.cosine_similarity(gradients["jfb"], gradients["ift"], dim=0)
                        )
                    rows.append(row)
                    print(
                        f"{transform:9s} {similarity:5s} {optimizer:5s} {backward:5s} "
                        f"{row['median_relative_error']:14.3g} {row['wrong_sign']:10d} "
                        f"{str(row['gradient_is_zero']):>5s} {row['seconds']:6.2f} {row['iterations_run']:5d} "
                        f"{row['stationarity']:12.3g} {row.get('cosine_jfb_ift', float('nan')):12.3f}"
                    )
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        **provenance(args.threads),
        "shape": args.shape,
        "iterations": args.iterations,
        "rows": rows,
    }
    (args.out / "implicit_fidelity.json").write_text(json.dumps(record, indent=2))
    (args.out / "implicit_fidelity.md").write_text(table(rows))
    print(f"written: {args.out / 'implicit_fidelity.json'}, {plot(record, args.out / 'implicit_fidelity.png')}")


if __name__ == "__main__":
    main()
