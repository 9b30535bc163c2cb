"""lightning_reg: learned deformable image registration with optimization as a layer."""
__version__ = "0.1.0"
