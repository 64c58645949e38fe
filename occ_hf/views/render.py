"""`occ-hf views render`: render object meshes as the seed's 3D views look, batched, on CPU or GPU.

A view is what MOHO's renderer gave the seed: ObMan's input camera (fx = fy = 480, cx = cy = 128, 256 x 256; the
meta's `affine_transform` with the Blender-to-OpenCV flip puts the object in the camera frame), the object alone,
shaded grey on black. Optional orbit views turn the object about its bounding-box centre (around the camera's
vertical axis, then tilted by `orbit_elevation`), as if the camera circled it at the same distance.

```bash
occ-hf views render --obman_root data/obman --out views/test                      # the samples' own meshes
occ-hf views render --obman_root data/obman --meshes moho/meshes_test2 --out views/test --num_orbit_views 3
```
```python
rendered = render_views([mesh_a, mesh_b], num_orbit_views=2)    # RenderedViews: images [B, 3, 256, 256, 3] uint8
report = render_split_views(split, GroundTruthMesh(), "views/test")
```

Backends (`backend=`), and why `torch` is the default:
- `torch`: `occ_hf.rendering`'s z-buffer rasterizer and headlight Lambert shading. Plain torch: no compiler, no
  system library, the same code on CPU and GPU, and a whole batch of samples and views in one call. It is also the
  generator's renderer, so the view of a generated sample's mesh covers exactly its amodal mask (the test asks for
  IoU 0.95).
- `pyrender`: OpenGL through pyrender (extra `gl`), headless with EGL (`PYOPENGL_PLATFORM=egl`, set here unless
  already set; it needs libEGL, e.g. Mesa's, which renders on the CPU). One view per draw call. pyrender always
  multisamples (4x), so it draws at `pyrender_oversample` times the resolution and keeps the pixels centred on the
  output's: at the default 8x its silhouettes are point-sampled like the torch backend's (the tests ask for IoU >=
  0.99 on every view); at 2x it is faster, but a sliver thinner than a pixel (a knife seen edge-on) falls either side
  of a pixel centre. Its shading is pyrender's own (a physically based material, a headlight, gamma), tuned to the
  torch backend's grey levels but not equal to them.
- `pytorch3d`: the field's standard rasterizer (`MeshRasterizer`, extra `render`) for coverage, depth and
  barycentrics, shaded with the torch backend's own Lambert code, so the two differ only in rasterization. It has no
  wheels for this project's Python and torch and builds from source (torch 2.14's headers need `-std=c++20` where
  pytorch3d's setup.py says c++17); where it is installed its views match the torch backend's (the tests ask for
  IoU >= 0.99 on every view). CI does not build it, so there its test is skipped.

The torch backend is the default because it is the fastest on a CPU, runs wherever torch runs (pyrender needs libEGL,
which the project's GPU machine lacks), is exact against the generator, and batches on a GPU. The figures (views/s of
each backend and batch size, IoU between backends) are in benchmarks/README.md (`benchmarks/bench_views.py`).
"""

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..obman import Camera, ObManSplit, obman_camera
from ..obman.input_files import MAX_IMAGE_FILE_BYTES, decode_image, read_regular_file
from ..rendering import Fragments, rasterize, shade_lambert, vertex_normals
from .naming import orbit_view_name, view_name
from .reconstruction import GroundTruthMesh, MeshFolder, ObjectMesh, ObjectReconstructor


__all__ = [
    "BACKENDS",
    "RenderReport",
    "RenderViewsConfig",
    "RenderedViews",
    "orbit_rotations",
    "render_split_views",
    "render_views",
    "save_views",
]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "pyrender", "pytorch3d")
# Grey of the object and share of it lit regardless of the normal: the look of the seed's views.
VIEW_GREY = 0.6
VIEW_AMBIENT = 0.25
_PYRENDER_AMBIENT = 0.026
_PYRENDER_LIGHT = 1.7


