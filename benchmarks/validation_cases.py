"""Learned against classical on the validation anatomies only (never the held-out subjects): the four
cases of issue 41, each a set of rendered pairs of the validation maps (aseg labels; default
training_seg_14 and 15, both directions, several renderings) or of the validation donor (DK labels):

  (a) same contrast: both images rendered with a perturbed T1-like tissue table;
  (b) across contrasts: T1-like fixed, T2-like moving (the classical solver with mutual information);
  (c) thick slices: as (a), the moving image with 3x thicker slices (6 mm) along a random axis;
  (d) the donor's DK parcels: two warps of the validation donor, T1-like, scored on 82 DK labels.

Each pair is scored (mean Dice over its labels, folding %) for the classical solver (greedy, 200/100/50,
tolerance 1e-6; LNCC and MI) and the learned model (its evaluation settings); JSON + markdown with the
per-pair spread. ``--oracle`` adds the ceiling of pre-training: an ``AddedFeatures`` model's solve with
its learned channels replaced by the exact structure codes of the pair's labels (what pre-training
regresses; ``training/structure_codes.py``).

    python benchmarks/validation_cases.py --brains brains --label-maps ../shared/data/synthseg-label-maps \
        --checkpoint runs/.../best.ckpt --dims 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from measure import markdown_table, provenance

from lightning_reg.data.brains.anisotropy import thicken
from lightning_reg.data.brains.datamodule import BrainDataModule, BrainPairs
from lightning_reg.data.brains.grid import TISSUE
from lightning_reg.data.brains.structures import structure_table
from lightning_reg.data.brains.tissue_tables import table_means
from lightning_reg.data.synthmorph import render
from lightning_reg.evaluation.rows import pair_rows
from lightning_reg.nn import AddedFeatures
from lightning_reg.solver import register
from lightning_reg.solver.result import LABEL_MODE
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.structure_codes import structure_codes

CASES = {"a": "same contrast (T1)", "b": "T1 fixed, T2 moving", "c": "thick-slice moving (6 mm)", "d": "donor DK (T1)"}
CLASSICAL = dict(transform="greedy", scales=(4, 2, 1), iterations=(200, 100, 50), tolerance=1e-6)


def case_pairs(data: BrainDataModule, case: str, renderings: int, dims: int) -> list[dict]:
    """The pairs of one case, seeded (the same pairs for every method and every run)."""
    dataset: BrainPairs = data.val_dataloader().dataset
    maps = data.split_maps["val"] if case != "d" else list(data.hparams.val_subjects)
    ordered = [(a, b) for a in maps for b in maps if a != b] or [(maps[0], maps[0])]
    family = "dk" if case == "d" else "aseg"
    pairs = []
    for index in range(renderings * len(ordered)):
        first, second = ordered[index % len(ordered)]
        generator = torch.Generator().manual_seed(7_000_000 + 1000 * ord(case) + index)
        labels = [data.maps[first], data.maps[second]]
        if dims == 2:
            labels = [label[..., label.shape[-1] // 2] for label in labels]
        item = {
            "id": f"{case}-{index}-{first}-{second}",
            "fixed_affine": dataset.affine,
            "moving_affine": dataset.affine,
        }
        for role, source, contrast in zip(("fixed", "moving"), labels, ("t1", "t2" if case == "b" else "t1")):
            warped = dataset._warped(source, generator)
            item[role] = render(warped, dataset.settings, generator, table_means(family, contrast, generator))[0]
            item[f"{role}_seg"] = torch.where(warped == TISSUE, 0, warped)[0]
            item[f"{role}_structures"] = structure_table(family)[warped[0]]
        if case == "c":
            axis = int(torch.randint(dims, (1,), generator=generator))
            both = torch.cat([item["moving_seg"], item["moving_structures"]])
            item["moving"], both, item["moving_affine"] = thicken(item["moving"], both, item["moving_affine"], axis, 3)
            item["moving_seg"], item["moving_structures"] = both[:1], both[1:]
        pairs.append({key: value[None] if torch.is_tensor(value) else value for key, value in item.items()})
    return pairs


def scored(pair: dict, result) -> dict:
    """Mean Dice over the fixed image's labels (the moving labels warped linearly, as ``test``) and
    folding % of the map: the rows ``lightning-reg test`` writes."""
    row = pair_rows(pair, result, 0.0, LABEL_MODE)[0]
    return {"dice": row["dice"], "folding": row["folding_percent"]}


def oracle(model: RegistrationModule):
    """The model's solve with its learned channels replaced by the exact codes of each voxel's
    structure class (the labels'), at the model's gate."""
    network: AddedFeatures = model.network

    def levels(image: torch.Tensor, structures: torch.Tensor) -> list[torch.Tensor]:
        codes = structure_codes(network.learned)[structures[:, 0].clamp_min(0)].movedim(-1, 1)
        gate = network.gate.detach().expand(image.shape[0], 1, *image.shape[2:])
        return [torch.cat([image, codes, gate], dim=1)]

    def run(pair):
        features = levels(pair["fixed"], pair["fixed_structures"]), levels(pair["moving"], pair["moving_structures"])
        return model.solve(pair, features, model.eval_solver)[-1]

    return run


def methods(model: RegistrationModule | None, with_oracle: bool = False) -> dict:
    def classical(similarity):
        def run(pair):
            return register(
                pair["fixed"],
                pair["moving"],
                similarity=similarity,
                fixed_affine=pair["fixed_affine"],
                moving_affine=pair["moving_affine"],
                **CLASSICAL,
            )

        return run

    found = {"classical lncc": classical("lncc"), "classical mi": classical("mi")}
    if model is not None:
        found["learned"] = lambda pair: model(pair)
        if isinstance(model.network, AddedFeatures):  # the image compared by MI instead, beside the learned channels
            with_mi = model.with_eval_solver(similarity="mi")
            found["learned, image mi"] = lambda pair: with_mi(pair)
            if with_oracle:
                found["oracle codes"] = oracle(model)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--label-maps", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="a trained model; none: the classical rows only")
    parser.add_argument("--dims", type=int, default=3, choices=(2, 3))
    parser.add_argument("--renderings", type=int, default=4, help="renderings of each ordered pair of subjects")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--oracle", action="store_true", help="add the exact structure codes as the learned channels")
    parser.add_argument("--methods", nargs="+", help="only these rows (names as printed; default all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    if args.oracle and args.checkpoint is None:
        parser.error("--oracle replaces an AddedFeatures model's learned channels: give its --checkpoint")
    torch.set_num_threads(args.threads)
    data = BrainDataModule(args.brains, dims=args.dims, label_maps=args.label_maps)
    data.setup("validate")
    model = None
    if args.checkpoint is not None:
        model = RegistrationModule.load_from_checkpoint(str(args.checkpoint), map_location="cpu").eval()
        if args.oracle and not (isinstance(model.network, AddedFeatures) and tuple(model.network.scales) == (1,)):
            parser.error("--oracle replaces the learned channels of a one-level AddedFeatures model")
    rows = []
    for case in args.cases:
        pairs = case_pairs(data, case, args.renderings, args.dims)
        for name, run in methods(model, args.oracle).items():
            if args.methods and name not in args.methods:
                continue
            start = time.perf_counter()
            with torch.no_grad():
                scores = [scored(pair, run(pair)) for pair in pairs]
            dice = [score["dice"] for score in scores]
            row = {
                "case": case,
                "method": name,
                "pairs": len(pairs),
                "dice": statistics.mean(dice),
                "dice_sd": statistics.pstdev(dice),
                "dice_min": min(dice),
                "dice_per_pair": dice,
                "folding": max(score["folding"] for score in scores),
                "seconds": (time.perf_counter() - start) / len(pairs),
            }
            rows.append(row)
            print(
                f"({case}) {CASES[case]:>28} {name:>15}: Dice {row['dice']:.4f} +- {row['dice_sd']:.4f} "
                f"(min {row['dice_min']:.4f}), folding {row['folding']:.3f} %, {row['seconds']:.1f} s/pair",
                flush=True,
            )
    record = {
        **provenance(args.threads),
        "dims": args.dims,
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"validation_cases_{args.dims}d"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2))
    table = markdown_table(
        rows,
        [
            ("case", lambda r: f"({r['case']}) {CASES[r['case']]}"),
            ("method", lambda r: r["method"]),
            ("pairs", lambda r: str(r["pairs"])),
            ("Dice mean", lambda r: f"{r['dice']:.4f}"),
            ("sd", lambda r: f"{r['dice_sd']:.4f}"),
            ("min", lambda r: f"{r['dice_min']:.4f}"),
            ("max folding %", lambda r: f"{r['folding']:.3f}"),
        ],
        [],
    )
    (args.out / f"{stem}.md").write_text(f"{record['machine']}; {args.dims}D, validation anatomies\n\n{table}")


if __name__ == "__main__":
    main()
