"""The LightningModule: a siamese feature network, the implicit registration layer, training losses,
evaluation metrics and the per-pair test table."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict
from typing import Any, cast, get_args

import lightning as L
import torch
from jsonargparse import lazy_instance

from ..evaluation.rows import pair_rows
from ..hyperparameters import AttributeHyperparameters
from ..nn import AddedFeatures, FeatureNetwork
from ..solver import RegistrationLayer, RegistrationResult, SolverOptions
from ..solver.checks import check_number
from ..solver.loop.optimize import Callback
from ..solver.result import LABEL_MODE, LabelMode
from .batch_terms import batch_masks, batch_prompts
from .checkpoints import TrustedLoading, check_same_network, plain_hyperparameters
from .divergence import SkipNonFiniteSteps, with_every_weight
from .losses import ImageDissimilarity, ImageLossName, warp_losses
from .network_solver import ADDED_SOLVER, changed_for, level_count, model_solvers
from .optimization import adamw_with_polynomial_decay
from .run_folder import share_run_directory
from .structure_codes import pretraining_loss
from .summaries import SummaryMeans, TestTable, log_training_terms

#: The default network's arguments: the image kept, 4 learned channels beside it at the levels 1/4, 1/2
#: and 1 (area-averaged image levels, as IdentityFeatures), a small UNet. On the synthetic default's
#: test pairs (docs/results, "The default run"): 0.818 as trained, 0.824 with greedy 200/100/50 at test
#: time, against 0.788 and 0.809 for the classical solver with mutual information
DEFAULT_NETWORK_ARGS: dict[str, Any] = dict(dims=2, learned=4, scales=(4, 2, 1), widths=(8, 16, 16, 32))
#: The default network as LightningCLI shows it (class path and arguments); in Python each module
#: built with it gets a new one.
DEFAULT_NETWORK = lazy_instance(AddedFeatures, **DEFAULT_NETWORK_ARGS)


class RegistrationModule(TrustedLoading, AttributeHyperparameters, L.LightningModule):
    """Learn features for registration end to end through the solver.

    Args:
        network: the feature network, shared by fixed and moving (siamese); default a 2D
            ``AddedFeatures`` (the image and learned channels beside it; command line:
            ``--model.network lightning_reg.nn.UNet``, ``--model.network.init_args.dims 3``).
        train_solver: the solver's options while training (``SolverOptions``; default ``ADDED_SOLVER``:
            the added similarity, mutual information on the image). As the network reads them
            (:func:`network_solver`): with ``AddedFeatures`` a plain similarity is the image's; with
            another network the added similarity without options is LNCC on the features, so
            ``--model.network lightning_reg.nn.UNet`` trains as before.
        eval_solver: for validation, test and predict: changes of the training options by field
            name (``{"transform": "svf", "iterations": [200, 100, 50]}``, applied with
            ``SolverOptions.changed``), so evaluation may switch representation, iterations, scales,
            similarity, prompts, ...
        image_loss: ``lncc`` or ``mse`` between the fixed image and the warped moving image.
        image_weight: weight of the image term; the loss is averaged over the pyramid levels.
        dice_weight: weight of ``1 - soft Dice`` of the labels warped linearly (one-hot).
        progressive_epochs: if > 0, train the coarsest level alone first and add the next finer
            level every ``progressive_epochs`` epochs.
        lr: AdamW's learning rate, decayed polynomially to 0. The default 2e-3 trains the embedded
            synthetic run in minutes on two CPU cores; DIO trains real brains for long runs at 3e-4
            (``configs/oasis*.yaml``).
        weight_decay: AdamW's weight decay.
        poly_power: the power of the learning rate's polynomial decay.
        eval_label_mode: how labels are warped for the validation/test metrics and the predictions:
            ``linear`` (one-hot, as ``lightning-reg register``) or ``nearest``.
        pretrain_steps: the first steps train ``AddedFeatures``' learned channels without the solver,
            to regress a fixed code of each voxel's structure (``structure_codes.py``; the brain data's
            ``*_structures``); the solver's steps follow. 0: none.
    """

    def __init__(
        self,
        network: FeatureNetwork | None = DEFAULT_NETWORK,
        train_solver: SolverOptions | dict | None = ADDED_SOLVER,
        eval_solver: dict[str, Any] | None = None,
        image_loss: ImageLossName = "lncc",
        image_weight: float = 1.0,
        dice_weight: float = 1.0,
        progressive_epochs: int = 0,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        poly_power: float = 0.9,
        eval_label_mode: LabelMode = LABEL_MODE,
        pretrain_steps: int = 0,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():  # outside LightningCLI the module is dropped just below
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        plain_hyperparameters(self.hparams)
        default = network is None or network is DEFAULT_NETWORK  # built here: never shared
        self.network: FeatureNetwork = (
            AddedFeatures(**DEFAULT_NETWORK_ARGS) if default else cast(FeatureNetwork, network)
        )
        self.train_solver, self.eval_solver = model_solvers(self.network, train_solver, eval_solver)
        # optimization as a layer of the model, built once (print(model) shows both)
        self.train_layer = RegistrationLayer(self.train_solver)
        self.eval_layer = RegistrationLayer(self.eval_solver)
        if eval_label_mode not in get_args(LabelMode):
            raise ValueError(f"eval_label_mode must be 'linear' or 'nearest', got {eval_label_mode!r}")
        self.eval_label_mode = eval_label_mode
        self.image_dissimilarity = ImageDissimilarity(image_loss)
        weights = dict(image_weight=image_weight, dice_weight=dice_weight, lr=lr, weight_decay=weight_decay)
        for name, value in {**weights, "poly_power": poly_power, "pretrain_steps": pretrain_steps}.items():
            check_number(name, value, 0)
        if image_weight + dice_weight == 0:
            raise ValueError(f"image_weight and dice_weight must not both be 0, got {image_weight} and {dice_weight}")
        self.test_rows: list[dict] = []
        self.skip_reason: str | None = None  # why this training step must not update the weights
        self.summaries = SummaryMeans()

    # ----------------------------------------------------------------------------------- forward
    def features(self, fixed: torch.Tensor, moving: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Siamese feature pyramids of both images (one network call when their shapes agree)."""
        if fixed.shape == moving.shape:
            both = self.network(torch.cat([fixed, moving]))
            return [level[: len(fixed)] for level in both], [level[len(fixed) :] for level in both]
        return self.network(fixed), self.network(moving)

    def register(
        self, batch: dict, options: SolverOptions | None = None, levels: int | None = None
    ) -> list[RegistrationResult]:
        """Solve every level (or the first ``levels``) for the pairs of ``batch`` with ``options``
        (default: the evaluation options); results at the fixed image's resolution."""
        return self.solve(batch, self.features(batch["fixed"], batch["moving"]), options or self.eval_solver, levels)

    def solve(
        self,
        batch: dict,
        features: tuple[list[torch.Tensor], list[torch.Tensor]],
        options: SolverOptions,
        levels: int | None = None,
        callback: Callback | None = None,
    ) -> list[RegistrationResult]:
        """:meth:`register` on the feature pyramids of ``batch`` (from :meth:`features`); ``callback``:
        the solver's, after every iteration."""
        results = self._layer(options)(
            *features,
            feature_scales=self.network.scales,
            levels=levels,
            fixed_affine=batch.get("fixed_affine"),
            moving_affine=batch.get("moving_affine"),
            prompts=batch_prompts(batch, options),
            masks=batch_masks(batch),
            callback=callback,
        )
        return [result.resized(batch["fixed"].shape[2:]) for result in results]

    def _layer(self, options: SolverOptions) -> RegistrationLayer:
        """The model's own layer for its training or evaluation options, else one built for ``options``."""
        if options is self.train_solver:
            return self.train_layer
        return self.eval_layer if options is self.eval_solver else RegistrationLayer(options)

    def forward(self, batch: dict) -> RegistrationResult:
        """The final warp of ``batch`` with the evaluation settings."""
        return self.register(batch)[-1]

    def eval_solver_with(self, **changes: Any) -> SolverOptions:
        """The evaluation options with ``changes`` (``SolverOptions.changed``); a similarity given drops
        the old one's options and is read as the network reads it (with ``AddedFeatures``: the image's)."""
        return changed_for(self.network, self.eval_solver, changes)

    def with_eval_solver(self, **changes: Any) -> "RegistrationModule":
        """This model for evaluation (the same network, not a copy; its label mode; training options at their defaults)
        with evaluation options changed, e.g. ``model.with_eval_solver(transform="svf", prompt_labels=[2])``."""
        every = asdict(self.eval_solver_with(**changes))  # every field: applied, they give the same options
        model = type(self)(self.network, self.train_solver, every, eval_label_mode=self.eval_label_mode)
        return model.to(self.device).eval()

    def predict_step(self, batch: dict, batch_index: int) -> RegistrationResult:
        """The final warp of ``batch``; ``prediction.NiftiPredictionWriter`` writes it as NIfTI."""
        return self(batch)

    # ---------------------------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        share_run_directory(self.trainer)

    def active_levels(self) -> int:
        levels = level_count(self.train_solver, self.network.scales)
        epochs = self.hparams.progressive_epochs
        if epochs <= 0:
            return levels
        return min(levels, 1 + self.current_epoch // epochs)

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        if self.global_step < self.hparams.pretrain_steps:
            return self._pretraining_step(batch)
        if self.hparams.dice_weight > 0 and ("fixed_seg" not in batch or "moving_seg" not in batch):
            raise ValueError(
                "dice_weight > 0 needs label maps: the batches have no fixed_seg/moving_seg. "
                "Give labels in the data, or set --model.dice_weight 0"
            )
        features = self.features(batch["fixed"], batch["moving"])
        if not all(bool(torch.isfinite(level).all()) for pyramid in features for level in pyramid):
            return self._skip_step("the network's features are not finite")
        results = self.solve(batch, features, self.train_solver, self.active_levels())
        h = self.hparams
        image, dice = warp_losses(batch, results, self.image_dissimilarity, with_dice=h.dice_weight > 0)
        loss = h.image_weight * image + (0.0 if dice is None else h.dice_weight * dice)
        log_training_terms(self, results, {"image_loss": image, "dice_loss": dice}, len(batch["fixed"]))
        if not bool(torch.isfinite(loss)):
            return self._skip_step("the training loss is not finite")
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["fixed"]))
        return with_every_weight(self, loss)

    def _pretraining_step(self, batch: dict) -> torch.Tensor:
        """The structure-code loss of both images, no solve (``pretrain_steps``)."""
        loss = pretraining_loss(self.network, batch)
        log_training_terms(self, [], {"structure_loss": loss, "loss": loss}, len(batch["fixed"]))
        return with_every_weight(self, loss)

    def _skip_step(self, reason: str) -> torch.Tensor:
        """A zero loss for a step that ``SkipNonFiniteSteps`` (``divergence.py``) then skips."""
        self.skip_reason = reason
        return with_every_weight(self, 0.0)

    def configure_callbacks(self) -> list[L.Callback]:
        """On every Trainer: skip non-finite steps and stop a diverging run; write the test table."""
        return [SkipNonFiniteSteps(), TestTable()]

    def configure_optimizers(self):
        return adamw_with_polynomial_decay(self)

    # -------------------------------------------------------------------------------- evaluation
    def evaluate(self, batch: dict, inverse: bool = False) -> list[dict]:
        """Register ``batch`` with the evaluation settings; one metrics row per pair (with
        ``inverse``, the inverse map's consistency too: ``evaluation.pair_rows``)."""
        start = time.perf_counter()
        with torch.no_grad():
            result = self(batch)
        seconds = (time.perf_counter() - start) / len(batch["fixed"])
        return pair_rows(
            batch, result, seconds, self.eval_label_mode, inverse=result.inverse_field() if inverse else None
        )

    def validation_step(self, batch: dict, batch_index: int) -> None:
        self.summaries.log(self, "val", self.evaluate(batch))

    def test_step(self, batch: dict, batch_index: int) -> None:
        rows = self.evaluate(batch, inverse=True)
        self.test_rows.extend(rows)  # TestTable writes them
        self.summaries.log(self, "test", rows)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A clear error when the checkpoint holds the weights of another network."""
        check_same_network(self, checkpoint)
