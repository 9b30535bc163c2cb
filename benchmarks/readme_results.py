"""The README's results table, made from the benchmarks' records (``benchmarks/results/*.json``), so no
figure of it is typed by hand. ``tests/test_readme.py`` checks that the README holds what this makes;
after a benchmark is re-run, ``python benchmarks/readme_results.py --write`` puts its figures in.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
#: the table between these markers in the README
BLOCK = re.compile(
    r"(<!-- results table: made by benchmarks/readme_results.py -->\n)(.*?)(<!-- end of results table -->)", re.S
)
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


def table() -> str:
    """The markdown table of :data:`ROWS` (the best Dice in bold; no seconds for no registration)."""
    rows = []
    for label, record, key in ROWS:
        found = json.loads((RESULTS / record).read_text())["summary"][key]
        rows.append((label, found["dice"], found["seconds"]))
    best = max(dice for _, dice, _ in rows)
    lines = ["| method (iterations) | mean Dice | seconds / pair |", "|---|---|---|"]
    for label, dice, seconds in rows:
        shown = f"**{dice:.3f}**" if dice == best else f"{dice:.3f}"
        lines.append(f"| {label} | {shown} | {'–' if seconds == 0 else f'{seconds:.1f}'} |")
    return "\n".join(lines) + "\n"


def readme_table(text: str) -> str:
    """The table the README holds between its markers (ValueError when it has none)."""
    found = BLOCK.search(text)
    if found is None:
        raise ValueError("README.md has no results table markers")
    return found.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="put the table into README.md")
    args = parser.parse_args()
    made = table()
    if args.write:
        text = README.read_text()
        README.write_text(BLOCK.sub(lambda match: match.group(1) + made + match.group(3), text))
    print(made, end="")


if __name__ == "__main__":
    main()
