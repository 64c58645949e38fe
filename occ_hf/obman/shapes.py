"""Procedural object meshes, one family per OCC class, in ShapeNetCore v2's `model_normalized` convention.

The sample generator needs objects that a small model can tell apart by shape and size alone (colours are random),
as the real ShapeNet objects of ObMan are. Each class is a parametric family with per-sample jitter:

| class     | shape                                               | real size (bounding-box diagonal) |
|-----------|-----------------------------------------------------|-----------------------------------|
| can       | squat straight cylinder                             | 0.15 m                            |
| bottle    | tall body, shoulder, narrow neck                    | 0.27 m                            |
| jar       | wide barrel with a short lid                        | 0.19 m                            |
| bowl      | wide, shallow open dish with a thick rim             | 0.22 m                            |
| knife     | long flat tapered blade on a thicker handle          | 0.25 m                            |
| cellphone | thin flat slab, 2:1                                  | 0.16 m                            |
| remote    | long narrow block with buttons, 4:1                  | 0.20 m                            |
| camera    | box body with a protruding cylindrical lens          | 0.14 m                            |

Meshes follow ShapeNetCore v2's normalisation (y up, centred on the bounding box, bounding-box diagonal 1), so the
ObMan convention of scaling by `obj_scale` then applying `affine_transform` gives the real size.

```python
mesh = make_object_mesh("bottle", np.random.default_rng(0))   # trimesh.Trimesh, diagonal 1
```
"""

import numpy as np
import trimesh


__all__ = ["CLASS_DIAGONAL_METRES", "make_object_mesh"]

CLASS_DIAGONAL_METRES = {
    "can": 0.15,
    "bottle": 0.27,
    "jar": 0.19,
    "bowl": 0.22,
    "knife": 0.25,
    "cellphone": 0.16,
    "remote": 0.20,
    "camera": 0.14,
}

_SECTIONS = 32


def make_object_mesh(class_name: str, rng: np.random.Generator) -> trimesh.Trimesh:
    """Builds one random member of `class_name`'s family, normalised as ShapeNet's `model_normalized.obj`.

    Args:
        class_name (`str`): One of the 8 OCC classes (`CLASS_DIAGONAL_METRES`).
        rng (`np.random.Generator`): Source of the per-sample jitter (aspect ratios, proportions).

    Returns:
        `trimesh.Trimesh`: a closed mesh, y up, centred on its bounding box, with bounding-box diagonal 1.
    """
    try:
        builder = _BUILDERS[class_name]
    except KeyError:
        raise ValueError(f"Unknown class {class_name!r}; expected one of {sorted(_BUILDERS)}.") from None
    mesh = builder(rng)
    lo, hi = mesh.bounds
    mesh.apply_translation(-(lo + hi) / 2)
    mesh.apply_scale(1.0 / np.linalg.norm(hi - lo))
    return mesh


def _lathe(radii: list[float], heights: list[float]) -> trimesh.Trimesh:
    """Revolves a profile (radius, height) about the y axis; a profile starting and ending on the axis is closed."""
    profile = np.stack([radii, heights], axis=1)
    mesh = trimesh.creation.revolve(profile, sections=_SECTIONS)
    # trimesh revolves about z; ShapeNet objects stand on y.
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    return mesh


