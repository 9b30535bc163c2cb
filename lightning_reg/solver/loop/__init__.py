"""The solver's loop: the optimizers' steps, the iterations at one scale, and the implicit gradient of
their optimum."""
