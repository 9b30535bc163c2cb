"""Files in and out: NIfTI volumes (``nifti``), ANTs transform files (``ants``), landmark CSVs
(``landmarks``), saved transforms applied to other images (``apply_transforms``), output folders
that appear whole or not at all (``output_folder``), names read from data made into paths only
inside their folder (``names``) and JSON that strict readers accept (``strict_json``)."""
