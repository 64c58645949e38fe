"""Generates small ObMan-format splits: the real layout and meta format, with procedural objects and hands.

Nothing of ObMan can be downloaded here, so every stage of occ-hf (dataset builder, views, training, evaluation)
runs on splits written by this module exactly as it runs on real ObMan. Per sample it:

1. draws a class (or takes it from the id list), builds a procedural mesh of that class (`shapes.py`), scales it to
   the class's real size and places it `object_distance` (0.6-0.8 m by default) in front of ObMan's camera with a
   random orientation;
2. places a hand-shaped occluder (`hand_occluder.py`) between the camera and the object, sliding it across the
   object until it hides a target share of the object's pixels (drawn from `occlusion_range`);
3. renders the object alone, the hand alone and their composite with the batched rasterizer of `occ_hf.rendering`,
   and writes `rgb/`, `rgb_obj/`, `rgb_hand/` (JPEG), `segm/` (ObMan's three channels and values), `depth/`
   (ObMan's 8-bit encoding, with the writer's swapped `depth_min`/`depth_max`), `meta/` (pickle with ObMan's keys)
   and the mesh as `<shapenet_root>/<synset>/<model id>/models/model_normalized.obj`.

The meta's `affine_transform` maps the mesh to Blender's camera frame with the scale included, as ObMan's writer
builds it, so `ObManSample.object_to_camera` puts the mesh exactly on its mask. `obj_visibility_ratio` is the
visible share computed from the rendered masks (the writer's definition), so the reader's occlusion ratio, which it
recomputes from the segm PNG, must equal `1 - obj_visibility_ratio`. Fields that only a MANO/SMPL+H render can
know (`hand_pose`, `pca_pose`, `pose`, `shape`, `trans`, `mano_pose`, grasp metrics) are written with ObMan's
types and shapes and zero values; `verts_3d` holds the occluder's vertices (ObMan's has MANO's 778).

Output is deterministic for a seed: each sample draws from its own generator seeded by `(seed, split, id)`, so a
sample does not depend on the order, the batch or the number of processes.

```python
summary = generate_obman_split("data/obman", n=64, seed=0, split="test")
split = ObManSplit("data/obman", "test", shapenet_root="data/obman/ShapeNetCore.v2")
```
"""

import hashlib
import json
import logging
import os
import pickle
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..rendering import rasterize, shade_lambert
from .camera import BLENDER_TO_OPENCV, OBMAN_IMAGE_SIZE, OBMAN_INTRINSICS, obman_camera
from .classes import CLASS_TO_SYNSET, OCC_CLASSES
from .hand_occluder import make_hand_occluder
from .ids import obman_sample_id
from .reader import OBJECT_SEGM_VALUE, SYNTH_MARKER
from .safe_pickle import load_meta
from .shapes import CLASS_DIAGONAL_METRES, make_object_mesh


__all__ = [
    "BACKGROUNDS",
    "OCCLUSION_TOLERANCE",
    "SHAPENET_DIRNAME",
    "SYNTH_MARKER",
    "SynthObManConfig",
    "SynthSummary",
    "generate_obman_split",
    "run_synth_obman",
]

logger = logging.getLogger(__name__)

SHAPENET_DIRNAME = "ShapeNetCore.v2"
PALM_SEGM_VALUE, FINGERS_SEGM_VALUE = 22, 24  # rightHand, rightHandIndex1: ObMan's hands are right hands
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
# How far an achieved occlusion may miss the requested range before the summary counts (and a warning names) it.
OCCLUSION_TOLERANCE = 0.05
_SPLIT_FOLDERS = ("meta", "rgb", "rgb_obj", "rgb_hand", "segm", "depth")
# The writer's absolute ShapeNet path, which every loader (and ours) ignores; written to keep the format.
_AUTHORS_SHAPENET_ROOT = "/sequoia/data2/dataset/shapenet/ShapeNetCore.v2"
_JPEG_QUALITY = 90
_PNG_LEVEL = 3  # OpenCV's default PNG compression, which ObMan's writer used
# What the object and hand are composited onto (ObMan's writer used real photos, which cannot be shipped):
# `gradient`, a random two-colour ramp, `plain`, one mid grey level, or `dark`, one dark grey level (below every
# object colour's brightness); all with mild pixel noise.
BACKGROUNDS = ("gradient", "plain", "dark")
_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.88, 0.67, 0.53], [0.76, 0.54, 0.40], [0.55, 0.38, 0.26]])


