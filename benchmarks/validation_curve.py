"""Validation Dice against training steps, read from the logs of ``lightning-reg fit`` (the plain
lines it writes when stderr is a file; a run resumed with ``--ckpt_path last`` in chunks gives one log
per chunk, read in order), so the budget a model needs is visible. The untrained start (``lightning-reg
validate`` of the same config: for features that start as the classical solver, the classical Dice)
is drawn as a line. Writes JSON and a PNG into --out.

    python benchmarks/validation_curve.py --run brain3d fit1.log fit2.log --start 0.412 --out benchmarks/out
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

#: an epoch's last line: ``epoch 3: 400 steps (271 s): train/loss 1.241, val/dice 0.4167``
EPOCH = re.compile(r"^epoch (\d+): (\d+) steps \(([\d.]+) s\):.*val/dice ([\d.]+)")


def curve(logs: list[Path]) -> list[dict]:
    """One point per finished epoch of the logs (chunks of one run, in order): its epoch, the steps
    trained so far, the seconds so far and the validation Dice after it."""
    points, steps, seconds, seen = [], 0, 0.0, set()
    for log in logs:
        for line in log.read_text().splitlines():
            found = EPOCH.match(line.strip())
            if found and int(found[1]) not in seen:  # a resumed chunk never repeats a finished epoch
                seen.add(int(found[1]))
                steps, seconds = steps + int(found[2]), seconds + float(found[3])
                points.append({"epoch": int(found[1]), "steps": steps, "seconds": seconds, "val_dice": float(found[4])})
    return points


def plot(runs: dict[str, list[dict]], start: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.0, 3.4))
    for name, points in runs.items():
        axis.plot(
            [0] + [p["steps"] for p in points] if start is not None else [p["steps"] for p in points],
            ([start] if start is not None else []) + [p["val_dice"] for p in points],
            marker="o",
            label=name,
        )
    if start is not None:
        axis.axhline(start, color="grey", linestyle="--", label="untrained (classical)")
    axis.set_xlabel("training steps")
    axis.set_ylabel("validation Dice")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "LOG"),
        help="a run's name and its fit logs in order (repeat for several runs)",
    )
    parser.add_argument("--start", type=float, help="validation Dice of the untrained model")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--name", default="validation_curve", help="file name of the outputs, without suffix")
    args = parser.parse_args()
    runs = {}
    for name, *logs in args.run:
        if not logs:
            parser.error(f"--run {name} needs at least one log")
        runs[name] = curve([Path(log) for log in logs])
        if not runs[name]:
            parser.error(f"no finished epoch with a val/dice in {', '.join(logs)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps({"start": args.start, "runs": runs}, indent=2))
    plot(runs, args.start, args.out / f"{args.name}.png")
    for name, points in runs.items():
        best = max(points, key=lambda p: p["val_dice"])
        start = "" if args.start is None else f", start {args.start:.4f}"
        print(
            f"{name}: {len(points)} epochs, {points[-1]['steps']} steps, last {points[-1]['val_dice']:.4f}, "
            f"best {best['val_dice']:.4f} (epoch {best['epoch']}){start}"
        )


if __name__ == "__main__":
    main()
