"""Fewer feature channels for the solver: a pair's features projected on their principal components."""

from __future__ import annotations

import torch


def principal_channels(fixed: torch.Tensor, moving: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``fixed`` ``[B, C, *S_f]`` and ``moving`` ``[B, C, *S_m]`` projected on the ``count`` principal
    components of each pair's two feature maps together (one basis per pair, so both images share it).

    The projection is orthogonal: with every component kept, every squared difference between the two
    maps is unchanged, so an MSE energy on the components is the energy on the channels up to the factor
    ``C / count`` of the channel mean (which Adam's bounded steps do not see); dropping the weakest
    components drops the directions along which the features vary least. The basis and mean are
    detached: gradients flow through the projection as through a fixed linear layer.
    Returns the inputs unchanged when ``count`` is at least ``C``.
    """
    channels = fixed.shape[1]
    if count < 1:
        raise ValueError(f"feature_channels must be >= 1, got {count}")
    if count >= channels:
        return fixed, moving
    with torch.no_grad():
        both = torch.cat([fixed.flatten(2), moving.flatten(2)], dim=2).double()  # [B, C, N]
        mean = both.mean(2, keepdim=True)
        centred = both - mean
        _, vectors = torch.linalg.eigh(centred @ centred.transpose(1, 2))  # ascending eigenvalues
        basis = vectors[:, :, -count:].flip(-1).to(fixed.dtype)  # [B, C, count], strongest first
        mean = mean.to(fixed.dtype)

    def project(features: torch.Tensor) -> torch.Tensor:
        flat = features.flatten(2) - mean
        return (basis.transpose(1, 2) @ flat).view(features.shape[0], count, *features.shape[2:])

    return project(fixed), project(moving)


def principal_pyramids(
    features: tuple[list[torch.Tensor], list[torch.Tensor]], count: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """:func:`principal_channels` of every level of a pair of feature pyramids (fixed, moving)."""
    projected = [principal_channels(fixed, moving, count) for fixed, moving in zip(*features)]
    return [fixed for fixed, _ in projected], [moving for _, moving in projected]
