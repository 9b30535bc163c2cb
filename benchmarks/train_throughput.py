"""Training throughput: pairs per second and peak memory of `fit` steps, 2D 192^2 and 3D 96x112x96.

Each setting and solver runs in a fresh process: the default UNet (16 channels at 1/4, 1/2, 1),
LNCC + Dice loss, batch 1, synthetic pairs, jfb backward, with two training solvers:

- ``dio``: freeform, MSE on features, iterations 100, 50, 20 in 2D and 200, 100, 20 in 3D (as in DIO,
  and this project's default before issue 17);
- ``default``: the learned layer's defaults (``solver.defaults.LEARNED``; ``lightning-reg fit``'s until issue 41);
- ``mse-short``: MSE on features with the default's iterations;
- ``added``: the design of issue 41: ``AddedFeatures`` (the image and 8 learned channels beside it,
  one level), greedy, the ``added`` similarity (mutual information on the image, its default, and MSE
  on the learned channels), iterations 20, 10, 5 at scales 4, 2, 1;
- ``added-lncc``: the same with LNCC on the image (one contrast).

``3d-crop`` is the 64^3 window the 3D brain config trains on.

Steps are timed in a child with the default allocator, peak memory in a second child (see
``measure.run_child``). The first steps are a warm-up and not timed. The same process then times the feature network
alone (two forward passes and their backward, on the same pair): "layer" is the step's time
minus the network's (solve, jfb backward, warping and losses). Writes JSON, a markdown table and a
PNG into --out.

    python benchmarks/train_throughput.py --threads 2
    python benchmarks/train_throughput.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from measure import limit_memory, machine, markdown_table, peak_bytes, provenance, run_child

from lightning_reg.data import SyntheticDataModule
from lightning_reg.nn import AddedFeatures, UNet
from lightning_reg.solver import LEARNED, SolverOptions
from lightning_reg.training.module import RegistrationModule

SETTINGS = {"2d": [192, 192], "3d": [96, 112, 96], "3d-crop": [64, 64, 64]}
#: training solver -> (similarity, iterations per setting)
SOLVERS = {
    "dio": ("mse", {"2d": [100, 50, 20], "3d": [200, 100, 20]}),
    "default": (LEARNED.similarity, {"2d": list(LEARNED.iterations), "3d": list(LEARNED.iterations)}),
    "mse-short": ("mse", {"2d": list(LEARNED.iterations), "3d": list(LEARNED.iterations)}),
    "added": ("added", {"2d": [20, 10, 5], "3d": [20, 10, 5]}),
    "added-lncc": ("added", {"2d": [20, 10, 5], "3d": [20, 10, 5]}),
}


def training_setup(solver: str, dims: int, iterations: list[int]) -> tuple[torch.nn.Module, SolverOptions]:
    """The network and training solver settings of ``solver``."""
    if solver.startswith("added"):
        image = {"image": "lncc"} if solver == "added-lncc" else {}
        settings = SolverOptions(
            transform="greedy", similarity="added", similarity_options=image, iterations=iterations, scales=[4, 2, 1]
        )
        return AddedFeatures(dims=dims), settings
    return UNet(dims=dims), SolverOptions(similarity=SOLVERS[solver][0], iterations=iterations)


def measure(name: str, solver: str, steps: int, warmup: int, device: str) -> dict:
    """Time ``steps`` training steps after ``warmup`` ones, then the network alone on the same pair;
    peak memory above the set-up's."""
    shape = SETTINGS[name]
    similarity, iterations = SOLVERS[solver][0], SOLVERS[solver][1][name.split("-")[0]]
    data = SyntheticDataModule(shape=shape, train_pairs=steps + warmup, val_pairs=1)
    network, settings = training_setup(solver, len(shape), iterations)
    model = RegistrationModule(network=network, train_solver=settings)
    timer = StepTimer(warmup, device)
    trainer = L.Trainer(
        max_steps=steps + warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
    )
    trainer.fit(model, data)
    seconds = sum(timer.seconds) / len(timer.seconds)
    peak_mb = (peak_bytes(device) - timer.baseline) / 2**20
    network = network_seconds(model, data, steps, device)
    return dict(
        setting=name,
        solver=solver,
        similarity=similarity,
        shape=shape,
        iterations=iterations,
        steps=len(timer.seconds),
        pairs_per_second=1 / seconds,
        seconds_per_pair=seconds,
        network_seconds=network,
        layer_seconds=seconds - network,
        peak_mb=peak_mb,
    )


