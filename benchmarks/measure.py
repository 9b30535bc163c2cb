"""Shared by the benchmark scripts: peak memory of a run in a fresh process, the machine's name, a
record's provenance, a markdown table, and training a model to a checkpoint."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch


def peak_bytes(device: str) -> int:
    """Peak allocated CUDA memory, or this process's peak resident set on the CPU."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def limit_memory(gigabytes: float) -> None:
    """Cap this process's address space, so a run that needs too much fails instead of the machine."""
    limit = int(gigabytes * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_child(
    script: str, arguments: list[str], label: dict, memory_limit_gb: float, exact_memory: bool = True
) -> dict:
    """Run ``script arguments`` in a fresh Python process and parse the JSON of its last line.

    With ``exact_memory`` glibc is told to map large blocks, so freed tensors leave the resident set
    at once and the peak resident memory tracks live tensors; that makes every freed tensor above
    128 KiB a system call, which slows loops of many mid-sized tensors (the solver's) 1.5-2x, so time
    in a child without it. A failure comes back as ``label`` plus ``failed``.
    """
    tuned = dict(MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072") if exact_memory else {}
    environment = dict(os.environ, **tuned)
    done = subprocess.run(
        [sys.executable, script, *arguments], capture_output=True, text=True, env=environment, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = (
            "out of memory"
            if any("memory" in line.lower() for line in lines[-3:])
            else (lines[-1] if lines else f"exit {done.returncode}")
        )
        return dict(label, failed=[f"{reason} (limit {memory_limit_gb:g} GB)"])
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine(device: str) -> str:
    """The GPU's name, or the CPU model as Linux reports it (else the architecture)."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
        if line.startswith("model name")
    ]
    return names[0] if names else (platform.processor() or platform.machine())


def provenance(threads: int, device: str = "cpu", pinned: bool = False) -> dict:
    """The date, machine and command line a record carries; the docs show them beside its figures."""
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{machine(device)}, {threads} thread(s){', pinned' if pinned else ''}, torch {torch.__version__}",
        "command": shlex.join(["python", *sys.argv]),
    }


def markdown_table(rows: list[dict], columns: list[tuple[str, object]], label_keys: list[str]) -> str:
    """A markdown table: ``columns`` are ``(title, row -> text)``; a failed row shows its
    ``label_keys`` values and the failure in place of the rest."""
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if "failed" in row:
            cells = [str(row.get(key, "-")) for key in label_keys]
            cells += ["-"] * (len(columns) - len(cells) - 1) + [f"failed: {row['failed'][0][:60]}"]
        else:
            cells = [describe(row) for _, describe in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fit_and_save(model, datamodule, epochs: int, device: str, path: Path):
    """Train ``model`` (a LightningModule) for ``epochs`` on ``datamodule``, seeded, without validation
    or logging; save the checkpoint to ``path``; print the time. Returns the model."""
    import lightning as L

    L.seed_everything(0)
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule)
    print(f"trained {path.stem}: {time.perf_counter() - start:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return model
