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
    counts = [attributes.shape[0] for attributes in face_attributes]
    packed = torch.cat([attributes.to(fragments.barycentric) for attributes in face_attributes])  # [F, 3, C]
    return _interpolate_packed(fragments, packed, counts)


def _interpolate_packed(fragments: Fragments, packed: torch.Tensor, face_counts: list[int]) -> torch.Tensor:
    """`interpolate_face_attributes` for the batch's faces concatenated (`[sum F_b, 3, C]`), in one gather."""
    batch, height, width = fragments.face_index.shape
    counts = torch.tensor(face_counts, device=packed.device)
    first_face = (torch.cumsum(counts, 0) - counts).view(batch, 1, 1)  # [B, 1, 1]
    covered = fragments.face_index >= 0  # [B, H, W]
    faces = (fragments.face_index + first_face)[covered]  # [N]
    out = packed.new_zeros((batch, height, width, packed.shape[-1]))
    out[covered] = (fragments.barycentric[covered].unsqueeze(-1) * packed[faces]).sum(1)
    return out


def shade_lambert(
    fragments: Fragments,
    verts: list[torch.Tensor],
    faces: list[torch.Tensor],
    face_colors: list[torch.Tensor] | None = None,
    ambient: float = 0.25,
) -> torch.Tensor:
    """Shades a rasterized batch with a light at the camera centre (two-sided Lambert plus ambient).

    The batch's meshes are packed into one, so the work is a few large tensor operations whatever the batch size.

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
    dtype, device = fragments.barycentric.dtype, fragments.barycentric.device
    packed_verts = torch.cat([v.to(device=device, dtype=dtype) for v in verts])  # [V, 3]
    vert_counts = torch.tensor([v.shape[0] for v in verts], device=device)
    first_vert = torch.cumsum(vert_counts, 0) - vert_counts
    packed_faces = torch.cat([f.to(device).long() + first_vert[b] for b, f in enumerate(faces)])  # [F, 3]
    if face_colors is None:
        colors = torch.full((packed_faces.shape[0], 3), 0.6, device=device, dtype=dtype)
    else:
        colors = torch.cat([c.to(device=device, dtype=dtype) for c in face_colors])  # [F, 3]
    corner_attributes = torch.cat(
        [
            vertex_normals(packed_verts, packed_faces)[packed_faces],  # [F, 3, 3] normals
            packed_verts[packed_faces],  # [F, 3, 3] points
            colors[:, None, :].expand(-1, 3, -1),  # [F, 3, 3] colours
        ],
        dim=-1,
    )
    values = _interpolate_packed(fragments, corner_attributes, [f.shape[0] for f in faces])  # [B, H, W, 9]
    normals = torch.nn.functional.normalize(values[..., 0:3], dim=-1)
    to_camera = torch.nn.functional.normalize(-values[..., 3:6], dim=-1)
    # Two-sided: reconstructed meshes (marching cubes) and thin parts have either winding.
    diffuse = (normals * to_camera).sum(-1).abs().unsqueeze(-1)  # [B, H, W, 1]
    shaded = values[..., 6:9] * (ambient + (1.0 - ambient) * diffuse)
    return shaded * fragments.mask.unsqueeze(-1)
