"""Dice versus seconds over iteration budgets: our greedy solver, PICSL Greedy and FireANTs' greedy
at the same budgets (scales 4/2/1), ConvexAdam at its defaults; 3D real anatomy at 2 mm, 82 DK
labels, one process and ``--threads`` threads for every method. Prints, for each Greedy and FireANTs
point, our cheapest budget at or above its Dice and the time ratio; writes JSON, a markdown table and
the plot.

``--pairs-from validation`` renders the validation donor against the three training donors (both
directions, the held-out images' T1-like recipe): presets and defaults are chosen there.
``--pairs-from test`` is the six held-out pairs: reported, never tuned on.

    python -m lightning_reg.anatomy brains        # once
    pip install -e ".[bench]"
    python benchmarks/pareto.py --brains brains --pairs-from validation --threads 1
    python benchmarks/pareto.py --brains brains --pairs-from test --threads 1 [--methods ours picsl-greedy]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from itertools import permutations
from pathlib import Path

import numpy as np
import torch
from measure import provenance
from real_brains import (
    _fireants,
    _ours,
    _picsl_greedy,
    label_groups,
    prompt_labels,
    render_donor,
    run_convexadam,
    run_none,
    score,
)

from lightning_reg.data.brains.cohort import TRAIN_DONORS, VAL_DONORS
from lightning_reg.data.brains.datamodule import HeldOutPairs, slice_affine

#: iteration budgets per scale (4/2/1), coarse to fine; 100x50x10 is Greedy's brain quick start
BUDGETS = ("25x12x5", "50x25x10", "100x50x10", "200x100x50")
RUNNERS = {
    "ours": lambda budget: _ours("greedy", iterations=budget),
    "picsl-greedy": lambda budget: _picsl_greedy("x".join(map(str, budget))),
    "fireants": lambda budget: _fireants("greedy", budget),
}
LABELS = {
    "none": "no registration",
    "ours": "lightning_reg greedy",
    "picsl-greedy": "PICSL Greedy",
    "fireants": "FireANTs greedy",
    "convexadam": "ConvexAdam (defaults)",
}


def validation_pairs(brains: Path) -> list[dict]:
    """The validation donor against every training donor, both directions (6 pairs), as
    ``HeldOutPairs`` items."""
    subjects = {}
    for donor in (*VAL_DONORS, *TRAIN_DONORS):
        image, labels, _ = render_donor(brains, donor)
        subjects[donor] = (torch.as_tensor(image)[None], torch.as_tensor(labels).long()[None])
    affine = slice_affine(3)
    return [
        {
            "id": f"{fixed}-{moving}",
            "fixed": subjects[fixed][0],
            "moving": subjects[moving][0],
            "fixed_seg": subjects[fixed][1],
            "moving_seg": subjects[moving][1],
            "fixed_affine": affine,
            "moving_affine": affine,
        }
        for fixed, moving in permutations(subjects, 2)
        if VAL_DONORS[0] in (fixed, moving)
    ]


def points(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Mean Dice, HD95 and seconds per ``method budget`` key over its pairs."""
    return {
        key: {
            **{name: float(np.mean([row[name] for row in pairs])) for name in ("dice", "hd95", "seconds")},
            "pairs": len(pairs),
        }
        for key, pairs in rows.items()
        if pairs
    }


def comparisons(summary: dict[str, dict]) -> list[dict]:
    """For each peer point: our fastest point at or above its Dice, and the time ratio ours / theirs."""
    ours = sorted((point["seconds"], key) for key, point in summary.items() if key.startswith("ours "))
    found = []
    for key, point in summary.items():
        if key.startswith("ours ") or key == "none":
            continue
        match = next((name for seconds, name in ours if summary[name]["dice"] >= point["dice"]), None)
        found.append(
            {
                "peer": key,
                "peer_dice": point["dice"],
                "peer_seconds": point["seconds"],
                "ours": match,
                "ours_dice": summary[match]["dice"] if match else None,
                "time_ratio": summary[match]["seconds"] / point["seconds"] if match else None,
            }
        )
    return found


