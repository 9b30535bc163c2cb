"""W&B sweep files run offline: the engine that proposes and runs each configuration, and the summary."""
