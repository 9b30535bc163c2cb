"""What bounding the sampling coordinates costs: forward + backward of ``RegistrationLayer`` with
``spatial.bounded_grid`` (NaN to 0, clamp to +-2; what keeps ``grid_sample`` from crashing on
diverged warps) against the same layer with the bound switched off, in one process, alternating.

    python benchmarks/bounded_sampling.py --threads 2

Writes ``benchmarks/out/bounded_sampling.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from measure import machine, markdown_table

import lightning_reg.solver.geometry.spatial as spatial
from lightning_reg.evaluation.pictures import save_figure
from lightning_reg.solver import RegistrationLayer

SETTINGS = [((64, 64), (100, 50, 20)), ((48, 48, 48), (50, 25, 10))]


def _pyramid(features: torch.Tensor) -> list[torch.Tensor]:
    mode = "bilinear" if features.dim() == 4 else "trilinear"
    return [F.interpolate(features, scale_factor=1 / scale, mode=mode) for scale in (4, 2)] + [features]


def _seconds(layer: RegistrationLayer, fixed: torch.Tensor, moving: torch.Tensor) -> float:
    start = time.perf_counter()
    results = layer(_pyramid(fixed), _pyramid(moving))
    results[-1].grid.sum().backward()
    return time.perf_counter() - start


def measure(shape: tuple[int, ...], iterations: tuple[int, ...], repeats: int) -> dict:
    """Best-of-``repeats`` seconds with and without the bound (alternating, after one warm-up each)."""
    torch.manual_seed(0)
    fixed = torch.rand(1, 16, *shape, requires_grad=True)
    moving = torch.rand(1, 16, *shape, requires_grad=True)
    layer = RegistrationLayer(iterations=iterations, tolerance=0)
    bounded = spatial.bounded_grid
    times = {"bounded": [], "unbounded": []}
    try:
        for index in range(2 * (repeats + 1)):
            name = ("bounded", "unbounded")[index % 2]
            spatial.bounded_grid = bounded if name == "bounded" else (lambda grid: grid)
            seconds = _seconds(layer, fixed, moving)
            if index >= 2:
                times[name].append(seconds)
    finally:
        spatial.bounded_grid = bounded
    best = {name: min(values) for name, values in times.items()}
    return {
        "shape": list(shape),
        "iterations": list(iterations),
        "channels": 16,
        **best,
        "ratio": best["bounded"] / best["unbounded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(shape, iterations, args.repeats) for shape, iterations in SETTINGS]
    record = {"machine": machine("cpu"), "threads": args.threads, "torch": torch.__version__, "rows": rows}
    table = markdown_table(
        rows,
        [
            ("shape", lambda r: "x".join(map(str, r["shape"]))),
            ("iterations", lambda r: ", ".join(map(str, r["iterations"]))),
            ("bounded s", lambda r: f"{r['bounded']:.3f}"),
            ("unbounded s", lambda r: f"{r['unbounded']:.3f}"),
            ("ratio", lambda r: f"{r['ratio']:.3f}"),
        ],
        ["shape"],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bounded_sampling.json").write_text(json.dumps(record, indent=2))
    (args.out / "bounded_sampling.md").write_text(table + "\n")
    figure = Figure(figsize=(5, 3.2))
    axis = figure.subplots()
    axis.bar(["x".join(map(str, row["shape"])) for row in rows], [row["ratio"] for row in rows])
    axis.axhline(1.0, color="gray", linewidth=0.8)
    axis.set_ylabel("time bounded / unbounded")
    axis.set_title(f"layer forward + backward, {record['machine'][:40]}", fontsize=8)
    figure.tight_layout()
    save_figure(figure, args.out / "bounded_sampling.png")
    print(table)


if __name__ == "__main__":
    main()
