"""Training throughput: pairs per second and peak memory of `fit` steps, 2D 192^2 and 3D 96x112x96.

Each setting runs in a fresh process: the default UNet (16 channels at 1/4, 1/2, 1), the training
solver of the configs (freeform, MSE on features, jfb; iterations 100, 50, 20 in 2D and 200, 100, 20
in 3D as in DIO), LNCC + Dice loss, batch 1, synthetic pairs. The first steps are a warm-up and
not timed. Writes JSON, a markdown table and a PNG into --out.

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
from measure import limit_memory, machine, markdown_table, peak_bytes, run_child

from lightning_reg.data import SyntheticDataModule
from lightning_reg.nn import UNet
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.solver_settings import SolverSettings

SETTINGS = {
    "2d": dict(shape=[192, 192], iterations=[100, 50, 20]),
    "3d": dict(shape=[96, 112, 96], iterations=[200, 100, 20]),
}


def measure(name: str, steps: int, warmup: int, device: str) -> dict:
    """Time ``steps`` training steps after ``warmup`` ones; peak memory above the set-up's."""
    setting = SETTINGS[name]
    data = SyntheticDataModule(shape=setting["shape"], train_pairs=steps + warmup, val_pairs=1)
    model = RegistrationModule(network=UNet(dims=len(setting["shape"])),
                               train_solver=SolverSettings(iterations=setting["iterations"]))
    timer = StepTimer(warmup, device)
    trainer = L.Trainer(max_steps=steps + warmup, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        accelerator="gpu" if device == "cuda" else "cpu", devices=1)
    trainer.fit(model, data)
    seconds = sum(timer.seconds)
    return dict(setting=name, shape=setting["shape"], iterations=setting["iterations"], steps=len(timer.seconds),
                pairs_per_second=len(timer.seconds) / seconds, seconds_per_pair=seconds / len(timer.seconds),
                peak_mb=(peak_bytes(device) - timer.baseline) / 2**20)


class StepTimer(L.Callback):
    """Times training steps after the first ``warmup``; records the memory baseline at the start."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup = warmup
        self.device = device
        self.seconds: list[float] = []
        self.baseline = 0
        self.start = 0.0

    def _sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def on_train_start(self, trainer, pl_module) -> None:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            self.baseline = peak_bytes(self.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync()
        if batch_idx >= self.warmup:
            self.seconds.append(time.perf_counter() - self.start)


def table(rows: list[dict]) -> str:
    return markdown_table(rows, [
        ("setting", lambda row: row["setting"]), ("shape", lambda row: "x".join(map(str, row["shape"]))),
        ("solver iterations", lambda row: str(row["iterations"])), ("steps timed", lambda row: str(row["steps"])),
        ("pairs / s", lambda row: f"{row['pairs_per_second']:.3f}"),
        ("s / pair", lambda row: f"{row['seconds_per_pair']:.2f}"),
        ("peak memory MB", lambda row: f"{row['peak_mb']:.0f}")], ["setting"])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [row for row in rows if "failed" not in row]
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(8, 3.5))
    names = [row["setting"] for row in done]
    speed.bar(names, [row["seconds_per_pair"] for row in done])
    speed.set(ylabel="seconds per training pair", title="training speed")
    memory.bar(names, [row["peak_mb"] for row in done], color="tab:orange")
    memory.set(ylabel="peak memory (MB)", title="training memory")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
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
        print(json.dumps(measure(args.child, args.steps, args.warmup, args.device)))
        return
    rows = []
    for name in args.settings:
        arguments = ["--child", name, "--steps", str(args.steps), "--warmup", str(args.warmup), "--device",
                     args.device, "--threads", str(args.threads), "--memory-limit-gb", str(args.memory_limit_gb)]
        rows.append(run_child(__file__, arguments, dict(setting=name), args.memory_limit_gb))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    header = (f"UNet 16 channels at 1/4, 1/2, 1; freeform + MSE, jfb; LNCC + Dice; batch 1; {args.device} "
              f"({machine(args.device)}), {args.threads} threads, torch {torch.__version__}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(dict(setting=header, rows=rows), indent=2))
    markdown = f"{header}\n\n{table(rows)}\n"
    (args.out / "results.md").write_text(markdown)
    plot(rows, args.out / "train_throughput.png")
    print(markdown)


if __name__ == "__main__":
    main()
