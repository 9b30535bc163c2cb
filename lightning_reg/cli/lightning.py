"""``lightning-reg fit | validate | test | predict``: LightningCLI on the registration module and data."""

from __future__ import annotations

import copy
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Sequence, cast

import yaml
from lightning import LightningDataModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from ..data import (  # noqa: F401 (short names)
    ABCDDataModule,
    BrainDataModule,
    OASISDataModule,
    PairsDataModule,
    SyntheticDataModule,
)
from ..errors import InputError
from ..files.output_folder import atomic_path
from ..training.callbacks import (
    ConjugateGradientLog,
    InterruptCheckpoint,
    LogLines,
    MetricsFile,
    NiftiPredictionWriter,
    RegistrationPanel,
)
from ..training.checkpoints import AtomicCheckpointIO, check_trusted, read_checkpoint, resume_checkpoint
from ..training.module import RegistrationModule
from ..training.run_folder import run_directory, share_run_directory, wandb_logged_in
from ..training.solver_settings import upgraded_hyperparameters


class SaveRunConfig(SaveConfigCallback):
    """Save the resolved config into the run's own folder (not a folder shared by all runs) and
    give it to W&B as the run's config."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        share_run_directory(trainer)  # on every process, before process 0 alone saves
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        directory = run_directory(trainer)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / self.config_filename) as temporary:
            self.parser.save(self.config, temporary, skip_none=False, overwrite=True, multifile=self.multifile)
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.experiment.config.update(
                {"cli": self.parser.dump(self.config, skip_none=False)}, allow_val_change=True
            )


def trainer_defaults() -> dict:
    """CPU, W&B (offline unless logged in) under ``runs/``; checkpoints: the best by validation Dice,
    and ``last.ckpt`` at the end of every epoch (written atomically; ``interrupted.ckpt`` on Ctrl-C);
    progress as plain lines when stderr is not a terminal (:meth:`RegistrationCLI.instantiate_trainer`)."""
    logger = {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "lightning-reg", "save_dir": "runs", "offline": not wandb_logged_in()},
    }
    best = ModelCheckpoint(
        monitor="val/dice", mode="max", filename="best-{epoch}-{step}", auto_insert_metric_name=False
    )
    # Lightning's save_last on the monitored checkpoint is written only when the monitored value
    # improves; this one keeps the single latest state, every epoch
    last = ModelCheckpoint(
        filename=ModelCheckpoint.CHECKPOINT_NAME_LAST,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
        save_on_train_epoch_end=True,
    )
    callbacks = [
        best,
        last,
        InterruptCheckpoint(),
        RegistrationPanel(),
        NiftiPredictionWriter(),
        MetricsFile(),
        ConjugateGradientLog(),
    ]
    return {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "log_every_n_steps": 10,
        "gradient_clip_val": 1.0,
        "default_root_dir": "runs",
        "logger": logger,
        "plugins": [{"class_path": f"{AtomicCheckpointIO.__module__}.{AtomicCheckpointIO.__name__}"}],
        "callbacks": callbacks,
    }


class RegistrationCLI(LightningCLI):
    """LightningCLI that checks ``--ckpt_path`` and lets command-line model options win over the
    hyperparameters stored in the checkpoint (so ``test --model.eval_solver.transform svf`` works)."""

    def _add_subcommands(self, parser, **kwargs) -> None:
        super()._add_subcommands(parser, **kwargs)
        self._subcommand_parsers["predict"].add_argument(
            "--overwrite",
            action="store_true",
            help="replace the predictions of an earlier predict in the same run folder (once the new ones are "
            "complete)",
        )

    def parse_arguments(self, parser, args) -> None:
        self.given_model_keys = _model_keys(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path == "last":
            self._resolve_last(subcommand)
            self._continue_run(subcommand)
        elif ckpt_path and not Path(ckpt_path).is_file():
            raise InputError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
        if subcommand and self.config[subcommand].trainer.get("logger") is False:
            self._own_run_folder(subcommand)

    def _own_run_folder(self, subcommand: str) -> None:
        """Without a logger, Lightning writes every run into ``default_root_dir`` itself, and a second
        run replaced the first's checkpoints, config and metrics; here each run gets a new folder under
        it (``run-<date>-<time>-<4 hex>``), and ``fit`` from a checkpoint in ``<run>/checkpoints/`` goes
        on in that run's folder, as it does under W&B."""
        config = self.config[subcommand]
        checkpoint = Path(config.ckpt_path) if config.get("ckpt_path") else None
        if subcommand == "fit" and checkpoint is not None and checkpoint.parent.name == "checkpoints":
            folder = checkpoint.parent.parent
        else:
            root = Path(config.trainer.get("default_root_dir") or "runs")
            folder = root / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        config.trainer.default_root_dir = str(folder)

    def _resolve_last(self, subcommand: str) -> None:
        """``--ckpt_path last``: the newest run's checkpoint under the run folders (``resume_checkpoint``),
        named on stderr."""
        found = resume_checkpoint(self._roots(subcommand))
        if found is None:
            raise InputError(
                f"--ckpt_path last: no run under {', '.join(map(str, self._roots(subcommand)))} has a "
                f"checkpoints/last.ckpt or interrupted.ckpt; give a checkpoint's path"
            )
        print(f"lightning-reg {subcommand}: --ckpt_path last is {found}", file=sys.stderr)
        self.config[subcommand].ckpt_path = str(found)

    def _roots(self, subcommand: str) -> list[str]:
        """The folders that hold run folders: the trainer's ``default_root_dir`` and W&B's ``save_dir``."""
        config = self.config[subcommand]
        options = _wandb_options(config)
        roots = [config.trainer.get("default_root_dir") or "runs"]
        if options is not None and options.get("save_dir") and options.get("save_dir") not in roots:
            roots.append(options.get("save_dir"))
        return roots

    def _continue_run(self, subcommand: str) -> None:
        """``fit --ckpt_path last`` goes on in the run folder of that checkpoint
        (``<save_dir>/<project>/<run id>/checkpoints/``) under the same W&B run id, so it resumes
        where it stopped; unless a W&B run id is given (``WANDB_RUN_ID``, as sweeps set it, or the
        logger's ``id``). ``validate``, ``test`` and ``predict`` get a run folder of their own, as each
        evaluation is a W&B run of its own, named on the command's last line."""
        config = self.config[subcommand]
        options = _wandb_options(config)
        checkpoint = Path(config.ckpt_path)
        if (
            subcommand != "fit"
            or options is None
            or options.get("id") is not None
            or os.environ.get("WANDB_RUN_ID")
            or checkpoint.parent.name != "checkpoints"
        ):
            return
        run = checkpoint.parent.parent
        options.id = run.name
        options.project = run.parent.name
        options.save_dir = str(run.parent.parent)

    def _parse_ckpt_path(self) -> None:
        # A private hook: Lightning 2.6's version replaces the whole model config by the checkpoint's
        # hyperparameters, dropping options given on the command line; this one keeps those. Upstream
        # fix still open: Lightning-AI/pytorch-lightning#21455 (and the hook #21408). If an upgrade
        # renames the hook, tests/cli/test_lightning.py::test_test_time_options_win_over_the_checkpoint
        # and test_the_private_lightning_hooks_we_override_exist fail.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path:
            return
        hparams = upgraded_hyperparameters(read_checkpoint(ckpt_path).get("hyper_parameters", {}))
        hparams.pop("_instantiator", None)
        hparams.pop("_class_path", None)
        for key in self.given_model_keys:
            _drop_path(hparams, key.split("."))
        check_trusted(hparams, ckpt_path)  # before jsonargparse imports what it names
        if not hparams:
            return
        # a partial group of hyperparameters (train_solver without the iterations the user gave) is
        # parsed with its own defaults, so the user's values are put back after the merge
        model = self.config[subcommand].model
        given = {
            found: copy.deepcopy(model[found]) for key in self.given_model_keys if (found := _config_key(model, key))
        }
        items = _dict_items(model, self.given_model_keys)
        self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        merged = self.config[subcommand].model
        for key, value in given.items():
            merged[key] = value
        for (option, item), value in items.items():  # a dict option's items (eval_solver.transform): merged
            merged[option] = {**(merged.get(option) or {}), item: value}

    def instantiate_trainer(self, **kwargs):
        """The trainer; its progress as plain lines (:class:`LogLines`) when stderr is a log file or a
        pipe, where a bar's carriage returns would pile up (unless the progress bar is turned off)."""
        trainer = self._get(self.config_init, "trainer", default={})
        if not sys.stderr.isatty() and trainer.get("enable_progress_bar") is not False:
            callbacks = kwargs.get("callbacks", trainer.get("callbacks")) or []
            kwargs["callbacks"] = [*(callbacks if isinstance(callbacks, list) else [callbacks]), LogLines()]
        try:
            return super().instantiate_trainer(**kwargs)
        except TypeError as error:  # Lightning checks the trainer's arguments with TypeErrors
            raise InputError(f"--trainer options: {error}") from None

    def before_predict(self) -> None:
        for callback in cast(list, getattr(self.trainer, "callbacks", [])):
            if isinstance(callback, NiftiPredictionWriter):
                callback.overwrite = bool(self.config.predict.get("overwrite"))

    def add_arguments_to_parser(self, parser) -> None:
        parser.set_defaults({"data": {"class_path": "lightning_reg.data.SyntheticDataModule"}})