def _box(extents, center=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(center)
    return box


def _prism(triangle: np.ndarray, thickness: float) -> trimesh.Trimesh:
    """A closed prism over a counter-clockwise 2D triangle `[3, 2]` in the xy plane, centred on z = 0."""
    z = np.full((3, 1), thickness / 2)
    vertices = np.concatenate([np.hstack([triangle, -z]), np.hstack([triangle, z])])
    faces = [[0, 2, 1], [3, 4, 5]]  # back and front caps, facing outwards
    for a, b in ((0, 1), (1, 2), (2, 0)):
        faces += [[a, b, b + 3], [a, b + 3, a + 3]]
    return trimesh.Trimesh(vertices, faces, process=False)


def _can(rng):
    radius = rng.uniform(0.9, 1.1)
    height = radius * rng.uniform(2.3, 2.7)
    return _lathe([0, radius, radius, 0], [0, 0, height, height])


def _bottle(rng):
    radius = 1.0
    body = rng.uniform(4.5, 5.5)
    shoulder = body + rng.uniform(0.9, 1.3)
    neck_radius = rng.uniform(0.35, 0.45)
    top = shoulder + rng.uniform(1.6, 2.2)
    return _lathe(
        [0, radius, radius, neck_radius, neck_radius, 0],
        [0, 0, body, shoulder, top, top],
    )


def _jar(rng):
    radius = 1.0
    height = rng.uniform(1.7, 2.0)
    belly = radius * rng.uniform(1.12, 1.2)
    lid_radius = radius * rng.uniform(0.82, 0.9)
    lid = height + rng.uniform(0.25, 0.35)
    return _lathe(
        [0, radius, belly, radius, lid_radius, lid_radius, 0],
        [0, 0, height * 0.45, height, height, lid, lid],
    )


def _bowl(rng):
    rim = 1.0
    depth = rng.uniform(0.4, 0.5)
    foot = rim * rng.uniform(0.4, 0.5)
    wall = 0.09
    # Outer wall from the foot to the rim, then back down the inside: an open dish with a solid wall.
    return _lathe(
        [0, foot, rim * 0.85, rim, rim - wall, rim * 0.8, foot - wall, 0],
        [0, 0, depth * 0.6, depth, depth, depth * 0.6, wall, wall],
    )


def _knife(rng):
    length = rng.uniform(7.5, 8.5)
    handle = length * rng.uniform(0.36, 0.42)
    blade = length - handle
    width = rng.uniform(0.75, 0.9)
    handle_part = _box([handle, width * 0.8, 0.38], center=(-blade / 2 - handle / 2, 0, 0))
    # Blade: a flat triangular prism whose lower edge runs straight and whose upper edge tapers to the tip.
    outline = np.array([[-blade / 2, -width / 2], [blade / 2, -width / 2], [-blade / 2, width / 2]])
    return trimesh.util.concatenate([handle_part, _prism(outline, thickness=0.08)])


def _cellphone(rng):
    width = rng.uniform(1.0, 1.1)
    return _box([width, width * rng.uniform(1.9, 2.1), width * rng.uniform(0.09, 0.12)])


def _remote(rng):
    width = rng.uniform(0.95, 1.05)
    length = width * rng.uniform(3.8, 4.4)
    depth = width * rng.uniform(0.45, 0.55)
    body = _box([width, length, depth])
    buttons = [
        _box([width * 0.22, width * 0.18, depth * 0.3], center=(x, y, depth * 0.6))
        for y in np.linspace(length * 0.05, length * 0.4, 3)
        for x in (-width * 0.25, width * 0.25)
    ]
    return trimesh.util.concatenate([body, *buttons])


def _camera(rng):
    width = rng.uniform(1.9, 2.1)
    height = width * rng.uniform(0.62, 0.7)
    depth = width * rng.uniform(0.4, 0.5)
    body = _box([width, height, depth])
    lens_radius = height * rng.uniform(0.32, 0.38)
    lens = trimesh.creation.cylinder(radius=lens_radius, height=depth * 1.1, sections=_SECTIONS)
    lens.apply_translation([0, 0, depth * 0.55])
    viewfinder = _box([width * 0.3, height * 0.25, depth * 0.6], center=(0, height * 0.6, 0))
    return trimesh.util.concatenate([body, lens, viewfinder])


_BUILDERS = {
    "can": _can,
    "bottle": _bottle,
    "jar": _jar,
    "bowl": _bowl,
    "knife": _knife,
    "cellphone": _cellphone,
    "remote": _remote,
    "camera": _camera,
}
