"""Where the learned path's time goes, apart from the command around it: the network's forward pass
(the bundled ``brain3d``, and untrained networks of smaller widths, timing only) and the solve with
``K`` of its learned channels against the classical solve of the image alone, same iterations. Two
training donors rendered T1-like (never the held-out subjects), 96x112x96 at 2 mm.

    python benchmarks/learned_speed.py --brains brains --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import provenance
from real_brains import render_donor
from register_phases import DONORS

from lightning_reg.models import pretrained
from lightning_reg.nn import AddedFeatures
from lightning_reg.solver import register

WIDTHS = ((16, 32, 32, 64), (8, 16, 32, 64), (8, 16, 16, 32))


def best_of(function, *arguments, repeats: int = 2) -> float:
    """The fastest of ``repeats`` calls of ``function(*arguments)``, seconds."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*arguments)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fixed, moving = (torch.as_tensor(render_donor(args.brains, donor)[0])[None, None] for donor in DONORS)
    model = pretrained("brain3d").eval()
    record: dict = {
        **provenance(args.threads),
    }
    networks = {"brain3d (16, 32, 32, 64), 8 learned": model.network}
    for widths in WIDTHS[1:]:
        for learned in (8, 2):
            networks[f"untrained {widths}, {learned} learned"] = AddedFeatures(3, learned=learned, widths=widths).eval()
    summary = {}
    with torch.inference_mode():
        for name, network in networks.items():
            summary[f"forward, one image, {name}"] = {"seconds": best_of(network, fixed)}
        features = model.features(fixed, moving)
    settings = model.eval_solver
    start = time.perf_counter()
    register(fixed, moving, scales=settings.scales or (4, 2, 1), iterations=settings.iterations)
    summary["solve, the image alone (classical)"] = {"seconds": time.perf_counter() - start}
    for kept in (8, 4, 2):
        channels = [0, *range(1, 1 + kept), features[0][0].shape[1] - 1]  # image, K learned, gate
        subset = tuple([level[:, channels] for level in side] for side in features)
        start = time.perf_counter()
        with torch.no_grad():
            model.solve({"fixed": fixed, "moving": moving}, subset, settings)
        summary[f"solve, the image and {kept} learned channels"] = {"seconds": time.perf_counter() - start}
    classical = summary["solve, the image alone (classical)"]["seconds"]
    record["summary"] = summary
    record["ratios"] = {
        f"solve with {kept} learned / classical": summary[f"solve, the image and {kept} learned channels"]["seconds"]
        / classical
        for kept in (8, 4, 2)
    }
    print(json.dumps(record, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_speed.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
