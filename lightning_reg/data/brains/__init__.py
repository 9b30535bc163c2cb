"""Real anatomy as training, validation and test data: the folder ``python -m lightning_reg.anatomy``
builds (AHBA donors' DK label maps, fsaverage), read by ``BrainDataModule``; who is held out
(``cohort``), the common grid (``grid``), the fixed contrast recipes (``recipes``) and thick slices
(``anisotropy``)."""