@dataclass
class SynthObManConfig:
    r"""
    Configuration of `occ-hf synth-obman OUTPUT_DIR`, which writes an ObMan-format split with [`generate_obman_split`].

    Parameters:
        output_dir (`str`):
            ObMan root to write into: the split goes to `<output_dir>/<split>/`, meshes to
            `<output_dir>/ShapeNetCore.v2/` unless `shapenet_root` says otherwise.
        n (`int`, *optional*, defaults to `64`):
            Number of samples (ids `00000000` to `n - 1`); ignored with `ids_from`.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the split; the same seed writes the same files.
        split (`str`, *optional*, defaults to `"train"`):
            `train`, `val` or `test`.
        ids_from (`str`, *optional*):
            Write exactly the ids of this file: a text id list (the seed's `obman_view_test_all.txt`), a seed
            jsonl (classes are taken from its answers) or a json id list.
        min_occlusion (`float`, *optional*, defaults to `0.1`), max_occlusion (`float`, *optional*, defaults to `0.6`):
            Range of the target share of the object hidden by the hand.
        min_distance (`float`, *optional*, defaults to `0.6`), max_distance (`float`, *optional*, defaults to `0.8`):
            Range of the object's distance from the camera, in metres (ObMan's writer places the hand 0.5-0.8 m
            away): nearer objects fill more of the 256 px frame.
        max_roll (`float`, *optional*, defaults to `180.0`):
            Largest turn of the object in the image plane (about the camera's axis) either side of upright, in
            degrees: 180 turns it any way; less keeps objects nearer upright (the same range for every class).
        background (`str`, *optional*, defaults to `"gradient"`):
            What the scene is composited onto: `gradient` (a smooth ramp between two random colours), `plain` (a
            random mid grey, 0.35-0.65) or `dark` (a random dark grey, 0.05-0.25, below every object's base
            colour); all with mild pixel noise, and none depends on the class.
        shapenet_root (`str`, *optional*):
            Where the meshes go; defaults to `<output_dir>/ShapeNetCore.v2`.
        batch_size (`int`, *optional*, defaults to `32`):
            Samples rendered together.
        num_proc (`int`, *optional*, defaults to `1`):
            Worker processes.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace a split already there. Without it, a split folder that holds files is refused (new samples would
            mix with stale ones); with it, the split's generated folders (`meta/`, `rgb/`, `rgb_obj/`, `rgb_hand/`,
            `segm/`, `depth/`) and the meshes its metas name are removed first. Only a split that synth-obman wrote
            (listed in the root's `occ_hf_synth.json`) is removed.
    """

    output_dir: str = field(metadata={"help": "ObMan root to write into (gets <split>/ and ShapeNetCore.v2/)."})
    n: int = field(default=64, metadata={"help": "Number of samples; ignored with --ids_from."})
    seed: int = field(default=0, metadata={"help": "Seed of the split."})
    split: str = field(default="train", metadata={"help": "train, val or test."})
    ids_from: str | None = field(
        default=None, metadata={"help": "Write exactly the ids of this id list, seed jsonl or json file."}
    )
    min_occlusion: float = field(default=0.1, metadata={"help": "Lowest target share of the object hidden."})
    max_occlusion: float = field(default=0.6, metadata={"help": "Highest target share of the object hidden."})
    min_distance: float = field(default=0.6, metadata={"help": "Nearest object distance from the camera (m)."})
    max_distance: float = field(default=0.8, metadata={"help": "Farthest object distance from the camera (m)."})
    max_roll: float = field(
        default=180.0, metadata={"help": "Largest in-plane turn of the object either side of upright (degrees)."}
    )
    background: str = field(
        default="gradient", metadata={"help": "gradient (two random colours), plain (grey) or dark (dark grey)."}
    )
    shapenet_root: str | None = field(default=None, metadata={"help": "Mesh root; defaults to OUT/ShapeNetCore.v2."})
    batch_size: int = field(default=32, metadata={"help": "Samples rendered together."})
    num_proc: int = field(default=1, metadata={"help": "Worker processes."})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace a split synth-obman wrote before (its files and meshes are removed first). Without it "
            "a split folder that holds files is refused."
        },
    )