@dataclass(kw_only=True)
class RenderViewsConfig:
    r"""
    Configuration of `occ-hf views render`, which renders views with [`render_split_views`].

    Parameters:
        split (`str`, *optional*, defaults to `"test"`):
            ObMan split to render.
        obman_root (`str`):
            ObMan root holding `<split>/meta/*.pkl` (a real one or one from `occ-hf synth-obman`).
        out (`str`):
            Folder the views are written to, under the seed's names.
        meshes (`str`, *optional*, defaults to `"ground_truth"`):
            `ground_truth` for each sample's own mesh under `shapenet_root` (the oracle view), or a folder of
            reconstructed meshes named `<id>.ply` (or `.obj`, `.off`, `.stl`, `.glb`).
        mesh_frame (`str`, *optional*, defaults to `"camera"`):
            For a mesh folder: `camera` (vertices in ObMan's OpenCV camera frame) or `model` (ShapeNet frame,
            posed with the meta's `affine_transform`).
        shapenet_root (`str`, *optional*):
            ShapeNetCore.v2 root; defaults to `<obman_root>/ShapeNetCore.v2` (where `synth-obman` writes meshes).
        ids_from (`str`, *optional*):
            Render only these ids (a view list such as the seed's `obman_view_test_all.txt`, a jsonl or a json).
        num_orbit_views (`int`, *optional*, defaults to `0`):
            Extra views turned about the object's centre by `360 k / (n + 1)` degrees, `k = 1..n`.
        orbit_elevation (`float`, *optional*, defaults to `0.0`):
            Tilt of the orbit views, in degrees (positive shows the top).
        backend (`str`, *optional*, defaults to `"torch"`):
            `torch` or `pyrender`.
        device (`str`, *optional*, defaults to `"cpu"`):
            Torch device of the `torch` backend (`cuda` for a GPU).
        batch_size (`int`, *optional*, defaults to `8`):
            Samples rendered together (8 is fastest on a CPU; a GPU takes more).
        on_unknown_class (`str`, *optional*, defaults to `"skip"`):
            `error` or `skip` (counted) for samples of other classes (ObMan's mugs).
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace views of these samples already in `out`; without it they are refused before anything is
            rendered (views of other samples or splits in the folder are fine).
    """

    split: str = field(default="test", metadata={"help": "ObMan split to render."})
    obman_root: str = field(metadata={"help": "ObMan root holding <split>/meta/*.pkl."})
    out: str = field(metadata={"help": "Folder the views are written to."})
    meshes: str = field(
        default="ground_truth", metadata={"help": "ground_truth, or a folder of reconstructed meshes <id>.ply."}
    )
    mesh_frame: str = field(default="camera", metadata={"help": "Frame of a mesh folder's vertices: camera or model."})
    shapenet_root: str | None = field(default=None, metadata={"help": "ShapeNetCore.v2 root (default OBMAN/...)."})
    ids_from: str | None = field(default=None, metadata={"help": "Render only these ids (id list, jsonl or json)."})
    num_orbit_views: int = field(default=0, metadata={"help": "Extra views orbiting the object's centre."})
    orbit_elevation: float = field(default=0.0, metadata={"help": "Tilt of the orbit views in degrees."})
    backend: str = field(default="torch", metadata={"help": "torch or pyrender."})
    device: str = field(default="cpu", metadata={"help": "Torch device of the torch backend."})
    batch_size: int = field(default=8, metadata={"help": "Samples rendered together (GPU: more)."})
    on_unknown_class: str = field(default="skip", metadata={"help": "error or skip (counted) for other classes."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace views already in --out (without it they are refused)."}
    )


@dataclass
class RenderedViews:
    """Views of a batch of meshes; view 0 is the input camera's, views 1.. the orbit views.

    Attributes:
        images (`torch.Tensor` of shape `[B, V, H, W, 3]`, `uint8`): Grey object on black.
        masks (`torch.Tensor` of shape `[B, V, H, W]`, `bool`): Pixels the object covers.
        depth (`torch.Tensor` of shape `[B, V, H, W]`, `float32`): Camera-frame z of the surface, `inf` where empty.
    """

    images: torch.Tensor
    masks: torch.Tensor
    depth: torch.Tensor


@dataclass
class RenderReport:
    """What [`render_split_views`] wrote: rendered ids, ids without a mesh (with the reason), and the split's skips."""

    rendered: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    views_per_sample: int = 1

    def to_dict(self) -> dict:
        return {
            "num_rendered": len(self.rendered),
            "views_per_sample": self.views_per_sample,
            "missing": self.missing,
            "skipped": self.skipped,
        }


def orbit_rotations(num_orbit_views: int, elevation: float = 0.0) -> list[np.ndarray]:
    """Rotations `[3, 3]` (OpenCV camera axes) of the orbit views: yaw `360 k / (n + 1)` degrees, then `elevation`.

    The yaw turns about the camera's y axis (vertical in the image); the elevation tilts about its x axis.
    """
    if num_orbit_views < 0:
        raise ValueError(f"num_orbit_views must be >= 0, got {num_orbit_views}.")
    tilt = np.deg2rad(elevation)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)], [0.0, np.sin(tilt), np.cos(tilt)]])
    rotations = []
    for k in range(1, num_orbit_views + 1):
        yaw = 2 * np.pi * k / (num_orbit_views + 1)
        turn = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]])
        rotations.append(pitch @ turn)
    return rotations


