"""The solver's geometry: grids, sampling, filters, coordinate frames, label maps, the transforms'
representations and their inverses. Imports nothing of the energy or the loop."""
