"""Shading for rasterized meshes: attribute interpolation and a headlight Lambert model.

The 3D views of the seed are MOHO reconstructions rendered "shaded grey on black": one light at the camera, no
texture. `shade_lambert` reproduces that look, and the sample generator uses it with per-face colours for its
RGB scenes.

```python
fragments = rasterize(verts, faces, K, 256, 256)
rgb = shade_lambert(fragments, verts, faces, face_colors)   # [B, H, W, 3] in [0, 1], black background
```
"""

import torch

from .rasterize import Fragments


__all__ = ["interpolate_face_attributes", "shade_lambert", "vertex_normals"]


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals `[V, 3]` of a mesh `verts [V, 3]`, `faces [F, 3]`."""
    corners = verts[faces]  # [F, 3, 3]
    face_normals = torch.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1)  # [F, 3]
    normals = torch.zeros_like(verts).index_add_(0, faces.reshape(-1), face_normals.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(normals, dim=-1)


def interpolate_face_attributes(fragments: Fragments, face_attributes: list[torch.Tensor]) -> torch.Tensor:
    """Interpolates per-corner attributes `[F_b, 3, C]` (one tensor per image) at every covered pixel.

    Returns `[B, H, W, C]`, zeros where no face covers the pixel.
    """
    batch, height, width = fragments.face_index.shape
    channels = face_attributes[0].shape[-1]
    out = fragments.barycentric.new_zeros((batch, height, width, channels))
    for b, attributes in enumerate(face_attributes):
        covered = fragments.face_index[b] >= 0
        corner_values = attributes.to(out)[fragments.face_index[b][covered]]  # [N, 3, C]
        out[b][covered] = (fragments.barycentric[b][covered].unsqueeze(-1) * corner_values).sum(1)
    return out


def shade_lambert(
    fragments: Fragments,
    verts: list[torch.Tensor],
    faces: list[torch.Tensor],
    face_colors: list[torch.Tensor] | None = None,
    ambient: float = 0.25,
) -> torch.Tensor:
    """Shades a rasterized batch with a light at the camera centre (two-sided Lambert plus ambient).

    Args:
        fragments ([`Fragments`]): Output of [`rasterize`] for these meshes.
        verts (`list[torch.Tensor]`): Camera-frame vertices `[V_b, 3]` per image.
        faces (`list[torch.LongTensor]`): Faces `[F_b, 3]` per image.
        face_colors (`list[torch.Tensor]`, *optional*):
            RGB in `[0, 1]` per face, `[F_b, 3]`; defaults to mid grey, the look of the seed's views.
        ambient (`float`, *optional*, defaults to 0.25): Share of the colour lit regardless of the normal.

    Returns:
        `torch.Tensor` of shape `[B, H, W, 3]`, values in `[0, 1]`, black where nothing was drawn.
    """
    corner_normals, corner_points, corner_colors = [], [], []
    for b, (v, f) in enumerate(zip(verts, faces, strict=True)):
        f = f.long()
        corner_normals.append(vertex_normals(v, f)[f])  # [F, 3, 3]
        corner_points.append(v[f])
        colors = face_colors[b] if face_colors is not None else torch.full((f.shape[0], 3), 0.6)
        corner_colors.append(colors.to(v)[:, None, :].expand(-1, 3, -1))
    normals = torch.nn.functional.normalize(interpolate_face_attributes(fragments, corner_normals), dim=-1)
    points = interpolate_face_attributes(fragments, corner_points)
    colors = interpolate_face_attributes(fragments, corner_colors)
    to_camera = torch.nn.functional.normalize(-points, dim=-1)
    # Two-sided: reconstructed meshes (marching cubes) and thin parts have either winding.
    diffuse = (normals * to_camera).sum(-1).abs().unsqueeze(-1)  # [B, H, W, 1]
    shaded = colors * (ambient + (1.0 - ambient) * diffuse)
    return shaded * fragments.mask.unsqueeze(-1)
