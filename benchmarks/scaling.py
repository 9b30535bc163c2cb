"""Training throughput of `lightning-reg fit` on 1 and 2 processes (DDP), side by side.

Each configuration runs the real command line in a fresh process group: Lightning starts the other
processes itself. The model, solver and losses are `lightning-reg fit`'s defaults; synthetic pairs,
no validation. The first epoch is a warm-up; the later ones are timed between barriers, so an epoch
lasts as long as its slowest process. Throughput counts the pairs of all processes. On the CPU the
cores are shared out: each of P processes gets cores / P threads. Writes ``scaling.json`` (the
record) and ``scaling.md`` into --out and prints ratios.

    python benchmarks/scaling.py --cores 2 --pairs 64 --batch-sizes 1 4
    python benchmarks/scaling.py --device cuda --processes 1 2 --shape 192 192
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from measure import markdown_table, provenance

HERE = Path(__file__).resolve().parent


class EpochTimer(L.Callback):
    """Seconds of every training epoch, between barriers; process 0 writes them to ``out`` (JSON)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.seconds: list[float] = []
        self.start = 0.0

    def _wait(self, trainer: L.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        trainer.strategy.barrier()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._wait(trainer)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._wait(trainer)
        self.seconds.append(time.perf_counter() - self.start)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            pairs = trainer.num_training_batches * trainer.train_dataloader.batch_size * trainer.world_size
            Path(self.out).write_text(
                json.dumps(
                    dict(
                        epoch_seconds=self.seconds,
                        pairs_per_epoch=pairs,
                        processes=trainer.world_size,
                        threads=torch.get_num_threads(),
                    )
                )
            )


def run(processes: int, batch_size: int, args: argparse.Namespace, folder: Path) -> dict:
    """One ``lightning-reg fit`` on ``processes`` processes; epochs after the first are timed."""
    out = folder / f"{args.device}-{processes}-{batch_size}.json"
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    command = [
        sys.executable,
        "-m",
        "lightning_reg.cli",
        "fit",
        "--data.shape",
        json.dumps(args.shape),
        "--data.train_pairs",
        str(args.pairs),
        "--data.batch_size",
        str(batch_size),
        "--trainer.max_epochs",
        str(args.epochs),
        "--trainer.limit_val_batches",
        "0",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(folder / "runs"),
        "--trainer.accelerator",
        accelerator,
        "--trainer.devices",
        str(processes),
        "--trainer.strategy",
        "ddp" if processes > 1 else "auto",
        "--trainer.callbacks+=scaling.EpochTimer",
        "--trainer.callbacks.out",
        str(out),
    ]
    environment = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), WANDB_MODE="disabled"
    )
    if args.device == "cpu":
        environment["OMP_NUM_THREADS"] = str(max(args.cores // processes, 1))
    label = dict(device=args.device, processes=processes, batch_size=batch_size)
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0 or not out.is_file():
        return dict(label, failed=[(done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]])
    measured = json.loads(out.read_text())
    timed = measured["epoch_seconds"][1:]
    seconds = sum(timed) / len(timed)
    return dict(
        label,
        threads=measured["threads"],
        pairs_per_epoch=measured["pairs_per_epoch"],
        epoch_seconds=seconds,
        pairs_per_second=measured["pairs_per_epoch"] / seconds,
    )


def table(rows: list[dict]) -> str:
    """Throughput of each run, and its ratio to one process with the same batch size."""
    one = {row["batch_size"]: row["pairs_per_second"] for row in rows if row["processes"] == 1 and "failed" not in row}
    return markdown_table(
        rows,
        [
            ("device", lambda row: row["device"]),
            ("processes", lambda row: str(row["processes"])),
            ("threads each", lambda row: str(row["threads"])),
            ("batch per process", lambda row: str(row["batch_size"])),
            ("pairs / epoch", lambda row: str(row["pairs_per_epoch"])),
            ("s / epoch", lambda row: f"{row['epoch_seconds']:.1f}"),
            ("pairs / s", lambda row: f"{row['pairs_per_second']:.2f}"),
            ("vs 1 process", lambda row: f"{row['pairs_per_second'] / one[row['batch_size']]:.2f}x"),
        ],
        ["device", "processes", "batch_size"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="CPU cores shared out over the processes")
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--pairs", type=int, default=32, help="training pairs per epoch (all processes together)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1], help="pairs per step and process")
    parser.add_argument("--epochs", type=int, default=3, help="the first is a warm-up")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch is not timed")
    if args.device == "cuda" and max(args.processes) > torch.cuda.device_count():
        parser.error(f"--processes {max(args.processes)} needs as many GPUs, found {torch.cuda.device_count()}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for batch_size in args.batch_sizes:
            for processes in args.processes:
                rows.append(run(processes, batch_size, args, Path(scratch)))
                print(table(rows).splitlines()[-1], flush=True)
    threads = args.cores if args.device == "cpu" else 0
    record = {**provenance(threads, args.device), "shape": args.shape, "pairs": args.pairs, "rows": rows}
    (args.out / "scaling.json").write_text(json.dumps(record, indent=2))
    (args.out / "scaling.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
