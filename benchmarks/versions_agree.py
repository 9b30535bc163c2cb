"""Do two checkouts of lightning_reg give the same registrations? For refactors that must not change
behaviour: classical ``register()`` on synthetic 2D and 3D pairs (greedy, svf, bspline, an affine+greedy
plan, freeform by L-BFGS with its line search; 3D with oblique headers) and, with ``--checkpoint``, a model's
evaluation, training levels, test-time scales and gradients; prints max |difference| and the time
ratio (new / old: the fastest of ``--repeats`` calls in each of ``--rounds`` processes, the two
versions' processes taking turns, so that neither always runs on a warmer machine).

    git worktree add /tmp/old <commit>
    python benchmarks/versions_agree.py --old /tmp/old [--checkpoint run/checkpoints/last.ckpt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

#: run inside each checkout (its folder first on sys.path): saves {case: (tensor, seconds)}
CASES = r"""
import sys, time, torch
tree, out, checkpoint, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
from lightning_reg.solver import register
from lightning_reg.data.synthetic import oblique_affine, warped_pair
torch.set_num_threads(2)
found = {}
CLASSICAL_CASES = [
    ((48, 48), "greedy", {}),
    ((48, 48), "svf", {}),
    ((48, 48), "bspline", {}),
    ((48, 48), "affine+greedy", {}),
    ((48, 48), "freeform", {"optimizer": "lbfgs", "regularizer": "diffusion", "regularizer_weight": 0.1}),
    ((32, 36, 28), "greedy", {}),
]
for shape, transform, extra in CLASSICAL_CASES:
    pair = warped_pair(shape, magnitude=2.0, seed=3)
    options = dict(extra)
    if len(shape) == 3:
        affine = torch.tensor(oblique_affine(origin=(3.0, -2.0, 1.0)))
        options.update(fixed_affine=affine, moving_affine=affine)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = register(pair["fixed"], pair["moving"], transform=transform, **options)
        times.append(time.perf_counter() - start)
    found[f"register {transform} {extra.get('optimizer', '')} {shape}".replace("  ", " ")] = (result.grid, min(times))
if checkpoint:
    from lightning_reg.data import SyntheticDataModule
    try:
        from lightning_reg.training.module import RegistrationModule
    except ImportError:  # before 0.2
        from lightning_reg.module import RegistrationModule
    model = RegistrationModule.load_from_checkpoint(checkpoint).eval()
    data = SyntheticDataModule(shape=(32, 32), test_pairs=2)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    with torch.no_grad():
        found["model eval"] = (model(batch).grid, 0.0)
        for level, result in enumerate(model.register(batch, model.train_solver)):
            found[f"model train level {level}"] = (result.grid, 0.0)
        switched = model.with_eval_solver(scales=[8, 4, 1], iterations=[5])
        found["model test-time scales 8 4 1"] = (switched(batch).grid, 0.0)
    model.train()
    results = model.solve(batch, model.features(batch["fixed"], batch["moving"]), model.train_solver)
    sum(result.grid.square().mean() for result in results).backward()
    found["model gradients"] = (torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), 0.0)
torch.save(found, out)
"""


def run(tree: Path, checkpoint: str, repeats: int, out: Path) -> dict:
    """The cases of :data:`CASES` run on checkout ``tree`` in a new process."""
    subprocess.run([sys.executable, "-c", CASES, str(tree), str(out), checkpoint, str(repeats)], check=True)
    return torch.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="the other checkout (its root folder)")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1], help="default: this one")
    parser.add_argument("--checkpoint", default="", help="a 2D 32x32 model checkpoint both versions can load")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    old, new = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.rounds):
            order = [(old, args.old), (new, args.new)][:: 1 if index % 2 == 0 else -1]
            for found, tree in order:
                for case, (tensor, seconds) in run(
                    tree.resolve(), args.checkpoint if index == 0 else "", args.repeats, Path(folder) / "cases.pt"
                ).items():
                    found[case] = (tensor, min(seconds, found.get(case, (None, seconds))[1]))
    print(f"{'case':40s} {'max |new - old|':>16s} {'new/old time':>13s}")
    for case, (tensor, seconds) in old.items():
        other, other_seconds = new[case]
        ratio = f"{other_seconds / seconds:.2f}" if seconds else "-"
        print(f"{case:40s} {float((other - tensor).abs().max()):16.3g} {ratio:>13s}")


if __name__ == "__main__":
    main()