@dataclass
class SynthSummary:
    """What `generate_obman_split` wrote."""

    root: Path
    split: str
    shapenet_root: Path
    num_samples: int
    class_counts: dict[str, int]
    occlusion: list[float] = field(repr=False)
    occlusion_range: tuple[float, float] = (0.0, 1.0)

    @property
    def num_off_target(self) -> int:
        """Samples whose achieved occlusion misses the requested range by more than `OCCLUSION_TOLERANCE`."""
        low, high = self.occlusion_range
        return sum(not low - OCCLUSION_TOLERANCE <= o <= high + OCCLUSION_TOLERANCE for o in self.occlusion)

    def to_dict(self) -> dict:
        occlusion = np.asarray(self.occlusion)
        return {
            "root": str(self.root),
            "split": self.split,
            "shapenet_root": str(self.shapenet_root),
            "num_samples": self.num_samples,
            "class_counts": self.class_counts,
            "occlusion_mean": float(occlusion.mean()) if len(occlusion) else None,
            "occlusion_min": float(occlusion.min()) if len(occlusion) else None,
            "occlusion_max": float(occlusion.max()) if len(occlusion) else None,
            "occlusion_requested": list(self.occlusion_range),
            "num_off_target": self.num_off_target,
        }


def run_synth_obman(config: SynthObManConfig) -> SynthSummary:
    """`occ-hf synth-obman`: [`generate_obman_split`] with the ids (and classes) of `config.ids_from`, if given."""
    from .ids import read_id_list

    ids, classes = read_id_list(config.ids_from) if config.ids_from else (None, None)
    return generate_obman_split(
        config.output_dir,
        n=config.n,
        seed=config.seed,
        split=config.split,
        ids=ids,
        classes=classes,
        occlusion_range=(config.min_occlusion, config.max_occlusion),
        object_distance=(config.min_distance, config.max_distance),
        max_roll=config.max_roll,
        background=config.background,
        shapenet_root=config.shapenet_root,
        batch_size=config.batch_size,
        num_proc=config.num_proc,
        overwrite=config.overwrite,
    )


