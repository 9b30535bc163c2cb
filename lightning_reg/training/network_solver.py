"""The solver options of a model as its network reads them: the defaults of a network, a plain
similarity read as the image's by ``AddedFeatures``, and the evaluation options as changes of the
training ones."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..nn import AddedFeatures, FeatureNetwork
from ..solver import SolverOptions
from ..solver.checks import check_scales, level_iterations
from ..solver.geometry.pyramid import source_levels
from .solver_settings import as_changes, as_solver_options

#: The training options of a network of features
DEFAULT_SOLVER = SolverOptions()
#: ... and of AddedFeatures: the image by mutual information (the default pairs join two contrasts),
#: the learned channels by MSE
ADDED_SOLVER = SolverOptions(similarity="added")


def network_solver(network: FeatureNetwork, given: SolverOptions | Mapping[str, Any] | None) -> SolverOptions:
    """The options ``given`` (none: the network's default) as ``network`` reads them. With
    :class:`AddedFeatures` a plain similarity (``lncc``, ``mi``, ...) is the image's, beside the
    learned channels' MSE (the ``added`` similarity); with another network the ``added`` similarity,
    left without options, is the learned layer's default similarity (so ``--model.network
    lightning_reg.nn.UNet`` with any other training option trains as before)."""
    added = isinstance(network, AddedFeatures)
    if given is None:
        return ADDED_SOLVER if added else DEFAULT_SOLVER
    options = as_solver_options(given, base=ADDED_SOLVER)  # a config's keys change the signature's default
    if added and options.feature_channels is not None:
        raise ValueError("feature_channels mixes AddedFeatures' image, learned and gate channels; leave it out")
    if added and options.similarity != "added":
        image = {"image": options.similarity, "image_options": dict(options.similarity_options)}
        return options.changed(similarity="added", similarity_options=image)
    if not added and options.similarity == "added":
        if options.similarity_options:
            raise ValueError(
                f"the added similarity reads the channels of AddedFeatures (image, learned, gate), not "
                f"{type(network).__name__}'s; use --model.network lightning_reg.nn.AddedFeatures, or another "
                f"similarity (--model.train_solver.similarity lncc)"
            )
        return options.changed(similarity=DEFAULT_SOLVER.similarity)
    return options


def changed_for(network: FeatureNetwork, options: SolverOptions, changes: Mapping[str, Any]) -> SolverOptions:
    """``options`` with ``changes`` (field names), read as ``network`` reads them: a similarity given
    without its options drops the old one's (with ``AddedFeatures``: it is the image's)."""
    changes = dict(changes)
    if "similarity" in changes and "similarity_options" not in changes:
        changes["similarity_options"] = {}
    return network_solver(network, options.changed(**changes) if changes else options)


def level_count(options: SolverOptions, network_scales: Sequence[float]) -> int:
    """How many levels the solver runs: one per scale (the network's scales by default)."""
    return len(options.scales) if options.scales else len(network_scales)


def check_levels(options: SolverOptions, network_scales: Sequence[float]) -> None:
    """ValueError unless the iterations and scales fit a network with levels at ``network_scales``."""
    level_iterations(options.iterations, level_count(options, network_scales))
    if options.scales:
        source_levels(check_scales(options.scales), network_scales)


def model_solvers(
    network: FeatureNetwork,
    train_solver: SolverOptions | Mapping[str, Any] | None,
    eval_solver: Mapping[str, Any] | None,
) -> tuple[SolverOptions, SolverOptions]:
    """The training and evaluation options of a model of ``network`` (``RegistrationModule``'s
    arguments, or a checkpoint's hyperparameters), each as the network reads it and checked against
    its levels (ValueError naming which)."""
    train = network_solver(network, train_solver)
    changes = as_changes(eval_solver)  # its errors name eval_solver already
    try:
        evaluation = changed_for(network, train, changes)
    except (TypeError, ValueError) as error:
        raise ValueError(f"eval_solver: {error}") from None
    for name, options in (("train_solver", train), ("eval_solver", evaluation)):
        try:  # unknown names and bad options fail now, not mid-training
            check_levels(options, network.scales)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return train, evaluation
