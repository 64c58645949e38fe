"""Reads a real ObMan split (or one written by `occ-hf synth-obman`) into typed `ObManSample`s.

Supported layout (checked against hassony2/obman `obman/obman.py`, hassony2/obman_train
`handobjectdatasets/obman.py` and the writer hassony2/obman_render `blender_grasps.py`):

```
<root>/<split>/                  split is train, val or test
    meta/{id:08d}.pkl            the sample list is this folder, sorted; ids have gaps where renders were dropped
    rgb/{id:08d}.jpg             full scene, 256 x 256
    rgb_obj/{id:08d}.jpg         object only (optional here)
    rgb_hand/{id:08d}.jpg        hand only (optional here)
    segm/{id:08d}.png            3 channels written by OpenCV, in BGR order:
                                 0 full render, 1 hand alone, 2 object alone (amodal);
                                 object = 100, hands = 21..24 (right 22 and 24, left 21 and 23)
    depth/{id:08d}.png           optional; same channel order, 1..255 scaled between the meta's depth bounds
<shapenet_root>/<class_id>/<sample_id>/models/model_normalized.obj     the object's mesh
```

Meta keys read here: `class_id` (ShapeNet synset), `sample_id` (ShapeNet model id), `affine_transform` (4 x 4,
model coordinates to Blender's camera frame, scale included), `obj_scale`, `side`, and `obj_visibility_ratio`
when the split has no amodal mask; the whole dict stays available as `ObManSample.meta`. The loaders ignore
`obj_path` (a path on the authors' machines) and so do we. Meta files are unpickled with the restricted unpickler
of `occ_hf.obman.safe_pickle`; every file is read through `occ_hf.obman.input_files` (regular files only, bounded
size, images under PIL's pixel limit). Each sample's rgb header is read (an empty file or an HTML page fails here,
named), its segm must be a PNG of the rgb's size, and the meta values used here are checked in one place
(`ObManSplit.pose_from_meta`, `class_name_of`, `occlusion_from_meta`).

```python
split = ObManSplit("/data/obman", "test", shapenet_root="/data/ShapeNetCore.v2", on_unknown_class="skip")
for sample in split:                    # streams: one sample's files at a time
    sample.class_name, sample.occlusion
print(split.skipped)                    # Counter of skip reasons, e.g. {"unknown class 03797390 (mug)": 12}
```
"""

import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .camera import BLENDER_TO_OPENCV, Camera, obman_camera
from .classes import OBMAN_SYNSETS, SYNSET_TO_CLASS
from .errors import ObManFormatError
from .ids import obman_sample_id
from .input_files import MAX_IMAGE_FILE_BYTES, decode_image, read_regular_file
from .safe_pickle import load_meta


__all__ = [
    "HAND_SEGM_VALUES",
    "OBJECT_SEGM_VALUE",
    "SYNTH_MARKER",
    "ObManSample",
    "ObManSplit",
    "UnknownClassError",
    "occlusion_from_masks",
    "read_rgb_size",
    "read_segm",
]

logger = logging.getLogger(__name__)

OBJECT_SEGM_VALUE = 100
# Blender pass indices of the body parts leftHand, rightHand, leftHandIndex1, rightHandIndex1
# (hassony2/obman_render `obman_render/texturing.py`); the loaders' `_get_segm` uses the same values.
HAND_SEGM_VALUES = (21, 22, 23, 24)
REQUIRED_META_KEYS = ("class_id", "sample_id", "affine_transform", "obj_scale")
_SHAPENET_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Written at the root of every root that `occ-hf synth-obman` generated (how each split was made); its absence
# marks real ObMan.
SYNTH_MARKER = "occ_hf_synth.json"