def generate_obman_split(
    root: str | os.PathLike,
    n: int = 64,
    seed: int = 0,
    split: str = "train",
    ids: Sequence[str] | None = None,
    classes: Sequence[str | None] | None = None,
    occlusion_range: tuple[float, float] = (0.1, 0.6),
    object_distance: tuple[float, float] = (0.6, 0.8),
    max_roll: float = 180.0,
    background: str = "gradient",
    shapenet_root: str | os.PathLike | None = None,
    batch_size: int = 32,
    num_proc: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> SynthSummary:
    """Writes an ObMan-format split to `root/split/` and its meshes under `shapenet_root`.

    Args:
        root (`str` or `os.PathLike`): The ObMan root to write into (it gets `<split>/` and, by default,
            `ShapeNetCore.v2/`).
        n (`int`, *optional*, defaults to 64): Number of samples, ids `00000000` to `n - 1`; ignored with `ids`.
        seed (`int`, *optional*, defaults to 0): Seed of the whole split.
        split (`str`, *optional*, defaults to `"train"`): `train`, `val` or `test`.
        ids (`Sequence[str]`, *optional*): Exactly these sample ids (e.g. from [`read_id_list`]).
        classes (`Sequence[str | None]`, *optional*): A class per id (`None` draws one); classes are uniform otherwise.
        occlusion_range (`tuple[float, float]`, *optional*, defaults to `(0.1, 0.6)`):
            Range the target occlusion is drawn from; ObMan's writer kept only samples with at least 40% of the
            object visible, hence 0.6. A target the hand cannot reach on a large object is approached as closely
            as the hand allows; the meta records the achieved value.
        object_distance (`tuple[float, float]`, *optional*, defaults to `(0.6, 0.8)`):
            Range the object's distance from the camera (metres, along its axis) is drawn from.
        max_roll (`float`, *optional*, defaults to 180.0): Largest in-plane turn of the object either side of
            upright, in degrees (see [`SynthObManConfig`]).
        background (`str`, *optional*, defaults to `"gradient"`): One of `BACKGROUNDS` (see [`SynthObManConfig`]).
        shapenet_root (`str` or `os.PathLike`, *optional*): Where meshes go; defaults to `root/ShapeNetCore.v2`.
        batch_size (`int`, *optional*, defaults to 32): Samples rendered together.
        num_proc (`int`, *optional*, defaults to 1): Worker processes (each renders whole batches).
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a split this function wrote before (see
            [`SynthObManConfig`]); without it, a `root/split/` that holds files is refused.

    Returns:
        [`SynthSummary`] of the written split.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_CODES)}, got {split!r}.")
    low, high = occlusion_range
    if not 0.0 <= low <= high < 1.0:
        raise ValueError(f"occlusion_range must satisfy 0 <= low <= high < 1, got {occlusion_range}.")
    near, far = object_distance
    if not 0.0 < near <= far:
        raise ValueError(f"object_distance must satisfy 0 < near <= far (metres), got {object_distance}.")
    if not 0.0 <= max_roll <= 180.0:
        raise ValueError(f"max_roll must be between 0 and 180 (degrees either side of upright), got {max_roll}.")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {list(BACKGROUNDS)}, got {background!r}.")
    if ids is None and n < 1:
        raise ValueError(f"n must be at least 1 (the number of samples to write), got {n}.")
    ids = [obman_sample_id(i) for i in (ids if ids is not None else range(n))]
    classes = list(classes) if classes is not None else [None] * len(ids)
    if len(classes) != len(ids):
        raise ValueError(f"Got {len(ids)} ids but {len(classes)} classes.")
    unknown = {c for c in classes if c is not None and c not in CLASS_TO_SYNSET}
    if unknown:
        raise ValueError(f"Unknown classes {sorted(unknown)}; expected names from {list(OCC_CLASSES)}.")

    root = Path(root)
    shapenet_root = Path(shapenet_root) if shapenet_root is not None else root / SHAPENET_DIRNAME
    split_dir = root / split
    _clear_split(root, split, shapenet_root, overwrite)
    for folder in _SPLIT_FOLDERS:
        (split_dir / folder).mkdir(parents=True, exist_ok=True)

    jobs = [
        (
            split_dir,
            shapenet_root,
            seed,
            split,
            ids[i : i + batch_size],
            classes[i : i + batch_size],
            _SceneSettings(occlusion_range, object_distance, np.deg2rad(max_roll), background),
        )
        for i in range(0, len(ids), batch_size)
    ]
    bar = tqdm(total=len(ids), desc=f"synth-obman {split}", unit="img", disable=not progress)
    results: list[tuple[str, float]] = []
    if num_proc > 1:
        with ProcessPoolExecutor(num_proc, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for batch_result in pool.map(_write_batch, *zip(*jobs, strict=True)):
                results.extend(batch_result)
                bar.update(len(batch_result))
    else:
        for job in jobs:
            batch_result = _write_batch(*job)
            results.extend(batch_result)
            bar.update(len(batch_result))
    bar.close()
    _record_provenance(
        root,
        split,
        seed=seed,
        num_samples=len(ids),
        occlusion_range=(low, high),
        object_distance=(near, far),
        max_roll=max_roll,
        background=background,
    )
    summary = SynthSummary(
        root=root,
        split=split,
        shapenet_root=shapenet_root,
        num_samples=len(results),
        class_counts=dict(sorted(Counter(name for name, _ in results).items())),
        occlusion=[occlusion for _, occlusion in results],
        occlusion_range=(low, high),
    )
    if summary.num_off_target:
        achieved = summary.occlusion
        logger.warning(
            "synth-obman %s: %d of %d samples missed the requested occlusion [%g, %g] by more than %g (achieved "
            "%.3f-%.3f): the hand cannot hide that share of some objects, or slides in whole pixels.",
            split,
            summary.num_off_target,
            len(achieved),
            low,
            high,
            OCCLUSION_TOLERANCE,
            min(achieved),
            max(achieved),
        )
    return summary


def _clear_split(root: Path, split: str, shapenet_root: Path, overwrite: bool) -> None:
    """Refuses a split folder that holds files unless `overwrite`; with it, removes what synth-obman wrote there."""
    split_dir = root / split
    if not split_dir.is_dir() or not any(path.is_file() for path in split_dir.rglob("*")):
        return
    num_samples = len(list((split_dir / "meta").glob("*.pkl")))
    if not overwrite:
        raise FileExistsError(
            f"{split_dir}: already holds a split ({num_samples} meta files); new samples would mix with the old "
            "ones. Pass --overwrite (overwrite=True) to replace it, or write to another root or split."
        )
    marker = root / SYNTH_MARKER
    if not marker.is_file() or split not in json.loads(marker.read_text()).get("splits", {}):
        raise FileExistsError(
            f"{split_dir}: not written by synth-obman (no {split!r} entry in {marker}); refusing to delete it even "
            "with --overwrite. Write to another root or split."
        )
    for meta_path in (split_dir / "meta").glob("*.pkl"):
        meta = load_meta(meta_path)
        synset, model_id = str(meta.get("class_id")), str(meta.get("sample_id"))
        # Only a mesh folder named as this module names them, so a damaged meta cannot point the removal elsewhere.
        if synset.isdecimal() and re.fullmatch(r"[0-9a-f]{32}", model_id):
            shutil.rmtree(shapenet_root / synset / model_id, ignore_errors=True)
    for folder in _SPLIT_FOLDERS:
        shutil.rmtree(split_dir / folder, ignore_errors=True)


def _record_provenance(root: Path, split: str, **settings) -> None:
    """Adds this split's settings to the root's `occ_hf_synth.json`."""
    from ..version import __version__

    marker = root / SYNTH_MARKER
    provenance = (
        json.loads(marker.read_text()) if marker.exists() else {"generator": "occ-hf synth-obman", "splits": {}}
    )
    provenance["version"] = __version__
    provenance["splits"][split] = settings
    marker.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class _SceneSettings:
    """The ranges every scene of a split is drawn from (see [`generate_obman_split`])."""

    occlusion_range: tuple[float, float]
    object_distance: tuple[float, float]
    max_roll: float  # radians
    background: str


@dataclass
class _Scene:
    """One sample's geometry, in the OpenCV camera frame, before rendering."""

    sample_id: str
    class_name: str
    rng: np.random.Generator
    mesh_vertices: np.ndarray  # [V, 3] model_normalized coordinates
    mesh_faces: np.ndarray
    object_to_camera: np.ndarray  # [4, 4], scale included
    obj_scale: float
    object_vertices: np.ndarray  # [V, 3] camera frame
    hand_vertices: np.ndarray  # [H, 3] camera frame, before the slide
    hand_faces: np.ndarray
    num_palm_faces: int
    hand_joints: np.ndarray  # [21, 3] camera frame, before the slide
    target_occlusion: float


def _sample_rng(seed: int, split: str, sample_id: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], int(sample_id)]))


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    rotation = np.eye(3)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    return rotation


