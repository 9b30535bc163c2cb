"""The solver settings of a model as its network reads them: the defaults of a network, a plain
similarity read as the image's by ``AddedFeatures``, and the evaluation settings resolved from the
training ones."""

from __future__ import annotations

from dataclasses import replace

from ..nn import AddedFeatures, FeatureNetwork
from .solver_settings import EvalSolverSettings, SolverSettings

#: The training solver of a network of features (each module gets its own copy)
DEFAULT_SOLVER = SolverSettings()
#: ... and of AddedFeatures: the image by mutual information (the default pairs join two contrasts),
#: the learned channels by MSE
ADDED_SOLVER = SolverSettings(similarity="added")


def network_solver(network: FeatureNetwork, given: SolverSettings | dict | None) -> SolverSettings:
    """The settings ``given`` (none: the network's default) as ``network`` reads them. With
    :class:`AddedFeatures` a plain similarity (``lncc``, ``mi``, ...) is the image's, beside the
    learned channels' MSE (the ``added`` similarity); with another network the ``added`` similarity,
    left without options, is the learned layer's default similarity (so ``--model.network
    lightning_reg.nn.UNet`` with any other training option trains as before)."""
    if isinstance(given, dict):  # from a checkpoint's hyperparameters
        given = SolverSettings(**given)
    added = isinstance(network, AddedFeatures)
    if given is None:
        return ADDED_SOLVER if added else DEFAULT_SOLVER
    if added and given.feature_channels is not None:
        raise ValueError("feature_channels mixes AddedFeatures' image, learned and gate channels; leave it out")
    if added and given.similarity != "added":
        image = {"image": given.similarity, "image_options": dict(given.similarity_options)}
        return replace(given, similarity="added", similarity_options=image)
    if not added and given.similarity == "added":
        if given.similarity_options:
            raise ValueError(
                f"the added similarity reads the channels of AddedFeatures (image, learned, gate), not "
                f"{type(network).__name__}'s; use --model.network lightning_reg.nn.AddedFeatures, or another "
                f"similarity (--model.train_solver.similarity lncc)"
            )
        return replace(given, similarity=DEFAULT_SOLVER.similarity)
    return given


def model_solvers(
    network: FeatureNetwork,
    train_solver: SolverSettings | dict | None,
    eval_solver: EvalSolverSettings | SolverSettings | dict | None,
) -> tuple[SolverSettings, SolverSettings]:
    """The training and evaluation settings of a model of ``network`` (``RegistrationModule``'s
    arguments, or a checkpoint's hyperparameters as dicts), each as the network reads it and checked
    against its levels (ValueError naming which)."""
    train = replace(network_solver(network, train_solver))
    if isinstance(eval_solver, dict):  # from a checkpoint's hyperparameters
        eval_solver = EvalSolverSettings(**eval_solver)
    if isinstance(eval_solver, EvalSolverSettings) and eval_solver.similarity is not None:
        if eval_solver.similarity_options is None:  # another similarity: not the training one's options
            eval_solver = replace(eval_solver, similarity_options={})
    evaluation = (
        train
        if eval_solver is None
        else network_solver(
            network, eval_solver if isinstance(eval_solver, SolverSettings) else eval_solver.resolve(train)
        )
    )
    for name, settings in (("train_solver", train), ("eval_solver", evaluation)):
        try:  # unknown names and bad options fail now, not mid-training
            settings.check_levels(network.scales)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return train, evaluation