@dataclass
class ObManSample:
    """One ObMan image with what OCC-MLLM-CoT needs of it.

    Attributes:
        sample_id (`str`): 8-digit id, the file stem (`"00000003"`).
        split (`str`): `train`, `val` or `test`.
        rgb_path (`Path`): The full-scene image.
        segm_path (`Path`), meta_path (`Path`), depth_path (`Path` or `None`): The sample's other files.
        class_id (`str`): ShapeNet synset of the object.
        class_name (`str`): One of the 8 OCC classes.
        shapenet_id (`str`): ShapeNet model id of the object (meta `sample_id`).
        mesh_path (`Path` or `None`): `model_normalized.obj` under the ShapeNet root, `None` without a root.
        camera ([`Camera`]): ObMan's fixed camera.
        affine_transform (`np.ndarray` `[4, 4]`): Model coordinates to Blender's camera frame, scale included.
        obj_scale (`float`): The object's scale, as in the meta.
        hand_mask (`np.ndarray` `[H, W]`, bool): Visible hand pixels in the full render.
        object_mask (`np.ndarray` `[H, W]`, bool): Visible object pixels in the full render.
        amodal_object_mask (`np.ndarray` `[H, W]`, bool, or `None`): The whole object as if no hand were there.
        occlusion (`float` or `None`): Share of the object's pixels hidden by the hand.
        occlusion_source (`str`): `"masks"` (from the amodal mask) or `"meta"` (1 - `obj_visibility_ratio`),
            or `"none"` where neither exists.
        meta (`dict`): Every field of the meta pickle.
    """

    sample_id: str
    split: str
    rgb_path: Path
    segm_path: Path
    meta_path: Path
    depth_path: Path | None
    class_id: str
    class_name: str
    shapenet_id: str
    mesh_path: Path | None
    camera: Camera
    affine_transform: np.ndarray
    obj_scale: float
    hand_mask: np.ndarray
    object_mask: np.ndarray
    amodal_object_mask: np.ndarray | None
    occlusion: float | None
    occlusion_source: str
    meta: dict = field(repr=False)

    @property
    def object_to_camera(self) -> np.ndarray:
        """`[4, 4]` transform from the mesh's model coordinates to the OpenCV camera frame of `camera`."""
        flip = np.eye(4)
        flip[:3, :3] = BLENDER_TO_OPENCV
        return flip @ self.affine_transform


def read_segm(path: str | os.PathLike) -> np.ndarray:
    """Reads an ObMan `segm/*.png` as `[H, W, 3]` uint8 in OpenCV's channel order (full, hand, object).

    The writer saved it with `cv2.imwrite`, which stores channel 0 as blue; PIL decodes RGB, so we reverse it.
    The file must be a PNG: a lossy format (a JPEG renamed `.png`) shifts the label values at every edge, so the
    masks and the occlusion would change without any error.
    """
    try:
        data = read_regular_file(path, MAX_IMAGE_FILE_BYTES)
    except FileNotFoundError:
        raise ObManFormatError(f"{path}: segmentation file not found (is the split complete?).") from None
    image = decode_image(data, path)
    if image.format != "PNG":
        raise ObManFormatError(
            f"{path}: segmentation is a {image.format} file, not a PNG; a lossy format changes the label values "
            "(ObMan writes segm as PNG), so re-download or re-extract it."
        )
    if image.mode not in ("RGB", "RGBA", "L", "P"):
        raise ObManFormatError(f"{path}: segmentation image has mode {image.mode}, expected 3 channels.")
    if image.mode == "L":
        full = np.asarray(image)
        return np.stack([full, np.zeros_like(full), np.zeros_like(full)], axis=-1)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])


def read_rgb_size(path: str | os.PathLike) -> tuple[int, int]:
    """The `(width, height)` of an ObMan `rgb/*.jpg`, from its header only (cheap); raises [`ObManFormatError`]
    naming the file when it is missing, not a regular file, empty, not an image (an HTML page) or too large."""
    try:
        data = read_regular_file(path, MAX_IMAGE_FILE_BYTES)
    except FileNotFoundError:
        raise ObManFormatError(f"{path}: image not found (is the split complete?).") from None
    return decode_image(data, path, header_only=True).size


def occlusion_from_masks(object_mask: np.ndarray, amodal_object_mask: np.ndarray) -> float:
    """Share of the amodal object's pixels that are not visible in the full render (0 = fully visible)."""
    amodal = int(amodal_object_mask.sum())
    if amodal == 0:
        return 1.0
    return 1.0 - int((object_mask & amodal_object_mask).sum()) / amodal