def _build_scene(seed, split, sample_id, class_name, settings: _SceneSettings) -> _Scene:
    rng = _sample_rng(seed, split, sample_id)
    class_name = class_name or OCC_CLASSES[rng.integers(len(OCC_CLASSES))]
    mesh = make_object_mesh(class_name, rng)
    obj_scale = CLASS_DIAGONAL_METRES[class_name] * rng.uniform(0.9, 1.1)
    # Spin about the object's own axis, tilt towards the camera, then roll in the image plane: long objects stay
    # mostly side-on, as they are when held. A roll of pi is upright (the mesh's +y is up, the camera's +y down).
    rotation = (
        _rotation(2, np.pi + rng.uniform(-settings.max_roll, settings.max_roll))
        @ _rotation(0, rng.uniform(-0.9, 0.9))
        @ _rotation(1, rng.uniform(0, 2 * np.pi))
    )
    translation = np.array(
        [rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), rng.uniform(*settings.object_distance)]
    )
    object_to_camera = np.eye(4)
    object_to_camera[:3, :3] = obj_scale * rotation
    object_to_camera[:3, 3] = translation
    object_vertices = mesh.vertices @ object_to_camera[:3, :3].T + translation

    hand = make_hand_occluder(rng)
    hand_rotation = _rotation(2, rng.uniform(0, 2 * np.pi))
    hand_depth = object_vertices[:, 2].min() - rng.uniform(0.03, 0.08)
    hand_center = np.array([translation[0], translation[1], hand_depth])
    return _Scene(
        sample_id=sample_id,
        class_name=class_name,
        rng=rng,
        mesh_vertices=np.asarray(mesh.vertices),
        mesh_faces=np.asarray(mesh.faces),
        object_to_camera=object_to_camera,
        obj_scale=float(obj_scale),
        object_vertices=object_vertices,
        hand_vertices=hand.vertices @ hand_rotation.T + hand_center,
        hand_faces=hand.faces,
        num_palm_faces=hand.num_palm_faces,
        hand_joints=hand.joints @ hand_rotation.T + hand_center,
        target_occlusion=float(rng.uniform(*settings.occlusion_range)),
    )


