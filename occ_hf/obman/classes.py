"""The object classes of OCC-MLLM-CoT and their ShapeNetCore synsets.

ObMan draws its objects from 9 ShapeNet categories (hassony2/obman `assets/shapenet_select.csv`); the seed keeps
8 of them and drops mug. Class names are the exact strings of the seed's answers ("The object is cellphone.").
"""

__all__ = ["OCC_CLASSES", "SYNSET_TO_CLASS", "CLASS_TO_SYNSET", "OBMAN_SYNSETS"]

# Order fixes the integer ids of the dataset's `label` ClassLabel; it follows the seed's class counts.
OCC_CLASSES = ("jar", "bottle", "cellphone", "bowl", "knife", "camera", "can", "remote")

CLASS_TO_SYNSET = {
    "bottle": "02876657",
    "bowl": "02880940",
    "can": "02946921",
    "jar": "03593526",
    "knife": "03624134",
    "cellphone": "02992529",
    "camera": "02942699",
    "remote": "04074963",
}
SYNSET_TO_CLASS = {synset: name for name, synset in CLASS_TO_SYNSET.items()}

# Every synset an ObMan split may contain, with ShapeNet's name; "mug" is in ObMan but not an OCC class.
OBMAN_SYNSETS = {**SYNSET_TO_CLASS, "03797390": "mug"}