def _posed_vertices(mesh: ObjectMesh, rotations: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Camera-frame vertices of view 0 and of each orbit view (the object turned about its bounding-box centre)."""
    vertices = mesh.camera_vertices()
    centre = (vertices.min(0) + vertices.max(0)) / 2
    return [vertices] + [(vertices - centre) @ rotation.T + centre for rotation in rotations]


def render_views(
    meshes: Sequence[ObjectMesh],
    camera: Camera | None = None,
    num_orbit_views: int = 0,
    orbit_elevation: float = 0.0,
    backend: Literal["torch", "pyrender", "pytorch3d"] = "torch",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    pyrender_oversample: int = 8,
) -> RenderedViews:
    """Renders each mesh from ObMan's camera (and orbit views), grey on black.

    Args:
        meshes (`Sequence[ObjectMesh]`): Meshes with their pose in the camera frame.
        camera ([`Camera`], *optional*): Defaults to ObMan's (fx = fy = 480, cx = cy = 128, 256 x 256).
        num_orbit_views (`int`, *optional*, defaults to 0): Extra views, see [`orbit_rotations`].
        orbit_elevation (`float`, *optional*, defaults to 0.0): Tilt of the orbit views in degrees.
        backend (`str`, *optional*, defaults to `"torch"`): `torch`, `pyrender` or `pytorch3d` (see the module
            docstring).
        device (`str` or `torch.device`, *optional*, defaults to `"cpu"`): Device of the `torch` and `pytorch3d`
            backends.
        batch_size (`int`, *optional*, defaults to 8): Meshes rasterized in one call (all their views together).
        pyrender_oversample (`int`, *optional*, defaults to 8): Supersampling of the `pyrender` backend: 8 makes its
            silhouettes point-sampled like the torch backend's (IoU >= 0.99 on every view); 2 is faster and coarser
            (benchmarks/README.md).

    Returns:
        [`RenderedViews`] on the CPU, with `V = 1 + num_orbit_views` views per mesh.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    camera = camera or obman_camera()
    rotations = orbit_rotations(num_orbit_views, orbit_elevation)
    num_views = 1 + len(rotations)
    if backend == "pyrender":
        draw = _PyrenderBackend(camera, oversample=pyrender_oversample)
    images, masks, depths = [], [], []
    try:
        for start in range(0, len(meshes), batch_size):
            chunk = meshes[start : start + batch_size]
            posed = [v for mesh in chunk for v in _posed_vertices(mesh, rotations)]
            faces = [mesh.faces for mesh in chunk for _ in range(num_views)]
            if backend == "torch":
                image, mask, depth = _render_torch(posed, faces, camera, device)
            elif backend == "pytorch3d":
                image, mask, depth = _render_pytorch3d(posed, faces, camera, device)
            else:
                image, mask, depth = draw(posed, faces)
            images.append(image.view(len(chunk), num_views, *image.shape[1:]))
            masks.append(mask.view(len(chunk), num_views, *mask.shape[1:]))
            depths.append(depth.view(len(chunk), num_views, *depth.shape[1:]))
    finally:
        if backend == "pyrender":
            draw.close()
    if not images:
        empty = (0, num_views, camera.height, camera.width)
        return RenderedViews(
            torch.zeros((*empty, 3), dtype=torch.uint8), torch.zeros(empty, dtype=torch.bool), torch.zeros(empty)
        )
    return RenderedViews(torch.cat(images), torch.cat(masks), torch.cat(depths))


def _mesh_tensors(vertices: list[np.ndarray], faces: list[np.ndarray], device):
    """The views' meshes as float32 vertex and long face tensors on `device`."""
    verts = [torch.as_tensor(v, dtype=torch.float32, device=device) for v in vertices]
    tris = [torch.as_tensor(f, dtype=torch.long, device=device) for f in faces]
    return verts, tris


def _grey_views(fragments: Fragments, verts: list[torch.Tensor], tris: list[torch.Tensor]):
    """Shades rasterized views grey on black (the seed's look); returns CPU `(uint8 images, masks, depth)`."""
    colors = [torch.full((len(f), 3), VIEW_GREY, device=f.device) for f in tris]
    rgb = shade_lambert(fragments, verts, tris, colors, ambient=VIEW_AMBIENT)  # [N, H, W, 3]
    images = (rgb * 255).round_().clamp_(0, 255).to(torch.uint8)
    return images.cpu(), fragments.mask.cpu(), fragments.depth.float().cpu()


def _render_torch(vertices: list[np.ndarray], faces: list[np.ndarray], camera: Camera, device):
    """One rasterizer call for every view of the chunk; returns CPU `(uint8 images, masks, depth)`."""
    verts, tris = _mesh_tensors(vertices, faces, device)
    intrinsics = torch.as_tensor(camera.intrinsics, dtype=torch.float32, device=device)
    fragments = rasterize(verts, tris, intrinsics, camera.height, camera.width)
    return _grey_views(fragments, verts, tris)


def _render_pytorch3d(vertices: list[np.ndarray], faces: list[np.ndarray], camera: Camera, device):
    """pytorch3d's `MeshRasterizer` for coverage, depth and barycentrics, then the torch backend's shading, so the two
    differ only in rasterization; returns CPU `(uint8 images, masks, depth)`."""
    try:
        from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
        from pytorch3d.structures import Meshes
        from pytorch3d.utils import cameras_from_opencv_projection
    except ImportError:
        raise ImportError(
            "backend='pytorch3d' needs pytorch3d (extra `render`; it builds from source: "
            "pip install 'git+https://github.com/facebookresearch/pytorch3d.git'). Use backend='torch'."
        ) from None
    verts, tris = _mesh_tensors(vertices, faces, device)
    n = len(verts)
    intrinsics = torch.as_tensor(camera.intrinsics, dtype=torch.float32, device=device)
    # pytorch3d samples pixel i at screen coordinate i + 0.5, OpenCV (and the torch backend) at i: shift by half.
    intrinsics = intrinsics + torch.tensor([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]], device=device)
    cameras = cameras_from_opencv_projection(
        R=torch.eye(3, device=device).expand(n, 3, 3),  # the vertices are in the camera frame already
        tvec=torch.zeros(n, 3, device=device),
        camera_matrix=intrinsics.expand(n, 3, 3),
        image_size=torch.tensor([[camera.height, camera.width]], device=device).expand(n, 2),
    )
    settings = RasterizationSettings(image_size=(camera.height, camera.width), blur_radius=0.0, faces_per_pixel=1)
    meshes = Meshes(verts=verts, faces=tris)
    raster = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
    packed_face = raster.pix_to_face[..., 0]  # [N, H, W], index into the packed faces, -1 where empty
    first_face = meshes.mesh_to_faces_packed_first_idx().view(n, 1, 1)
    covered = packed_face >= 0
    fragments = Fragments(
        face_index=torch.where(covered, packed_face - first_face, -1),
        depth=torch.where(covered, raster.zbuf[..., 0], torch.inf),
        barycentric=torch.where(covered[..., None], raster.bary_coords[..., 0, :], 0.0),
    )
    return _grey_views(fragments, verts, tris)


