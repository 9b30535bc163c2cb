"""The README's results tables, made from the benchmarks' records (``benchmarks/results/*.json``), so no
figure of it is typed by hand. ``tests/test_readme.py`` checks that the README holds what this makes;
after a benchmark is re-run, ``python benchmarks/readme_results.py --write`` puts its figures in.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
#: a table between these markers in the README (NAME: ``results`` or ``whole command``)
MARKERS = r"(<!-- {name} table: made by benchmarks/readme_results.py -->\n)(.*?)(<!-- end of {name} table -->)"
BLOCK = re.compile(MARKERS.format(name="results"), re.S)
WHOLE_BLOCK = re.compile(MARKERS.format(name="whole command"), re.S)
#: the whole command's rows: label and key of ``whole_command_3d.json``'s summary; the ratios are to the last row
WHOLE_ROWS = [
    ("`register --preset fast`", "ours 50x25x10"),
    ("the lean path alone (`--preset fast --inverse-warp skip --no-qc --metrics quick`)", "ours lean"),
    ("the lean path in a `--pairs` batch, per pair", "ours lean --pairs"),
    ("the same, after the process's start-up", "ours lean --pairs, after start-up"),
    ("PICSL Greedy 1.4, its quick run (100x50x10)", "picsl-greedy 100x50x10"),
]
#: each row: its label, the record (relative to benchmarks/results) and the key of its summary
ROWS = [
    ("no registration", "pareto_3d_test.json", "none"),
    ("lightning_reg classical, greedy (25x12x5)", "pareto_3d_test.json", "ours 25x12x5"),
    ("PICSL Greedy 1.4 (100x50x10, its quick setting)", "pareto_3d_test.json", "picsl-greedy 100x50x10"),
    ("lightning_reg classical, greedy (200x100x50, the default)", "pareto_3d_test.json", "ours 200x100x50"),
    ("PICSL Greedy 1.4 (200x100x50)", "pareto_3d_test.json", "picsl-greedy 200x100x50"),
    ("FireANTs 1.5 greedy (200x100x50)", "pareto_3d_test.json", "fireants 200x100x50"),
    ("ConvexAdam 0.2 (its defaults)", "pareto_3d_test.json", "convexadam"),
    (
        "lightning_reg learned, `brain3d` (the image and 8 pre-trained channels, greedy) ¹",
        "brain3d_added/real_brains_3d.json",
        "learned-greedy",
    ),
]


def _load(record: str) -> dict:
    return json.loads((RESULTS / record).read_text())


def _spread(record: str, key: str) -> float:
    """The SD of the Dice over the record's pairs for ``key`` (sample SD)."""
    return statistics.stdev(pair["dice"] for pair in _load(record)["pairs"][key])


def table() -> str:
    """The markdown table of :data:`ROWS` (mean Dice over the pairs with its SD, the best in bold; no
    seconds for no registration), the command, machine and date of its main record above it, and the
    learned row's footnote below."""
    rows = []
    for label, record, key in ROWS:
        found = _load(record)["summary"][key]
        rows.append((label, found["dice"], _spread(record, key), found["seconds"]))
    best = max(dice for _, dice, _, _ in rows)
    main = _load(ROWS[0][1])
    lines = [
        f"`{main['command']}` ({main['machine']}, {main['date']}; `benchmarks/results/{ROWS[0][1]}`):",
        "",
        "| method (iterations) | mean Dice | SD over pairs | seconds / pair |",
        "|---|---|---|---|",
    ]
    for label, dice, spread, seconds in rows:
        shown = f"**{dice:.3f}**" if dice == best else f"{dice:.3f}"
        lines.append(f"| {label} | {shown} | {spread:.3f} | {'–' if seconds == 0 else f'{seconds:.1f}'} |")
    learned = _load(ROWS[-1][1])
    model, classical = learned["summary"][ROWS[-1][2]], learned["summary"]["ours-greedy"]
    lines += [
        "",
        f"¹ `{learned['command']}`: the same pairs, {learned['machine']}, {learned['date']}; our classical greedy "
        f"there: {classical['dice']:.3f} ± {_spread(ROWS[-1][1], 'ours-greedy'):.3f} in "
        f"{classical['seconds']:.1f} s, so the model took "
        f"{model['seconds'] / classical['seconds']:.1f}x its time.",
    ]
    return "\n".join(lines) + "\n"


def whole_command_table() -> str:
    """The markdown table of :data:`WHOLE_ROWS`: seconds, Dice and the ratio to PICSL Greedy's quick run,
    with the record's command, machine and date above it."""
    record = _load("whole_command_3d.json")
    summary = record["summary"]
    base = summary[WHOLE_ROWS[-1][1]]["wall"]
    lines = [
        f"`{record['command']}` ({record['machine']}, {record['date']}):",
        "",
        "| the whole command, one thread | seconds / pair | mean Dice | vs PICSL Greedy |",
        "|---|---|---|---|",
    ]
    for label, key in WHOLE_ROWS:
        row = summary[key]
        lines.append(f"| {label} | {row['wall']:.1f} | {row['dice']:.3f} | {row['wall'] / base:.2f}x |")
    return "\n".join(lines) + "\n"


def readme_table(text: str, block: re.Pattern = BLOCK) -> str:
    """The table the README holds between ``block``'s markers (ValueError when it has none)."""
    found = block.search(text)
    if found is None:
        raise ValueError("README.md has no results table markers")
    return found.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="put the table into README.md")
    args = parser.parse_args()
    text = README.read_text()
    for block, made in ((BLOCK, table()), (WHOLE_BLOCK, whole_command_table())):
        text = block.sub(lambda match, made=made: match.group(1) + made + match.group(3), text)
        print(made)
    if args.write:
        README.write_text(text)


if __name__ == "__main__":
    main()