def _config_key(model, key: str) -> str | None:
    """``key`` as the parsed model config stores it (``network.dims`` as ``network.init_args.dims``),
    or None when the config has no such key."""
    parts = key.split(".")
    return next(
        (candidate for candidate in (key, ".".join([parts[0], "init_args", *parts[1:]])) if candidate in model), None
    )


def _dict_items(model, keys: Sequence[str]) -> dict[tuple[str, str], Any]:
    """``{(option, item): value}`` for each given key that names an item of a dict option
    (``eval_solver.transform``), as the parsed model config holds it."""
    items = {}
    for key in keys:
        option, _, rest = key.partition(".")
        item = rest.split(".")[0]
        value = model.get(option)
        if item and isinstance(value, dict) and item in value:
            items[(option, item)] = copy.deepcopy(value[item])
    return items


def _wandb_options(config) -> Any:
    """The ``init_args`` of the trainer's W&B logger, or ``None`` for another logger."""
    logger = config.trainer.get("logger")
    is_wandb = hasattr(logger, "get") and str(logger.get("class_path", "")).endswith("WandbLogger")
    return logger.get("init_args") if is_wandb else None


def _model_keys(args: Sequence[str]) -> list[str]:
    """``a.b`` for every model option the user gave: ``--model.a.b[=value]`` on the command line, and
    the leaves under ``model:`` in ``--config FILE`` / ``--model FILE`` files."""
    keys = [arg[len("--model.") :].split("=")[0] for arg in args if arg.startswith("--model.")]
    for index, arg in enumerate(args):
        flag, _, value = arg.partition("=")
        if flag in ("--config", "--model") and not value and index + 1 < len(args):
            value = args[index + 1]
        if flag in ("--config", "--model") and Path(value).is_file():
            loaded = yaml.safe_load(Path(value).read_text()) or {}
            section = loaded.get("model") if flag == "--config" else loaded
            keys += _leaves(section) if isinstance(section, dict) else []
    return keys


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of a nested dict (a class_path/init_args pair counts as a leaf)."""
    paths = []
    for key, value in tree.items():
        if isinstance(value, dict) and value and "class_path" not in value:
            paths += _leaves(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def _drop_path(hparams: dict, path: list[str]) -> None:
    """Remove ``path`` from nested ``hparams``; a ``None`` on the way is removed whole (the user's
    nested value would otherwise be replaced by it)."""
    node = hparams
    for depth, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            return
        if depth == len(path) - 1 or node[key] is None:
            del node[key]
            return
        node = node[key]
        if isinstance(node, dict) and "init_args" in node and path[depth + 1] not in node:
            node = node["init_args"]


def run_lightning(argv: Sequence[str]) -> Path | None:
    """Run one LightningCLI subcommand; ``argv`` starts with it (``fit``, ``test``, ...). Returns the
    folder it wrote into (the run folder; ``predict``: its ``predictions``), ``None`` when it ran no trainer."""
    # LightningCLI reads the options from sys.argv, and so does Lightning's DDP launcher when it starts
    # the other processes: they must run this same command
    program, sys.argv = sys.argv, [sys.argv[0], *argv]
    try:
        cli = _run()
    finally:
        sys.argv = program
    if getattr(cli, "trainer", None) is None:
        return None
    if isinstance(cli.trainer.logger, WandbLogger) and cli.trainer.is_global_zero:
        import wandb

        wandb.finish()  # now, not at exit: W&B's closing notes come before the command's last line
    folder = run_directory(cli.trainer)
    return folder / "predictions" if argv[0] == "predict" else folder


class _WithoutNotices(logging.Filter):
    """Drops Lightning's notices that stand in the way of a command's one line: "Seed set to 0" before
    an error in the options, and "Detected KeyboardInterrupt" (the command says it in its own line)."""

    NOTICES = ("Seed set to ", "\nDetected KeyboardInterrupt")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOTICES)


def _run() -> RegistrationCLI:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _WithoutNotices) for existing in logger.filters):
            logger.addFilter(_WithoutNotices())
    return RegistrationCLI(
        RegistrationModule,
        LightningDataModule,
        subclass_mode_data=True,
        trainer_defaults=trainer_defaults(),
        save_config_callback=SaveRunConfig,
        save_config_kwargs={"save_to_log_dir": False},
        parser_kwargs={"prog": "lightning-reg", "exit_on_error": False},
        seed_everything_default=0,
    )
