"""``qc.png``: ``lightning-reg register`` draws the registration to check by eye, with every panel in
place and none blank; ``--no-qc`` leaves it out; 2D pairs get one row."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from lightning_reg.cli.main import main
from lightning_reg.data.synthetic import warped_pair, write_demo_pair
from lightning_reg.evaluation.quality_control import DPI, PANEL_INCHES, PANELS, quality_figure
from lightning_reg.solver import register


def _cells(image: np.ndarray, rows: int) -> list[np.ndarray]:
    """The picture cut into its grid of panels (below the titles), grey values."""
    grey = image[..., :3].mean(-1)
    top = int(0.5 * DPI)  # the title band
    height, width = (grey.shape[0] - top) // rows, grey.shape[1] // len(PANELS)
    return [
        grey[top + row * height : top + (row + 1) * height, column * width : (column + 1) * width]
        for row in range(rows)
        for column in range(len(PANELS))
    ]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qc")
    demo = write_demo_pair(str(folder / "demo"))
    out = folder / "registered"
    arguments = ["register", "--fixed", demo["fixed"], "--moving", demo["moving"], "--fixed-seg"]
    arguments += [demo["fixed_seg"], "--moving-seg", demo["moving_seg"], "--out", str(out), "--quiet"]
    assert main([*arguments, "--iterations", "20", "10", "5"]) == 0
    return out


def test_register_draws_every_panel_of_three_views_and_none_is_blank(registered):
    image = imread(registered / "qc.png")
    assert image.shape[:2] == (round((3 * PANEL_INCHES + 0.4) * DPI), round(len(PANELS) * PANEL_INCHES * DPI))
    for index, cell in enumerate(_cells(image, rows=3)):
        assert cell.std() > 0.05, f"panel {PANELS[index % len(PANELS)]} of view {index // len(PANELS)} is blank"


def test_no_qc_leaves_the_picture_out(tmp_path):
    demo = write_demo_pair(str(tmp_path / "demo"), shape=(24, 28, 20))
    out = tmp_path / "out"
    arguments = ["register", "--fixed", demo["fixed"], "--moving", demo["moving"], "--out", str(out)]
    assert main([*arguments, "--iterations", "2", "--no-qc", "--quiet"]) == 0
    assert (out / "warped.nii.gz").is_file() and not (out / "qc.png").exists()


def test_a_2d_pair_gets_one_row_and_folding_is_counted():
    pair = warped_pair((40, 48), magnitude=2.0, seed=2)
    result = register(pair["fixed"], pair["moving"], iterations=(10, 5, 5))
    jacobian = result.jacobian_determinant()[0, 0].clone()
    jacobian[:4, :4] = -1.0  # a folded corner: 16 of 1920 pixels
    figure = quality_figure(
        pair["fixed"][0], pair["moving"][0], result.warp(pair["moving"])[0], result.displacement_voxels()[0], jacobian
    )
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba()) / 255.0
    assert image.shape[:2] == (round((PANEL_INCHES + 0.4) * DPI), round(len(PANELS) * PANEL_INCHES * DPI))
    titles = [axis.get_title() for axis in figure.axes]
    assert "Jacobian determinant (0.833 % folding, black)" in titles and "labels on fixed (none given)" in titles
    blank = [PANELS[i] for i, cell in enumerate(_cells(image, rows=1)) if cell.std() <= 0.05]
    assert not blank, blank  # without labels that panel still shows the fixed image
