"""The solver's energy: similarities, regularizers and the objective that sums them (with label
prompts and masks). Imports the geometry, never the loop."""
