"""Shared by the benchmark scripts: peak memory of a run in a fresh process, and the machine's name."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys

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


def run_child(script: str, arguments: list[str], label: dict, memory_limit_gb: float) -> dict:
    """Run ``script arguments`` in a fresh Python process and parse the JSON of its last line.

    glibc is told to map large blocks, so freed tensors leave the resident set at once and the
    peak resident memory tracks live tensors. A failure comes back as ``label`` plus ``failed``.
    """
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True, env=environment,
                          check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = "out of memory" if any("memory" in line.lower() for line in lines[-3:]) else \
            (lines[-1] if lines else f"exit {done.returncode}")
        return dict(label, failed=[f"{reason} (limit {memory_limit_gb:g} GB)"])
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())


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
