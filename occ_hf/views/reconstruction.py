"""The reconstruction hook: how a model that turns an image (+ hand pose) into an object mesh plugs into the views.

OCC-MLLM-CoT's views come from MOHO (CVPR 2024), which reconstructs the held object from one image and the hand
pose. occ-hf does not ship such a model; it defines what one must provide, [`ObjectReconstructor`], and renders
whatever mesh it returns as the seed's views look (`occ_hf.views.render`). Two implementations are built in:

- [`GroundTruthMesh`]: the sample's own mesh (`ObManSample.mesh_path`, ShapeNet's `model_normalized.obj`) posed
  with its meta; the oracle upper bound on real ObMan, and the known mesh on splits from `occ-hf synth-obman`,
  which is what the tests and the demo use.
- [`MeshFolder`]: meshes computed elsewhere (e.g. MOHO's marching-cubes `.ply`), one file per sample id.

Plugging in a model:

```python
class MyReconstructor:
    def reconstruct(self, image: PIL.Image.Image, sample: ObManSample) -> ObjectMesh:
        vertices, faces = my_model(image, sample.meta["hand_pose"])      # in the camera frame (OpenCV axes)
        return ObjectMesh(vertices, faces)                               # object_to_camera defaults to identity

summary = render_split_views(split, MyReconstructor(), "views/test")
```
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..obman import ObManSample


__all__ = ["GroundTruthMesh", "MeshFolder", "ObjectMesh", "ObjectReconstructor", "load_mesh"]

MESH_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb")


@dataclass
class ObjectMesh:
    """A triangle mesh and where it sits relative to ObMan's camera.

    Attributes:
        vertices (`np.ndarray` of shape `[V, 3]`): Vertex positions in the mesh's own frame.
        faces (`np.ndarray` of shape `[F, 3]`): Vertex indices of each triangle (either winding).
        object_to_camera (`np.ndarray` of shape `[4, 4]`, *optional*, defaults to the identity):
            Maps the mesh's frame to the OpenCV camera frame (x right, y down, z forward, metres), scale included;
            for an ObMan sample's ShapeNet mesh this is `ObManSample.object_to_camera`.
    """

    vertices: np.ndarray
    faces: np.ndarray
    object_to_camera: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.object_to_camera = np.asarray(self.object_to_camera, dtype=np.float64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"ObjectMesh.vertices must have shape [V, 3], got {self.vertices.shape}.")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"ObjectMesh.faces must have shape [F, 3] (triangles), got {self.faces.shape}.")
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError(f"ObjectMesh.faces index vertices outside 0..{len(self.vertices) - 1}.")
        if self.object_to_camera.shape != (4, 4):
            raise ValueError(f"ObjectMesh.object_to_camera must be 4 x 4, got {self.object_to_camera.shape}.")

    def camera_vertices(self) -> np.ndarray:
        """`[V, 3]` vertices in the OpenCV camera frame."""
        return self.vertices @ self.object_to_camera[:3, :3].T + self.object_to_camera[:3, 3]


@runtime_checkable
class ObjectReconstructor(Protocol):
    """Anything that reconstructs the held object of an ObMan image as a triangle mesh.

    `reconstruct(image, sample)` gets the RGB image (`PIL.Image.Image`, 256 x 256) and the whole sample: the hand
    pose is in `sample.meta` (`hand_pose`, `pca_pose`, `coords_3d`, `verts_3d`, in Blender's camera frame) and the
    camera in `sample.camera`. It returns an [`ObjectMesh`] whose `object_to_camera` places it in ObMan's camera
    frame; a mesh reconstructed directly in the camera frame keeps the identity. It raises `FileNotFoundError` or
    `ValueError` (naming the sample) when it has no mesh for a sample; the caller reports such ids as missing.
    """

    def reconstruct(self, image: Image.Image, sample: ObManSample) -> ObjectMesh: ...


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads a triangle mesh file (`.ply`, `.obj`, `.off`, `.stl`, `.glb`) with trimesh; returns `(vertices, faces)`.

    Vertices are kept as stored (`process=False`: no merging or reordering), and a scene of several parts is
    concatenated into one mesh.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mesh file not found.")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for unreadable files; the message names the file
        raise ValueError(f"{path}: not a readable mesh ({type(error).__name__}: {error}).") from error
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{path}: holds no triangles (a point cloud or an empty scene?); export a triangle mesh.")
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


class GroundTruthMesh:
    """The sample's own mesh, posed with its meta: the oracle view (or the known mesh of a generated split).

    Needs the split to be read with `shapenet_root`, so that `ObManSample.mesh_path` is set.
    """

    def reconstruct(self, image: Image.Image, sample: ObManSample) -> ObjectMesh:
        if sample.mesh_path is None:
            raise ValueError(
                f"Sample {sample.sample_id} has no mesh_path: read the split with shapenet_root=<ShapeNetCore.v2>."
            )
        vertices, faces = load_mesh(sample.mesh_path)
        return ObjectMesh(vertices, faces, sample.object_to_camera)


class MeshFolder:
    """Meshes reconstructed elsewhere, one file per sample: `<folder>/<id>.ply` (or `.obj`, `.off`, `.stl`, `.glb`).

    Args:
        folder (`str` or `os.PathLike`): Where the meshes are (MOHO's `meshes_test2/` names them `<id>.ply`).
        frame (`"camera"` or `"model"`, *optional*, defaults to `"camera"`):
            `camera` when the vertices are in ObMan's OpenCV camera frame; `model` when they are in the object's
            ShapeNet frame, to be posed with the sample's `object_to_camera` (meta `affine_transform`).
    """

    def __init__(self, folder: str | os.PathLike, frame: Literal["camera", "model"] = "camera"):
        if frame not in ("camera", "model"):
            raise ValueError(f"frame must be 'camera' or 'model', got {frame!r}.")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: mesh folder not found.")
        self.frame = frame

    def reconstruct(self, image: Image.Image, sample: ObManSample) -> ObjectMesh:
        for suffix in MESH_SUFFIXES:
            path = self.folder / f"{sample.sample_id}{suffix}"
            if path.is_file():
                vertices, faces = load_mesh(path)
                pose = sample.object_to_camera if self.frame == "model" else np.eye(4)
                return ObjectMesh(vertices, faces, pose)
        tried = ", ".join(f"{sample.sample_id}{suffix}" for suffix in MESH_SUFFIXES)
        raise FileNotFoundError(f"{self.folder}: no mesh for sample {sample.sample_id} (looked for {tried}).")
