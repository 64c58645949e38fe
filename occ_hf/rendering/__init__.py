"""Rendering shared by the sample generator and the 3D views: a batched torch rasterizer and Lambert shading."""

from .rasterize import Fragments, project_points, rasterize
from .shading import interpolate_face_attributes, shade_lambert, vertex_normals


__all__ = [
    "Fragments",
    "interpolate_face_attributes",
    "project_points",
    "rasterize",
    "shade_lambert",
    "vertex_normals",
]