class ObManSplit(Sequence[ObManSample]):
    """One split of an ObMan root, read lazily: `len()`, indexing by position, iteration (streaming).

    Args:
        root (`str` or `os.PathLike`): Folder holding `train/`, `val/`, `test/` (ObMan's `obman/`).
        split (`str`, *optional*, defaults to `"train"`): Which split to read.
        shapenet_root (`str` or `os.PathLike`, *optional*):
            ShapeNetCore.v2 root, for `mesh_path`; a missing mesh is then an error (or a skip).
        ids (`Sequence[str]`, *optional*): Read only these sample ids (8 digits, or ints), in this order.
        on_unknown_class (`"error"` or `"skip"`, *optional*, defaults to `"error"`):
            What to do with samples whose synset is not one of the 8 OCC classes (ObMan's mugs); skips are
            counted in `skipped` and logged once iteration ends.
        on_bad_sample (`"error"` or `"skip"`, *optional*, defaults to `"error"`):
            What to do with a missing, truncated or corrupt file; skips are counted the same way.

    After a full iteration, `skipped` counts the skips by reason and `skipped_ids` maps each skipped id to its
    reason (with the file named), so nothing is dropped silently.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        shapenet_root: str | os.PathLike | None = None,
        ids: Sequence[str | int] | None = None,
        on_unknown_class: Literal["error", "skip"] = "error",
        on_bad_sample: Literal["error", "skip"] = "error",
    ):
        for name, value in (("on_unknown_class", on_unknown_class), ("on_bad_sample", on_bad_sample)):
            if value not in ("error", "skip"):
                raise ValueError(f"{name} must be 'error' or 'skip', got {value!r}.")
        self.root = Path(root)
        self.split = split
        self.split_dir = self.root / split
        self.shapenet_root = Path(shapenet_root) if shapenet_root is not None else None
        self.on_unknown_class = on_unknown_class
        self.on_bad_sample = on_bad_sample
        self.camera = obman_camera()
        self.skipped: Counter[str] = Counter()
        self.skipped_ids: dict[str, str] = {}
        meta_dir = self.split_dir / "meta"
        if not meta_dir.is_dir():
            raise ObManFormatError(
                f"{meta_dir}: no meta folder; expected an ObMan root holding {split}/meta/*.pkl "
                "(pass the folder that contains train/, val/ and test/)."
            )
        if ids is None:
            self.ids = sorted(name[: -len(".pkl")] for name in os.listdir(meta_dir) if name.endswith(".pkl"))
        else:
            self.ids = [obman_sample_id(i) for i in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> ObManSample:
        return self.read(self.ids[index])

    def __iter__(self) -> Iterator[ObManSample]:
        """Yields each readable sample; skips (where asked for) are counted in `skipped` and logged at the end."""
        self.skipped.clear()
        self.skipped_ids.clear()
        for sample_id in self.ids:
            try:
                sample = self.read(sample_id)
            except UnknownClassError as error:
                if self.on_unknown_class == "error":
                    raise
                self._count_skip(sample_id, f"unknown class {error.class_id} ({error.class_known_as})")
                continue
            except ObManFormatError as error:
                if self.on_bad_sample == "error":
                    raise
                self._count_skip(sample_id, f"bad file: {error}")
                continue
            yield sample
        if self.skipped:
            logger.warning(
                "Skipped %d of %d samples in %s: %s",
                sum(self.skipped.values()),
                len(self.ids),
                self.split_dir,
                dict(self.skipped),
            )

    def _count_skip(self, sample_id: str, reason: str) -> None:
        self.skipped["bad file" if reason.startswith("bad file") else reason] += 1
        self.skipped_ids[sample_id] = reason

    def read(self, sample_id: str | int) -> ObManSample:
        """Reads one sample by id; raises [`ObManFormatError`] (or [`UnknownClassError`]) naming the bad file."""
        return self._read(obman_sample_id(sample_id))

    @staticmethod
    def class_name_of(meta: dict, meta_path: Path, on_unknown_class: str = "error") -> str | None:
        """The OCC class of a meta dict; `None` for other synsets with `on_unknown_class="skip"`, else raises."""
        if "class_id" not in meta:
            raise ObManFormatError(f"{meta_path}: missing meta keys ['class_id'] (is this an ObMan split?).")
        class_id = str(meta["class_id"])
        if class_id in SYNSET_TO_CLASS:
            return SYNSET_TO_CLASS[class_id]
        if on_unknown_class == "skip":
            return None
        raise UnknownClassError(meta_path, class_id)

    @staticmethod
    def occlusion_from_meta(meta: dict, meta_path: Path) -> float | None:
        """1 - `obj_visibility_ratio` of a meta dict, `None` when it has none; raises [`ObManFormatError`] naming the
        file when the ratio is not a number between 0 and 1."""
        visibility = meta.get("obj_visibility_ratio")
        if visibility is None:
            return None
        try:
            visibility = float(visibility)
        except (TypeError, ValueError):
            visibility = math.nan
        if not -1e-6 <= visibility <= 1.0 + 1e-6:  # also false for NaN; the margin is float rounding
            raise ObManFormatError(
                f"{meta_path}: obj_visibility_ratio is {meta['obj_visibility_ratio']!r}; expected the visible share "
                "of the object, a number between 0 and 1 (is the file damaged?)."
            )
        return 1.0 - min(max(visibility, 0.0), 1.0)

    @staticmethod
    def pose_from_meta(meta: dict, meta_path: Path) -> tuple[np.ndarray, float]:
        """`(affine_transform, obj_scale)` of a meta dict, checked: a finite 4 x 4 matrix and a finite positive
        number; raises [`ObManFormatError`] naming the file otherwise (a NaN pose renders an empty view)."""
        try:
            affine_transform = np.asarray(meta["affine_transform"], dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ObManFormatError(
                f"{meta_path}: affine_transform is not a 4x4 matrix of numbers ({error}); is the file damaged?"
            ) from None
        if affine_transform.shape != (4, 4):
            raise ObManFormatError(
                f"{meta_path}: affine_transform has shape {affine_transform.shape}, expected (4, 4)."
            )
        if not np.isfinite(affine_transform).all():
            raise ObManFormatError(f"{meta_path}: affine_transform holds NaN or infinite values; is the file damaged?")
        obj_scale = meta["obj_scale"]
        try:
            # A bool is a number to Python but never a scale; np.bool_ is no `bool`, so test both.
            scale = math.nan if isinstance(obj_scale, (bool, np.bool_)) else float(obj_scale)
        except (TypeError, ValueError):
            scale = math.nan
        if not (math.isfinite(scale) and scale > 0):
            raise ObManFormatError(
                f"{meta_path}: obj_scale is {obj_scale!r}; expected a positive number (is the file damaged?)."
            )
        return affine_transform, scale

    def _read(self, sample_id: str) -> ObManSample:
        meta_path = self.split_dir / "meta" / f"{sample_id}.pkl"
        meta = load_meta(meta_path)
        missing = [key for key in REQUIRED_META_KEYS if key not in meta]
        if missing:
            raise ObManFormatError(f"{meta_path}: missing meta keys {missing} (is this an ObMan split?).")
        class_id = str(meta["class_id"])
        self.class_name_of(meta, meta_path, on_unknown_class="error")

        affine_transform, obj_scale = self.pose_from_meta(meta, meta_path)

        rgb_path = self.split_dir / "rgb" / f"{sample_id}.jpg"
        width, height = read_rgb_size(rgb_path)
        segm_path = self.split_dir / "segm" / f"{sample_id}.png"
        segm = read_segm(segm_path)
        if segm.shape[:2] != (height, width):
            raise ObManFormatError(
                f"{segm_path}: segmentation is {segm.shape[1]}x{segm.shape[0]} but its image {rgb_path} is "
                f"{width}x{height}; they must match pixel for pixel (re-download or re-extract the split)."
            )
        full, amodal = segm[..., 0], segm[..., 2]
        hand_mask = np.isin(full, HAND_SEGM_VALUES)
        object_mask = full == OBJECT_SEGM_VALUE
        amodal_object_mask = amodal == OBJECT_SEGM_VALUE
        if amodal_object_mask.any():
            occlusion, source = occlusion_from_masks(object_mask, amodal_object_mask), "masks"
        else:
            amodal_object_mask = None
            occlusion = self.occlusion_from_meta(meta, meta_path)
            source = "none" if occlusion is None else "meta"

        shapenet_id = str(meta["sample_id"])
        if not _SHAPENET_ID.fullmatch(shapenet_id):
            # It becomes a path under shapenet_root: a damaged or hostile meta must not point outside it ('../').
            raise ObManFormatError(
                f"{meta_path}: sample_id {shapenet_id[:80]!r} is not a ShapeNet model id (letters, digits, '_' and "
                "'-' only); is the file damaged?"
            )
        mesh_path = None
        if self.shapenet_root is not None:
            mesh_path = self.shapenet_root / class_id / shapenet_id / "models" / "model_normalized.obj"
            if not mesh_path.is_file():
                raise ObManFormatError(
                    f"{mesh_path}: object mesh of sample {meta_path} not found "
                    "(is shapenet_root the ShapeNetCore.v2 folder?)."
                )
        depth_path = self.split_dir / "depth" / f"{sample_id}.png"
        return ObManSample(
            sample_id=sample_id,
            split=self.split,
            rgb_path=rgb_path,
            segm_path=segm_path,
            meta_path=meta_path,
            depth_path=depth_path if depth_path.is_file() else None,
            class_id=class_id,
            class_name=SYNSET_TO_CLASS[class_id],
            shapenet_id=shapenet_id,
            mesh_path=mesh_path,
            camera=self.camera,
            affine_transform=affine_transform,
            obj_scale=obj_scale,
            hand_mask=hand_mask,
            object_mask=object_mask,
            amodal_object_mask=amodal_object_mask,
            occlusion=occlusion,
            occlusion_source=source,
            meta=meta,
        )


class UnknownClassError(ObManFormatError):
    """A sample's object is not one of the 8 OCC classes (ObMan's mugs, or a synset ObMan never used)."""

    def __init__(self, meta_path: Path, class_id: str):
        self.class_id = class_id
        self.class_known_as = OBMAN_SYNSETS.get(class_id, "not an ObMan category")
        super().__init__(
            f"{meta_path}: class_id {class_id!r} ({self.class_known_as}) is not one of the 8 OCC classes; "
            "pass on_unknown_class='skip' to skip such samples."
        )
