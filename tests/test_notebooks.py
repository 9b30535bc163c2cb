"""The notebooks run top to bottom on tiny data (nbclient), so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY = "shape = (32, 32)\ntrain_steps = 5\ntest_pairs = 2"


@pytest.mark.parametrize("name", ["features.ipynb", "switch_and_prompt.ipynb"])
def test_notebook_runs_top_to_bottom(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [index for index, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "each notebook has one cell tagged 'parameters'"
    notebook.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(TINY))  # as papermill injects parameters
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    said = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "moved to lightning_reg" not in said  # our notebooks use no deprecated path
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(figures) >= 2  # the pictures are the point