class _PyrenderBackend:
    """pyrender's offscreen OpenGL renderer, headless through EGL; one scene reused, one mesh node per view.

    pyrender always draws with 4x multisampling (hard-coded in its renderer), so a pixel's alpha is the share of
    its four samples that the object covers, not whether its centre is covered. To get the point-sampled
    silhouette of OpenCV's convention (and of the torch backend), it draws at `oversample` times the resolution,
    with hi-res pixel `oversample * i` centred on pixel `i`, keeps those pixels, and counts one as covered when at
    least half of its samples are.
    """

    def __init__(self, camera: Camera, oversample: int = 8):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        try:
            import pyrender
        except ImportError:
            raise ImportError("backend='pyrender' needs pyrender: pip install 'occ-hf[gl]' (or pyrender).") from None
        self._pyrender = pyrender
        self.oversample = oversample
        intrinsics = camera.intrinsics * np.array([[oversample], [oversample], [1.0]])
        fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
        try:
            self.renderer = pyrender.OffscreenRenderer(camera.width * oversample, camera.height * oversample)
        except Exception as error:  # EGL/OSMesa failures surface as many exception types
            raise RuntimeError(
                f"pyrender could not open a headless OpenGL context ({type(error).__name__}: {error}); it needs "
                "libEGL (PYOPENGL_PLATFORM=egl) or libOSMesa (PYOPENGL_PLATFORM=osmesa). Use backend='torch'."
            ) from error
        # pyrender's shader is physically based with a 1/2.2 gamma at the end; these two constants make a face
        # turned to the camera and one seen edge-on come out near the torch backend's grey levels.
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[_PYRENDER_AMBIENT] * 3)
        # OpenGL puts pixel centres at half-integers, OpenCV (and the torch backend) at integers: shift by half.
        gl_camera = pyrender.IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5, znear=1e-3, zfar=100.0)
        self.scene.add(gl_camera, pose=np.eye(4))
        # A light at the camera shining along its view: the headlight of MOHO's views and of the torch backend.
        self.scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=_PYRENDER_LIGHT), pose=np.eye(4))
        self.material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[VIEW_GREY, VIEW_GREY, VIEW_GREY, 1.0],
            metallicFactor=0.0,
            roughnessFactor=1.0,
            doubleSided=True,
        )

    def __call__(self, vertices: list[np.ndarray], faces: list[np.ndarray]):
        images, masks, depths = [], [], []
        opencv_to_opengl = np.array([1.0, -1.0, -1.0])  # a half-turn about x: y up, looking down -z
        step = self.oversample
        for v, f in zip(vertices, faces, strict=True):
            gl_vertices = v * opencv_to_opengl
            primitive = self._pyrender.Primitive(
                positions=gl_vertices.astype(np.float32),
                normals=vertex_normals(torch.from_numpy(gl_vertices), torch.from_numpy(f).long())
                .numpy()
                .astype(np.float32),
                indices=f.astype(np.uint32),
                material=self.material,
            )
            node = self.scene.add(self._pyrender.Mesh([primitive]))
            color, depth = self.renderer.render(self.scene, flags=self._pyrender.RenderFlags.RGBA)
            self.scene.remove_node(node)
            color, depth = color[::step, ::step], depth[::step, ::step]
            mask = color[..., 3] >= 128
            # The resolved depth holds one of the four samples, which can miss a covered edge pixel: inf there.
            depth = np.where(mask & (depth > 0), depth, np.inf)
            images.append(torch.from_numpy(np.where(mask[..., None], color[..., :3], 0).astype(np.uint8)))
            masks.append(torch.from_numpy(mask))
            depths.append(torch.from_numpy(depth.astype(np.float32)))
        return torch.stack(images), torch.stack(masks), torch.stack(depths)

    def close(self) -> None:
        self.renderer.delete()