def _render(vertices: list[np.ndarray], faces: list[np.ndarray]):
    size = OBMAN_IMAGE_SIZE
    verts = [torch.as_tensor(v, dtype=torch.float32) for v in vertices]
    tris = [torch.as_tensor(f, dtype=torch.long) for f in faces]
    fragments = rasterize(verts, tris, torch.as_tensor(OBMAN_INTRINSICS, dtype=torch.float32), size, size)
    return fragments, verts, tris


def _overlap(amodal: np.ndarray, hand: np.ndarray, dx: int, dy: int) -> int:
    """Pixels of `amodal` covered by `hand` shifted by `(dx, dy)` pixels."""
    h, w = amodal.shape
    if abs(dx) >= w or abs(dy) >= h:
        return 0
    target = amodal[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    source = hand[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return int((target & source).sum())


def _slide_for_occlusion(amodal: np.ndarray, hand: np.ndarray, target: float, rng: np.random.Generator):
    """Pixel shift of the hand mask along a random direction that hides `target` of the object (bisection).

    Occlusion falls (nearly monotonically) as the hand slides off the object, from its value at shift 0.
    """
    area = max(int(amodal.sum()), 1)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    lo, hi = 0.0, 2.0 * OBMAN_IMAGE_SIZE

    def occlusion_at(distance: float) -> float:
        dx, dy = np.rint(direction * distance).astype(int)
        return _overlap(amodal, hand, dx, dy) / area

    if occlusion_at(lo) <= target:
        return np.zeros(2)
    for _ in range(14):
        middle = (lo + hi) / 2
        lo, hi = (middle, hi) if occlusion_at(middle) > target else (lo, middle)
    return np.rint(direction * hi)


def _euclidean_depth(fragments) -> np.ndarray:
    """Distance from the camera centre per pixel (Cycles' Z pass for a perspective camera), inf where empty."""
    size = OBMAN_IMAGE_SIZE
    fx, cx = OBMAN_INTRINSICS[0, 0], OBMAN_INTRINSICS[0, 2]
    pixels = (np.arange(size) - cx) / fx
    ray_length = np.sqrt(pixels[None, :] ** 2 + pixels[:, None] ** 2 + 1.0)
    return fragments.depth.numpy() * ray_length


def _encode_depth(depth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """ObMan's 8-bit depth: 1..255 between the foreground min and max, 0 for background; returns (img, min, max)."""
    foreground = np.isfinite(depth)
    if not foreground.any():
        return np.zeros(depth.shape, np.uint8), 0.0, 0.0
    low, high = float(depth[foreground].min()), float(depth[foreground].max())
    scaled = 254.0 * (depth - low) / max(high - low, 1e-12) + 1.0
    return np.where(foreground, np.rint(scaled), 0).astype(np.uint8), low, high


def _background(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A background of `kind` (see `BACKGROUNDS`) with mild noise, `[H, W, 3]` in [0, 1]."""
    size = OBMAN_IMAGE_SIZE
    if kind == "plain":
        image = np.full((size, size, 3), rng.uniform(0.35, 0.65))
    elif kind == "dark":
        image = np.full((size, size, 3), rng.uniform(0.05, 0.25))
    else:
        a, b = rng.uniform(0.1, 0.9, size=(2, 3))
        angle = rng.uniform(0, 2 * np.pi)
        coords = np.linspace(-1, 1, size)
        ramp = (np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None] + 1.5) / 3.0
        image = a + (b - a) * ramp[..., None]
    return np.clip(image + 0.02 * rng.standard_normal(size=image.shape, dtype=np.float32), 0, 1)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue = rng.uniform(0, 1)
    saturation, value = rng.uniform(0.3, 0.9), rng.uniform(0.5, 1.0)
    rgb = np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1
    return value * (1 - saturation + saturation * np.clip(rgb, 0, 1))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def _write_batch(
    split_dir, shapenet_root, seed, split, ids, classes, settings: _SceneSettings
) -> list[tuple[str, float]]:
    scenes = [_build_scene(seed, split, i, c, settings) for i, c in zip(ids, classes, strict=True)]

    object_fragments, object_verts, object_tris = _render(
        [s.object_vertices for s in scenes], [s.mesh_faces for s in scenes]
    )
    first_hand, _, _ = _render([s.hand_vertices for s in scenes], [s.hand_faces for s in scenes])
    fx = OBMAN_INTRINSICS[0, 0]
    amodal_masks, first_hand_masks = object_fragments.mask.numpy(), first_hand.mask.numpy()
    for b, scene in enumerate(scenes):
        shift = _slide_for_occlusion(amodal_masks[b], first_hand_masks[b], scene.target_occlusion, scene.rng)
        # A shift of the mask by `shift` pixels is, at the hand's depth, a sideways move of shift * z / f metres.
        offset = np.array([*(shift * scene.hand_vertices[:, 2].mean() / fx), 0.0])
        scene.hand_vertices = scene.hand_vertices + offset
        scene.hand_joints = scene.hand_joints + offset
    hand_fragments, hand_verts, hand_tris = _render([s.hand_vertices for s in scenes], [s.hand_faces for s in scenes])

    object_rgb = shade_lambert(
        object_fragments,
        object_verts,
        object_tris,
        [torch.as_tensor(_random_color(s.rng)).expand(len(s.mesh_faces), 3) for s in scenes],
    ).numpy()
    hand_rgb = shade_lambert(
        hand_fragments,
        hand_verts,
        hand_tris,
        [torch.as_tensor(_SKIN_TONES[s.rng.integers(len(_SKIN_TONES))]).expand(len(s.hand_faces), 3) for s in scenes],
    ).numpy()
    hand_face_index = hand_fragments.face_index.numpy()
    object_depth = _euclidean_depth(object_fragments)
    hand_depth = _euclidean_depth(hand_fragments)

    results = []
    for b, scene in enumerate(scenes):
        amodal = amodal_masks[b]
        hand_faces = hand_face_index[b]
        hand_alone = np.where(
            hand_faces < 0, 0, np.where(hand_faces < scene.num_palm_faces, PALM_SEGM_VALUE, FINGERS_SEGM_VALUE)
        )
        hand_in_front = (hand_faces >= 0) & (hand_depth[b] < object_depth[b])
        visible_object = amodal & ~hand_in_front
        full = np.where(hand_in_front, hand_alone, np.where(visible_object, OBJECT_SEGM_VALUE, 0))
        segm = np.stack([full, hand_alone, np.where(amodal, OBJECT_SEGM_VALUE, 0)], axis=-1).astype(np.uint8)
        visibility = float(visible_object.sum()) / max(int(amodal.sum()), 1)

        backdrop = _background(scene.rng, settings.background)
        rgb = np.where(
            hand_in_front[..., None], hand_rgb[b], np.where(visible_object[..., None], object_rgb[b], backdrop)
        )
        rgb_obj = np.where(amodal[..., None], object_rgb[b], backdrop)
        rgb_hand = np.where((hand_faces >= 0)[..., None], hand_rgb[b], backdrop)
        full_depth = np.minimum(object_depth[b], np.where(hand_faces >= 0, hand_depth[b], np.inf))
        depth_channels = [_encode_depth(d) for d in (full_depth, hand_depth[b], object_depth[b])]

        sample_id = scene.sample_id
        Image.fromarray(_to_uint8(rgb)).save(split_dir / "rgb" / f"{sample_id}.jpg", quality=_JPEG_QUALITY)
        Image.fromarray(_to_uint8(rgb_obj)).save(split_dir / "rgb_obj" / f"{sample_id}.jpg", quality=_JPEG_QUALITY)
        Image.fromarray(_to_uint8(rgb_hand)).save(split_dir / "rgb_hand" / f"{sample_id}.jpg", quality=_JPEG_QUALITY)
        # ObMan's PNGs were written by OpenCV (BGR); PIL writes RGB, so reverse to keep channel 0 in blue.
        Image.fromarray(segm[..., ::-1]).save(split_dir / "segm" / f"{sample_id}.png", compress_level=_PNG_LEVEL)
        depth_image = np.stack([image for image, _, _ in depth_channels], axis=-1)
        Image.fromarray(depth_image[..., ::-1]).save(
            split_dir / "depth" / f"{sample_id}.png", compress_level=_PNG_LEVEL
        )

        synset = CLASS_TO_SYNSET[scene.class_name]
        model_id = hashlib.sha1(f"occ-hf-synth/{seed}/{split}/{sample_id}".encode()).hexdigest()[:32]
        mesh_dir = shapenet_root / synset / model_id / "models"
        mesh_dir.mkdir(parents=True, exist_ok=True)
        _write_obj(mesh_dir / "model_normalized.obj", scene.mesh_vertices, scene.mesh_faces)

        meta = _meta(scene, synset, model_id, visibility, depth_channels)
        with open(split_dir / "meta" / f"{sample_id}.pkl", "wb") as f:
            # Protocol 3: what ObMan's writer (Blender 2.78's Python 3.5) produced.
            pickle.dump(meta, f, protocol=3)
        results.append((scene.class_name, 1.0 - visibility))
    return results


def _meta(scene: _Scene, synset: str, model_id: str, visibility: float, depth_channels) -> dict:
    """The meta dict with ObMan's keys, types and frames (Blender camera frame for 3D quantities)."""
    flip = np.eye(4)
    flip[:3, :3] = BLENDER_TO_OPENCV
    joints_2d = obman_camera().project(scene.hand_joints)
    (_, depth_low, depth_high), (_, hand_low, hand_high), (_, obj_low, obj_high) = depth_channels
    return {
        "side": "right",
        "coords_2d": joints_2d.astype(np.float32),
        "coords_3d": (scene.hand_joints @ BLENDER_TO_OPENCV.T).astype(np.float32),
        "verts_3d": (scene.hand_vertices @ BLENDER_TO_OPENCV.T).astype(np.float32),
        "affine_transform": (flip @ scene.object_to_camera).astype(np.float32),
        "obj_path": f"{_AUTHORS_SHAPENET_ROOT}/{synset}/{model_id}/models/model_normalized.pkl",
        "obj_scale": scene.obj_scale,
        "obj_texture": "",
        "bg_path": "",
        "body_tex": "",
        "class_id": synset,
        "sample_id": model_id,
        "hand_pose": [0.0] * 48,
        "pca_pose": np.zeros(45),
        "hand_global_rot": [0.0, 0.0, 0.0],
        "hand_trans": [float(x) for x in scene.hand_joints[0] @ BLENDER_TO_OPENCV.T],
        "grasp_quality": 0.0,
        "grasp_epsilon": 0.0,
        "grasp_volume": 0.0,
        "z": float(scene.hand_joints[0, 2]),
        "trans": np.zeros(3, np.float32),
        "pose": np.zeros(156, np.float32),
        "shape": np.zeros(10, np.float32),
        "mano_pose": np.zeros(45, np.float32),
        # ObMan's writer stores these swapped (depth_min holds the maximum); its loaders decode accordingly.
        "depth_min": np.float32(depth_high),
        "depth_max": np.float32(depth_low),
        "hand_depth_min": np.float32(hand_high),
        "hand_depth_max": np.float32(hand_low),
        "obj_depth_min": np.float32(obj_high),
        "obj_depth_max": np.float32(obj_low),
        "sh_coeffs": scene.rng.normal(0, 0.3, size=9),
        "obj_visibility_ratio": visibility,
    }


def _write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Writes a plain Wavefront OBJ (`v` and 1-based `f` lines), as ShapeNet's loaders read it."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")
