"""The solver on CUDA gives the CPU's answer (skipped without a GPU)."""

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import register
from lightning_reg.solver.geometry.spatial import sample

pytestmark = pytest.mark.gpu
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("transform", ["greedy", "svf", "affine"])
def test_cuda_matches_cpu(transform):
    pair = warped_pair((32, 36, 28), magnitude=1.5, seed=11)
    on_cpu = register(
        pair["fixed"], pair["moving"], transform=transform, scales=(2, 1), iterations=(30, 20), tolerance=0
    )
    on_gpu = register(
        pair["fixed"].cuda(),
        pair["moving"].cuda(),
        transform=transform,
        scales=(2, 1),
        iterations=(30, 20),
        tolerance=0,
    )
    assert on_gpu.grid.is_cuda
    voxels = torch.tensor([(n - 1) / 2 for n in (32, 36, 28)][::-1])
    assert float(((on_gpu.grid.cpu() - on_cpu.grid) * voxels).norm(dim=-1).mean()) < 0.05


@cuda
def test_grid_sample_twice_differentiable_on_cuda():
    image = torch.randn(1, 1, 5, 6, dtype=torch.float64, device="cuda", requires_grad=True)
    grid = (torch.rand(1, 4, 3, 2, dtype=torch.float64, device="cuda") * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda i, g: sample(i, g), (image, grid))


@cuda
@pytest.mark.parametrize("mode", ["jfb", "ift"])
def test_layer_gradients_on_cuda_match_cpu(mode):
    from lightning_reg.solver import RegistrationLayer

    pair = warped_pair((16, 18, 14), magnitude=1.0, seed=5)
    gradients = []
    for device in ("cpu", "cuda"):
        fixed = pair["fixed"].to(device).requires_grad_(True)
        moving = pair["moving"].to(device).requires_grad_(True)
        layer = RegistrationLayer(
            "freeform",
            "mse",
            iterations=[50],
            backward=mode,
            tolerance=0,
            regularizer="diffusion",
            regularizer_weight=0.2,
        )
        result = layer([fixed], [moving])[-1]
        (pair["fixed"].to(device) - result.warp(pair["moving"].to(device))).pow(2).mean().backward()
        gradients.append(torch.cat([fixed.grad.flatten(), moving.grad.flatten()]).cpu())
    assert float(torch.nn.functional.cosine_similarity(gradients[0], gradients[1], dim=0)) > 0.95
