"""Side by side: peak memory and time of forward + backward through the implicit layer, per mode.

One 3D problem (default 64^3, 16 feature channels, freeform + MSE, Adam, every iteration run),
solver iterations 20, 50, 100, 200, backward modes jfb, ift, unroll. Each (mode, iterations) runs
in a fresh process on the CPU, so its peak resident memory (``ru_maxrss``) is its own (glibc is
told to map large blocks, so freed tensors leave the resident set at once); on CUDA the allocator's
peak is used. Memory is reported above the baseline after a warm-up. A run that needs more than
--memory-limit-gb fails with a recorded out-of-memory instead of taking the machine down. Writes JSON, a markdown
table and a PNG into --out; prints the ratios the targets speak of.

    python benchmarks/implicit_backward.py --threads 2
    python benchmarks/implicit_backward.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import limit_memory, machine, markdown_table, peak_bytes, provenance, run_child

MODES = ("jfb", "ift", "unroll")


def problem(size: int, channels: int, device: str):
    """Fixed/moving features ``[1, C, s, s, s]``, the images the loss compares, both seeded."""
    from lightning_reg.data.synthetic import smooth_noise, warped_pair

    pair = warped_pair((size,) * 3, magnitude=2.0, seed=0)
    generator = torch.Generator().manual_seed(1)
    mix = smooth_noise((size,) * 3, channels, 4.0, generator)
    fixed = torch.cat([pair["fixed"] * mix[:, i : i + 1] for i in range(channels)], 1)
    moving = torch.cat([pair["moving"] * mix[:, i : i + 1] for i in range(channels)], 1)
    return (fixed.to(device), moving.to(device), pair["fixed"].to(device), pair["moving"].to(device))


def measure(mode: str, iterations: int, size: int, channels: int, device: str) -> dict:
    """Forward and backward seconds and peak memory (bytes above the inputs) of one run."""
    from lightning_reg.solver import RegistrationLayer
    from lightning_reg.solver.geometry.spatial import sample
    from lightning_reg.solver.loop.implicit import take_cg_reports

    fixed, moving, fixed_image, moving_image = problem(size, channels, device)
    fixed.requires_grad_(True)
    moving.requires_grad_(True)
    layer = RegistrationLayer("freeform", "mse", iterations=[iterations], backward=mode, tolerance=0)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = peak_bytes(device)
    start = time.perf_counter()
    result = layer([fixed], [moving])[-1]
    loss = (fixed_image - sample(moving_image, result.grid)).pow(2).mean()
    if device == "cuda":
        torch.cuda.synchronize()
    middle = time.perf_counter()
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    end = time.perf_counter()
    reports = take_cg_reports()  # ift: how far its conjugate gradient got with the default settings
    return dict(
        mode=mode,
        iterations=iterations,
        forward_s=middle - start,
        backward_s=end - middle,
        peak_mb=(peak_bytes(device) - baseline) / 2**20,
        gradient_norm=float(torch.cat([fixed.grad.flatten(), moving.grad.flatten()]).norm()),
        gradient=torch.cat([fixed.grad.flatten(), moving.grad.flatten()])[::997].tolist(),
        cg_iterations=sum(report.iterations for report in reports),
        cg_relative_residual=max((report.relative_residual for report in reports), default=None),
    )


def run_one(mode: str, iterations: int, args) -> dict:
    """``measure`` in a fresh process (clean peak memory)."""
    arguments = [
        "--child",
        mode,
        str(iterations),
        "--size",
        str(args.size),
        "--channels",
        str(args.channels),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--memory-limit-gb",
        str(args.memory_limit_gb),
    ]
    return run_child(__file__, arguments, dict(mode=mode, iterations=iterations), args.memory_limit_gb)


def table(rows: list[dict]) -> str:
    return markdown_table(
        rows,
        [
            ("mode", lambda row: row["mode"]),
            ("iterations", lambda row: str(row["iterations"])),
            ("forward s", lambda row: f"{row['forward_s']:.2f}"),
            ("backward s", lambda row: f"{row['backward_s']:.2f}"),
            ("backward / forward", lambda row: f"{row['backward_s'] / row['forward_s']:.3f}"),
            ("peak memory MB", lambda row: f"{row['peak_mb']:.0f}"),
        ],
        ["mode", "iterations"],
    )


def ratios(rows: list[dict], counts: list[int]) -> list[str]:
    """The targets: jfb/ift memory flat in the iterations, <= 1/10 of unroll's; jfb backward < 10 %."""
    ok = {(r["mode"], r["iterations"]): r for r in rows if "failed" not in r}
    lines = []
    for mode in ("jfb", "ift"):
        peaks = [ok[(mode, n)]["peak_mb"] for n in counts if (mode, n) in ok]
        if peaks:
            lines.append(
                f"{mode}: peak memory spread across iterations {max(peaks) / max(min(peaks), 1e-9):.3f}x "
                f"(target <= 1.10x)"
            )
        last = (mode, counts[-1])
        if last in ok and ("unroll", counts[-1]) in ok:
            lines.append(
                f"{mode}/unroll peak memory at {counts[-1]} iterations: "
                f"{ok[last]['peak_mb'] / ok[('unroll', counts[-1])]['peak_mb']:.3f} (target <= 0.10)"
            )
    for n in counts:
        if ("jfb", n) in ok:
            row = ok[("jfb", n)]
            lines.append(
                f"jfb backward / forward at {n} iterations: {row['backward_s'] / row['forward_s']:.3f} (target < 0.10)"
            )
        if ("jfb", n) in ok and ("ift", n) in ok:
            jfb, ift = ok[("jfb", n)], ok[("ift", n)]
            agreement = torch.nn.functional.cosine_similarity(
                torch.tensor(jfb["gradient"]), torch.tensor(ift["gradient"]), dim=0
            )
            reached = ift["cg_relative_residual"]
            lines.append(
                f"ift backward / jfb backward at {n} iterations: {ift['backward_s'] / jfb['backward_s']:.1f}x "
                f"(ift's conjugate gradient: {ift['cg_iterations']} iterations, relative residual "
                f"{'-' if reached is None else f'{reached:.1g}'}); cosine of their feature gradients (every "
                f"997th value) {float(agreement):.3f}"
            )
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, seconds) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in MODES:
        done = [r for r in rows if r["mode"] == mode and "failed" not in r]
        if not done:
            continue
        counts = [r["iterations"] for r in done]
        memory.plot(counts, [r["peak_mb"] for r in done], marker="o", label=mode)
        seconds.plot(counts, [r["backward_s"] for r in done], marker="o", label=f"{mode} backward")
    forward = [r for r in rows if r["mode"] == "jfb" and "failed" not in r]
    seconds.plot([r["iterations"] for r in forward], [r["forward_s"] for r in forward], "k--", label="forward solve")
    memory.set(
        xlabel="solver iterations",
        ylabel="peak memory above inputs (MB)",
        yscale="log",
        title="memory of forward + backward",
    )
    seconds.set(xlabel="solver iterations", ylabel="seconds", yscale="log", title="time")
    memory.legend()
    seconds.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="edge of the cubic volume (voxels)")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--iterations", type=int, nargs="+", default=[20, 50, 100, 200])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit-gb", type=float, default=20.0, help="address-space cap of each CPU run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/implicit_backward"))
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ITERATIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        if args.device == "cpu":
            limit_memory(args.memory_limit_gb)
        measure(args.child[0], 2, 8, args.channels, args.device)  # warm-up: first-call costs are not the mode's
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.size, args.channels, args.device)))
        return
    rows = []
    for mode in args.modes:
        for count in args.iterations:
            row = run_one(mode, count, args)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    header = (
        f"{args.size}^3 voxels, {args.channels} channels, freeform + MSE, Adam; {args.device} "
        f"({machine(args.device)}), {args.threads} threads, torch {torch.__version__}"
    )
    summary = ratios(rows, args.iterations)
    args.out.mkdir(parents=True, exist_ok=True)
    record = dict(provenance(args.threads, args.device), setting=header, rows=rows, ratios=summary)
    (args.out / "results.json").write_text(json.dumps(record, indent=2))
    markdown = f"{header}\n\n{table(rows)}\n\n" + "\n".join(f"- {line}" for line in summary) + "\n"
    (args.out / "results.md").write_text(markdown)
    plot(rows, args.out / "implicit_backward.png")
    print(markdown)


if __name__ == "__main__":
    main()