def save_views(rendered: RenderedViews, ids: Sequence[str], out: str | os.PathLike, split: str = "test") -> list[Path]:
    """Writes each sample's views as PNG under the seed's names (orbit views as `.orbit{k}.png`); returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = rendered.images.numpy()
    paths = []
    for sample_id, views in zip(ids, images, strict=True):
        for index, image in enumerate(views):
            name = view_name(sample_id, split) if index == 0 else orbit_view_name(sample_id, index, split)
            Image.fromarray(image).save(out / name)
            paths.append(out / name)
    return paths


def render_split_views(
    split: ObManSplit,
    reconstructor: ObjectReconstructor,
    out: str | os.PathLike,
    num_orbit_views: int = 0,
    orbit_elevation: float = 0.0,
    backend: Literal["torch", "pyrender", "pytorch3d"] = "torch",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    progress: bool = True,
    overwrite: bool = False,
) -> RenderReport:
    """Reconstructs (or loads) a mesh per sample of `split` and writes its views to `out`, a batch at a time.

    A folder may hold the views of several splits (their names differ), but a view this call would write that is
    already there is refused before anything is rendered, unless `overwrite`.

    Args:
        split ([`ObManSplit`]): The samples; its skip policies apply, and its skips are reported.
        reconstructor ([`ObjectReconstructor`]): Maps `(image, sample)` to a mesh, e.g. [`GroundTruthMesh`].
        out (`str` or `os.PathLike`): Folder the views are written to.
        num_orbit_views, orbit_elevation, backend, device, batch_size: As in [`render_views`].
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        overwrite (`bool`, *optional*, defaults to `False`): Replace views of these samples already in `out`.

    Returns:
        [`RenderReport`]: a sample the reconstructor has no mesh for, or whose mesh renders an empty view (it lies
        outside the camera's field, or its vertices or pose are not finite), is listed in `missing` with the
        reason and no view of it is written.
    """
    if not overwrite:
        names = [view_name(i, split.split) for i in split.ids]
        names += [orbit_view_name(i, k, split.split) for i in split.ids for k in range(1, num_orbit_views + 1)]
        existing = [name for name in names if (Path(out) / name).exists()]
        if existing:
            raise FileExistsError(
                f"{out}: {len(existing)} of the {len(names)} views to render are already there (first: "
                f"{existing[0]}); pass --overwrite (overwrite=True) to replace them, or choose another folder."
            )
    report = RenderReport(views_per_sample=1 + num_orbit_views)
    Path(out).mkdir(parents=True, exist_ok=True)  # even when no sample has a mesh, the report goes there
    pending_ids, pending_meshes = [], []

    def flush():
        rendered = render_views(
            pending_meshes, split.camera, num_orbit_views, orbit_elevation, backend, device, batch_size
        )
        # An all-black view is no view: the builder would show it to the model as if it were the object.
        covered = rendered.masks.flatten(2).any(-1)  # [B, V]
        for sample_id, views_covered in zip(pending_ids, covered.tolist(), strict=True):
            if not all(views_covered):
                empty = [index for index, is_covered in enumerate(views_covered) if not is_covered]
                report.missing[sample_id] = (
                    f"the mesh renders an empty view (views {empty}): it lies outside the camera's field or its "
                    "vertices or pose are not finite; check the mesh"
                )
                logger.warning("No view for %s: %s", sample_id, report.missing[sample_id])
        kept = [index for index, views_covered in enumerate(covered.tolist()) if all(views_covered)]
        kept_ids = [pending_ids[index] for index in kept]
        kept_views = RenderedViews(rendered.images[kept], rendered.masks[kept], rendered.depth[kept])
        save_views(kept_views, kept_ids, out, split.split)
        report.rendered.extend(kept_ids)
        pending_ids.clear()
        pending_meshes.clear()

    with tqdm(total=len(split), desc=f"views render {split.split}", unit="sample", disable=not progress) as bar:
        for sample in split:
            try:
                image = decode_image(read_regular_file(sample.rgb_path, MAX_IMAGE_FILE_BYTES), sample.rgb_path)
                mesh = reconstructor.reconstruct(image.convert("RGB"), sample)
            except (FileNotFoundError, ValueError) as error:
                report.missing[sample.sample_id] = str(error)
                logger.warning("No view for %s: %s", sample.sample_id, error)
            else:
                pending_ids.append(sample.sample_id)
                pending_meshes.append(mesh)
                if len(pending_ids) == batch_size:
                    flush()
            bar.update(1)
        if pending_ids:
            flush()
    report.skipped = dict(split.skipped)
    return report


def render_views_main(config: RenderViewsConfig) -> RenderReport:
    """`occ-hf views render`: reads the split, renders its views, writes `render_report.json` and prints it."""
    from ..obman import SHAPENET_DIRNAME, read_id_list

    shapenet_root = config.shapenet_root or str(Path(config.obman_root) / SHAPENET_DIRNAME)
    ids = read_id_list(config.ids_from)[0] if config.ids_from else None
    split = ObManSplit(
        config.obman_root,
        config.split,
        shapenet_root=shapenet_root if config.meshes == "ground_truth" else None,
        ids=ids,
        on_unknown_class=config.on_unknown_class,
    )
    reconstructor = (
        GroundTruthMesh() if config.meshes == "ground_truth" else MeshFolder(config.meshes, config.mesh_frame)
    )
    report = render_split_views(
        split,
        reconstructor,
        config.out,
        num_orbit_views=config.num_orbit_views,
        orbit_elevation=config.orbit_elevation,
        backend=config.backend,
        device=config.device,
        batch_size=config.batch_size,
        overwrite=config.overwrite,
    )
    summary = json.dumps(report.to_dict(), indent=2)
    (Path(config.out) / "render_report.json").write_text(summary + "\n")
    print(summary)
    return report
