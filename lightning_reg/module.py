"""The LightningModule: a siamese feature network, the implicit registration layer, training losses,
evaluation metrics and the per-pair test table."""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, is_dataclass

import lightning as L
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.strategies import DDPStrategy
from torchmetrics import MeanMetric

from .distributed import gather_rows
from .evaluation import SUMMARY_KEYS, pair_rows, write_rows
from .losses import ImageDissimilarity, one_hot_labels, soft_dice_loss
from .nn import FeatureNetwork, UNet
from .runs import run_directory, share_run_directory
from .settings import EvalSolverSettings, SolverSettings
from .solver import Prompt, RegistrationResult, label_prompt

#: The default network as LightningCLI shows it (class path and arguments); in Python each module
#: built with it gets a new UNet.
DEFAULT_NETWORK = lazy_instance(UNet, dims=2)


class RegistrationModule(L.LightningModule):
    """Learn features for registration end to end through the solver.

    Args:
        network: the feature network, shared by fixed and moving (siamese); default a 2D UNet
            (command line: ``--model.network lightning_reg.nn.LKUNet``, ``--model.network.init_args.dims 3``).
        train_solver: solver settings while training.
        eval_solver: for validation, test and predict: the training settings with the fields given
            here replaced, so evaluation may switch representation, iterations, scales, similarity,
            prompts, ... (a full ``SolverSettings`` is used as it is).
        image_loss: ``lncc`` or ``mse`` between the fixed image and the warped moving image.
        image_weight, dice_weight: weights of the image term and of ``1 - soft Dice`` of the labels
            warped linearly (one-hot); the loss is averaged over the pyramid levels.
        progressive_epochs: if > 0, train the coarsest level alone first and add the next finer
            level every ``progressive_epochs`` epochs.
        lr, weight_decay, poly_power: AdamW with polynomial decay of the learning rate to 0.
    """

    def __init__(self, network: FeatureNetwork | None = DEFAULT_NETWORK, train_solver: SolverSettings | None = None,
                 eval_solver: EvalSolverSettings | None = None, image_loss: str = "lncc", image_weight: float = 1.0,
                 dice_weight: float = 1.0, progressive_epochs: int = 0, lr: float = 3e-4,
                 weight_decay: float = 1e-5, poly_power: float = 0.9) -> None:
        super().__init__()
        with warnings.catch_warnings():  # outside LightningCLI the module is dropped just below
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        if isinstance(self.hparams.get("network"), torch.nn.Module):
            # outside LightningCLI: the weights are in the state dict; do not pickle the module
            del self.hparams["network"]
        for key in ("train_solver", "eval_solver"):  # plain dicts, so torch.load(weights_only=True) reads them
            if is_dataclass(self.hparams.get(key)):
                self.hparams[key] = asdict(self.hparams[key])
        self.network = UNet(dims=2) if network is None or network is DEFAULT_NETWORK else network  # never shared
        self.train_solver = SolverSettings(**train_solver) if isinstance(train_solver, dict) else (
            train_solver or SolverSettings())
        if isinstance(eval_solver, dict):  # from a checkpoint's hyperparameters
            eval_solver = EvalSolverSettings(**eval_solver)
        self.eval_solver = self.train_solver if eval_solver is None else (
            eval_solver if isinstance(eval_solver, SolverSettings) else eval_solver.resolve(self.train_solver))
        for name, settings in (("train_solver", self.train_solver), ("eval_solver", self.eval_solver)):
            settings.layer()  # unknown names and bad options fail now, not mid-training
            if mismatch := settings.iterations_mismatch(self.network.scales):
                raise ValueError(f"{name}.iterations: give one iteration count per solver level, or one for all "
                                 f"({mismatch})")
        self.image_dissimilarity = ImageDissimilarity(image_loss)
        if image_weight < 0 or dice_weight < 0 or image_weight + dice_weight == 0:
            raise ValueError(f"image_weight and dice_weight must be >= 0 and not both 0, "
                             f"got {image_weight} and {dice_weight}")
        self.test_rows: list[dict] = []
        # NaN (e.g. HD95 of a label missing from a pair) counts as no value, as in ``evaluation.mean_rows``
        self.summaries = torch.nn.ModuleDict({f"{stage}_{key}": MeanMetric(nan_strategy="ignore")
                                              for stage in ("val", "test") for key in SUMMARY_KEYS})

    # ----------------------------------------------------------------------------------- forward
    def features(self, fixed: torch.Tensor, moving: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Siamese feature pyramids of both images (one network call when their shapes agree)."""
        if fixed.shape == moving.shape:
            both = self.network(torch.cat([fixed, moving]))
            return [level[:len(fixed)] for level in both], [level[len(fixed):] for level in both]
        return self.network(fixed), self.network(moving)

    def register(self, batch: dict, settings: SolverSettings, levels: int | None = None) -> list[RegistrationResult]:
        """Solve every level for the pairs of ``batch``; results at the fixed image's resolution."""
        fixed, moving = batch["fixed"], batch["moving"]
        fixed_features, moving_features = (settings.pyramid(features, self.network.scales)
                                           for features in self.features(fixed, moving))
        if levels is not None:
            fixed_features, moving_features = fixed_features[:levels], moving_features[:levels]
        common = dict(fixed_affine=batch.get("fixed_affine"), moving_affine=batch.get("moving_affine"),
                      prompts=self.prompts(batch, settings))
        init_layer = settings.init_layer(len(fixed_features))
        init = init_layer(fixed_features, moving_features, **common)[-1] if init_layer else None
        results = settings.layer(len(fixed_features))(fixed_features, moving_features, init=init, **common)
        return [result.resized(fixed.shape[2:]) for result in results]

    @staticmethod
    def prompts(batch: dict, settings: SolverSettings) -> list[Prompt]:
        """The label prompt of ``settings`` for ``batch`` (empty without ``prompt_labels``)."""
        if not settings.prompt_labels:
            return []
        if "fixed_seg" not in batch or "moving_seg" not in batch:
            raise ValueError("prompt_labels need label maps of both images: the batches have no fixed_seg/moving_seg")
        return [label_prompt(batch["fixed_seg"], batch["moving_seg"], list(settings.prompt_labels),
                             settings.prompt_weight)]

    def forward(self, batch: dict) -> RegistrationResult:
        """The final warp of ``batch`` with the evaluation settings."""
        return self.register(batch, self.eval_solver)[-1]

    def with_eval_solver(self, **settings) -> "RegistrationModule":
        """This model for evaluation (the same network, not a copy; training options at their defaults)
        with evaluation settings replaced field by field, e.g.
        ``model.with_eval_solver(transform="svf", prompt_labels=[2])``."""
        overrides = {**vars(self.eval_solver), **settings}
        return type(self)(network=self.network, train_solver=self.train_solver,
                          eval_solver=SolverSettings(**overrides)).to(self.device).eval()

    def predict_step(self, batch: dict, batch_index: int) -> RegistrationResult:
        """The final warp of ``batch``; ``prediction.NiftiPredictionWriter`` writes it as NIfTI."""
        return self(batch)

    # ---------------------------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        share_run_directory(self.trainer)
        if stage == "fit":
            self._check_ddp_levels()

    def _check_ddp_levels(self) -> None:
        """DDP needs a gradient for every weight at every step: refuse, before training starts,
        settings that leave some of the network's levels out of the loss."""
        strategy = self.trainer.strategy
        ddp_options = getattr(strategy, "_ddp_kwargs", {})  # what ddp_find_unused_parameters_true sets
        if not isinstance(strategy, DDPStrategy) or ddp_options.get("find_unused_parameters"):
            return
        reasons = []
        if self.hparams.progressive_epochs > 0:
            reasons.append(f"progressive_epochs={self.hparams.progressive_epochs} trains the coarse levels alone first")
        if len(set(self.train_solver.source_levels(self.network.scales))) < len(self.network.scales):
            reasons.append(f"train_solver.scales {list(self.train_solver.scales)} take only some of the "
                           f"network's levels {list(self.network.scales)}")
        if reasons:
            raise ValueError(f"{'; '.join(reasons)}, so some network weights get no gradient at some steps, which "
                             f"DDP refuses: use --trainer.strategy ddp_find_unused_parameters_true")

    def active_levels(self) -> int:
        levels = self.train_solver.level_count(self.network.scales)
        epochs = self.hparams.progressive_epochs
        if epochs <= 0:
            return levels
        return min(levels, 1 + self.current_epoch // epochs)

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        if self.hparams.dice_weight > 0 and ("fixed_seg" not in batch or "moving_seg" not in batch):
            raise ValueError("dice_weight > 0 needs label maps: the batches have no fixed_seg/moving_seg. "
                             "Give labels in the data, or set --model.dice_weight 0")
        results = self.register(batch, self.train_solver, self.active_levels())
        labels = None
        if self.hparams.dice_weight > 0:
            labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"])
        image_terms, dice_terms = [], []
        for result in results:
            image_terms.append(self.image_dissimilarity(batch["fixed"], result.warp(batch["moving"])))
            if labels is not None:
                dice_terms.append(soft_dice_loss(labels[0], result.warp(labels[1])))
        image = torch.stack(image_terms).mean()
        loss = self.hparams.image_weight * image
        batch_size = len(batch["fixed"])
        self.log("train/image_loss", image, batch_size=batch_size)
        if dice_terms:
            dice = torch.stack(dice_terms).mean()
            loss = loss + self.hparams.dice_weight * dice
            self.log("train/dice_loss", dice, batch_size=batch_size)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        return loss

    def configure_optimizers(self):
        parameters = [p for p in self.parameters() if p.requires_grad]
        if not parameters:
            raise ValueError(f"{type(self.network).__name__} has no weights to train; evaluate it with "
                             f"lightning-reg validate/test instead of fit")
        optimizer = torch.optim.AdamW(parameters, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=self.hparams.poly_power)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -------------------------------------------------------------------------------- evaluation
    def evaluate(self, batch: dict) -> list[dict]:
        """Register ``batch`` with the evaluation settings; one metrics row per pair."""
        start = time.perf_counter()
        with torch.no_grad():
            result = self(batch)
        return pair_rows(batch, result, (time.perf_counter() - start) / len(batch["fixed"]))

    def _log_rows(self, stage: str, rows: list[dict]) -> None:
        """Log the per-pair means of ``rows``; torchmetrics sums values and counts over processes at
        the end of the epoch. (Lightning's own ``sync_dist`` mean is wrong when processes evaluate
        different numbers of pairs: it averages the pair counts over processes in integers,
        Lightning-AI/pytorch-lightning#21859.)"""
        for key in SUMMARY_KEYS:
            if rows and key in rows[0]:  # the same keys on every process: each logs, each takes part in the sum
                mean = self.summaries[f"{stage}_{key}"]
                mean.update(torch.tensor([row[key] for row in rows], dtype=torch.float64, device=self.device))
                self.log(f"{stage}/{key}", mean, batch_size=len(rows), prog_bar=key == "dice")

    def validation_step(self, batch: dict, batch_index: int) -> None:
        self._log_rows("val", self.evaluate(batch))

    def test_step(self, batch: dict, batch_index: int) -> None:
        rows = self.evaluate(batch)
        self.test_rows.extend(rows)
        self._log_rows("test", rows)

    def on_test_epoch_start(self) -> None:
        self.test_rows = []

    def on_test_epoch_end(self) -> None:
        rows = gather_rows(self.trainer, self.test_rows)
        if self.trainer.is_global_zero and rows:
            write_rows(run_directory(self.trainer) / "test_metrics.csv", rows)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A clear error when the checkpoint holds the weights of another network."""
        mine = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in checkpoint.get("state_dict", {}).items()}
        if mine != theirs:
            different = sorted(set(mine) ^ set(theirs)) or [k for k in mine if mine[k] != theirs.get(k)]
            raise ValueError(f"the checkpoint was trained with another network than {type(self.network).__name__}"
                             f"(dims={self.network.dims}, scales={self.network.scales}): parameters differ, e.g. "
                             f"{different[:3]}. Use the training run's config (--config <run>/config.yaml) or "
                             f"its network settings")
