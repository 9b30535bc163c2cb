"""Pre-training AddedFeatures' learned channels on structure codes, without the solver: the codes, the
loss by hand, its descent, and the module's first ``pretrain_steps`` steps that never solve."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_reg.data.brains.structures import IGNORED, STRUCTURE_CLASSES
from lightning_reg.nn import AddedFeatures, UNet
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.structure_codes import structure_code_loss, structure_codes

QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def _classes(shape, seed=0):
    """Blocks of random structure classes ``[1, 1, *shape]``."""
    coarse = torch.randint(
        STRUCTURE_CLASSES, (1, 1, *(n // 8 for n in shape)), generator=torch.Generator().manual_seed(seed)
    )
    return coarse.repeat_interleave(8, 2).repeat_interleave(8, 3)


def test_the_codes_are_fixed_unit_vectors_and_the_background_is_zero():
    codes = structure_codes(8)
    assert codes.shape == (STRUCTURE_CLASSES, 8)
    assert torch.equal(codes, structure_codes.__wrapped__(8))  # the same in every run
    assert torch.allclose(codes[1:].norm(dim=1), torch.ones(STRUCTURE_CLASSES - 1)) and not codes[0].any()


def test_the_loss_is_the_mean_squared_error_to_the_codes_and_leaves_out_shapes():
    network = AddedFeatures(dims=2, learned=4)
    image, classes = torch.rand(2, 1, 32, 32), torch.cat([_classes((32, 32)), _classes((32, 32), 1)])
    (learned,) = network.unet(image)
    wanted = structure_codes(4)[classes[:, 0]].movedim(-1, 1)
    assert float(structure_code_loss(network, image, classes).detach()) == pytest.approx(
        float((learned - wanted).square().mean())
    )
    classes[1] = IGNORED  # an image of random shapes: no structures
    first = float((learned[:1] - wanted[:1]).square().mean())
    assert float(structure_code_loss(network, image, classes).detach()) == pytest.approx(first)


def test_a_few_steps_bring_the_channels_towards_the_codes():
    torch.manual_seed(0)
    network = AddedFeatures(dims=2, learned=4, scales=(2, 1))
    classes = _classes((32, 32))
    image = torch.rand(1, 1, 32, 32) * 0.1 + classes.float() / STRUCTURE_CLASSES  # each structure its intensity
    weights = torch.optim.Adam(network.unet.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = structure_code_loss(network, image, classes)
        weights.zero_grad()
        loss.backward()
        weights.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def _items(count: int, structures: bool = True) -> list[dict]:
    items = []
    for index in range(count):
        classes = _classes((32, 32), index)[0]
        item = {"fixed": classes.float() / STRUCTURE_CLASSES, "moving": classes.float().flip(-1) / STRUCTURE_CLASSES}
        item |= {"fixed_seg": classes % 4, "moving_seg": (classes % 4).flip(-1)}
        if structures:
            item |= {"fixed_structures": classes, "moving_structures": classes.flip(-1)}
        items.append(item)
    return items


def test_the_first_steps_train_the_learned_channels_without_a_solve(monkeypatch):
    model = RegistrationModule(network=AddedFeatures(dims=2, learned=4, scales=(4, 2, 1)), pretrain_steps=2)
    solves = []
    solve = model.solve
    monkeypatch.setattr(model, "solve", lambda *args, **kwargs: solves.append(1) or solve(*args, **kwargs))
    before = {name: value.clone() for name, value in model.network.named_parameters()}
    L.Trainer(max_steps=2, limit_val_batches=0, **QUIET).fit(model, DataLoader(_items(2), batch_size=1))
    assert not solves  # no solve in the pre-training steps
    assert float(model.network.gate) == 0.0  # the gate takes no step without the solver
    assert not torch.equal(before["unet.heads.0.weight"], model.network.unet.heads[0].weight)
    L.Trainer(max_steps=3, limit_val_batches=0, **QUIET).fit(model, DataLoader(_items(3), batch_size=1))
    assert solves  # then the solver's steps


def test_pretraining_without_its_network_or_its_data_is_a_clear_error():
    with pytest.raises(ValueError, match="AddedFeatures' learned channels"):
        model = RegistrationModule(network=UNet(dims=2), pretrain_steps=1)
        L.Trainer(max_steps=1, limit_val_batches=0, **QUIET).fit(model, DataLoader(_items(1), batch_size=1))
    with pytest.raises(ValueError, match="BrainDataModule gives"):
        model = RegistrationModule(network=AddedFeatures(dims=2, scales=(4, 2, 1)), pretrain_steps=1)
        L.Trainer(max_steps=1, limit_val_batches=0, **QUIET).fit(model, DataLoader(_items(1, False), batch_size=1))
    with pytest.raises(ValueError, match="pretrain_steps"):
        RegistrationModule(pretrain_steps=-1)
