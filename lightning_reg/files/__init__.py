"""Files in and out: NIfTI volumes (``nifti``), ANTs transform files (``ants``), landmark CSVs
(``landmarks``), saved transforms applied to other images (``apply_transforms``) and output folders
that appear whole or not at all (``output_folder``)."""