def write_outputs(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"pareto_3d_{record['pairs_from']}"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2))
    lines = ["| method | budget | Dice | HD95 mm | s/pair |", "|---|---|---|---|---|"]
    for key, point in record["summary"].items():
        method, _, budget = key.partition(" ")
        lines.append(
            f"| {LABELS[method]} | {budget or '-'} | {point['dice']:.3f} | {point['hd95']:.2f} | "
            f"{point['seconds']:.1f} |"
        )
    lines += [
        "",
        "| peer point | its Dice | its s | our fastest point at >= its Dice | our Dice | time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["comparisons"]:
        ratio = f"{row['time_ratio']:.2f}x" if row["ours"] else "none"
        lines.append(
            f"| {row['peer']} | {row['peer_dice']:.3f} | {row['peer_seconds']:.1f} | {row['ours'] or '-'} | "
            f"{row['ours_dice'] or float('nan'):.3f} | {ratio} |"
        )
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    if "none" in record["summary"]:
        axis.axhline(record["summary"]["none"]["dice"], color="grey", linestyle="--", label=LABELS["none"])
    for method in LABELS:
        keys = [key for key in record["summary"] if key.split(" ")[0] == method]
        if not keys or method == "none":
            continue
        xs = [record["summary"][key]["seconds"] for key in keys]
        ys = [record["summary"][key]["dice"] for key in keys]
        axis.plot(xs, ys, marker="o", label=LABELS[method])
        for index, (key, x, y) in enumerate(zip(keys, xs, ys)):  # alternate sides: close budgets overlap
            axis.annotate(
                key.partition(" ")[2],
                (x, y),
                fontsize=7,
                xytext=(3, -10 if index % 2 == 0 else 5),
                textcoords="offset points",
            )
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel(f"seconds per pair ({record['threads']} thread{'s' if record['threads'] > 1 else ''})")
    axis.set_ylabel("mean Dice, 82 DK labels")
    axis.set_title(f"3D, 2 mm, {record['pairs_from']} pairs ({record['pair_count']})", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(out / f"{stem}.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True, help="the folder python -m lightning_reg.anatomy wrote")
    parser.add_argument("--pairs-from", choices=("validation", "test"), required=True)
    parser.add_argument(
        "--methods", nargs="+", choices=["none", *RUNNERS, "convexadam"], default=["none", *RUNNERS, "convexadam"]
    )
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS), help="iterations per scale, e.g. 100x50x10")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="JSON of earlier runs of the same pairs "
        "and threads (e.g. other methods on the other core) to join into this one's outputs",
    )
    args = parser.parse_args()
    if not (args.brains / "dk_labels.csv").is_file():
        parser.error(f"{args.brains} is not a built real-anatomy folder: python -m lightning_reg.anatomy {args.brains}")
    budgets = []
    for text in args.budgets:
        try:
            budgets.append([int(n) for n in text.split("x")])
        except ValueError:
            parser.error(f"--budgets {text}: write iterations per scale as 100x50x10")
        if len(budgets[-1]) != 3:
            parser.error(f"--budgets {text}: three scales (4/2/1), e.g. 100x50x10")
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(args.threads))
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    pairs = validation_pairs(args.brains) if args.pairs_from == "validation" else HeldOutPairs(args.brains, 3)
    groups = label_groups(args.brains, "dk")
    runs = [("none", run_none)] if "none" in args.methods else []
    runs += [
        (f"{method} {'x'.join(map(str, budget))}", RUNNERS[method](budget))
        for method in args.methods
        if method in RUNNERS
        for budget in budgets
    ]
    if "convexadam" in args.methods:
        runs.append(("convexadam", run_convexadam))
    rows: dict[str, list[dict]] = {key: [] for key, _ in runs}
    for index in range(min(args.pairs, len(pairs))):
        pair = pairs[index]
        pair["prompt_labels"] = prompt_labels(pair, groups["subcortical"])
        for key, run in runs:
            warped, result, seconds = run(pair, {})
            rows[key].append(score(pair, warped, result, seconds, groups))
            print(f"{pair['id']:>18} {key:>24}: Dice {rows[key][-1]['dice']:.3f}, {seconds:.1f} s", flush=True)
    for path in args.merge:
        if not path.is_file():
            parser.error(f"--merge {path}: no such file (a run writes pareto_3d_<pairs-from>.json into its --out)")
        earlier = json.loads(path.read_text())
        if (earlier["pairs_from"], earlier["threads"]) != (args.pairs_from, args.threads):
            parser.error(f"{path} is of other pairs or threads; merge only runs of the same set-up")
        rows = {**earlier["pairs"], **{key: found for key, found in rows.items() if found}}
    order = list(LABELS)
    rows = dict(sorted(rows.items(), key=lambda item: (order.index(item[0].split(" ")[0]), len(item[0]), item[0])))
    summary = points(rows)
    record = {
        "pairs_from": args.pairs_from,
        "pair_count": max(point["pairs"] for point in summary.values()),
        "threads": args.threads,
        **provenance(args.threads),
        "summary": summary,
        "comparisons": comparisons(summary),
        "pairs": rows,
    }
    write_outputs(args.out, record)
    for row in record["comparisons"]:
        where = (
            f"ours {row['ours']} Dice {row['ours_dice']:.3f}, time ratio {row['time_ratio']:.2f}x"
            if row["ours"]
            else "no point of ours reaches its Dice"
        )
        print(f"{row['peer']:>24} Dice {row['peer_dice']:.3f} {row['peer_seconds']:.1f} s: {where}")


if __name__ == "__main__":
    main()