def network_seconds(model: RegistrationModule, data: SyntheticDataModule, steps: int, device: str) -> float:
    """Median seconds of the feature network's forward on both images and its backward."""
    batch = next(iter(data.train_dataloader()))
    fixed, moving = (batch[key].to(model.device) for key in ("fixed", "moving"))
    times = []
    for _ in range(steps + 1):
        _sync(device)
        start = time.perf_counter()
        features = model.features(fixed, moving)
        sum(level.square().mean() for pyramid in features for level in pyramid).backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Times training steps after the first ``warmup``; records the memory baseline at the start."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup = warmup
        self.device = device
        self.seconds: list[float] = []
        self.baseline = 0
        self.start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            self.baseline = peak_bytes(self.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _sync(self.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _sync(self.device)
        if batch_idx >= self.warmup:
            self.seconds.append(time.perf_counter() - self.start)


def table(rows: list[dict]) -> str:
    return markdown_table(
        rows,
        [
            ("setting", lambda row: row["setting"]),
            ("solver", lambda row: row["solver"]),
            ("shape", lambda row: "x".join(map(str, row["shape"]))),
            ("similarity, iterations", lambda row: f"{row['similarity']} {row['iterations']}"),
            ("steps timed", lambda row: str(row["steps"])),
            ("pairs / s", lambda row: f"{row['pairs_per_second']:.3f}"),
            ("s / pair", lambda row: f"{row['seconds_per_pair']:.2f}"),
            ("network s", lambda row: f"{row['network_seconds']:.2f}"),
            ("layer s", lambda row: f"{row['layer_seconds']:.2f}"),
            ("layer / network", lambda row: f"{row['layer_seconds'] / row['network_seconds']:.1f}"),
            ("peak memory MB", lambda row: f"{row['peak_mb']:.0f}"),
        ],
        ["setting", "solver"],
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in rows if "failed" not in row]
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(8, 3.5))
    names = [f"{row['setting']} {row['solver']}" for row in done]
    networks = [row["network_seconds"] for row in done]
    speed.bar(names, networks, label="network")
    speed.bar(names, [row["layer_seconds"] for row in done], bottom=networks, label="optimization layer")
    speed.set(ylabel="seconds per training pair", title="training speed", yscale="log")
    speed.legend()
    memory.bar(names, [row["peak_mb"] for row in done], color="tab:orange")
    memory.set(ylabel="peak memory (MB)", title="training memory")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per setting")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit-gb", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_throughput"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        if args.device == "cpu":
            limit_memory(args.memory_limit_gb)
        name, solver = args.child.split(":")
        print(json.dumps(measure(name, solver, args.steps, args.warmup, args.device)))
        return
    rows = []
    for name in args.settings:
        for solver in args.solvers:
            arguments = [
                "--child",
                f"{name}:{solver}",
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--memory-limit-gb",
                str(args.memory_limit_gb),
            ]
            label = dict(setting=name, solver=solver)
            row = run_child(__file__, arguments, label, args.memory_limit_gb, exact_memory=False)
            if "failed" not in row:  # the peak of live tensors, from a second child (see run_child)
                steps = arguments.index("--steps") + 1
                memory = run_child(
                    __file__, [*arguments[:steps], "1", *arguments[steps + 1 :]], label, args.memory_limit_gb
                )
                row["peak_mb"] = memory.get("peak_mb", float("nan"))
            rows.append(row)
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    header = (
        "networks and solvers as named in the module's docstring; jfb; batch 1; Dice (and LNCC) loss; "
        f"{args.device} "
        f"({machine(args.device)}), {args.threads} threads, torch {torch.__version__}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    record = dict(provenance(args.threads, args.device), setting=header, rows=rows)
    (args.out / "results.json").write_text(json.dumps(record, indent=2))
    markdown = f"{header}\n\n{table(rows)}\n"
    (args.out / "results.md").write_text(markdown)
    plot(rows, args.out / "train_throughput.png")
    print(markdown)


if __name__ == "__main__":
    main()
