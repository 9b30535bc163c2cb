"""Training: the LightningModule, its solver settings, losses, callbacks, run folders and checkpoints."""
