"""A z-buffer triangle rasterizer in plain torch, batched, for CPU and GPU alike.

It draws triangle meshes that are already in a pinhole camera's frame (OpenCV convention: x right, y down,
z forward, in metres) into images of `height x width` pixels, and returns for every pixel the nearest face, its
depth and its perspective-correct barycentric coordinates. The sample generator (`occ_hf.obman.synth`) renders
its scenes with it, and the 3D views are rendered with it where pytorch3d is not installed, so both share one
definition of "which pixel a triangle covers".

How it works: every face is projected; each row of its pixel bounding box gets the x-interval where its
barycentric coordinates are all non-negative, and each covered (face, pixel) pair becomes one row of a flat list
(built with `repeat_interleave`, no Python loop over faces or pixels). `scatter_reduce(amin)` keeps the nearest
depth per pixel, and a second `amax` pass picks one face per pixel deterministically where two faces tie.
Pixel `(row, col)` has its centre at image coordinates `(u, v) = (col, row)` (OpenCV's convention), so ObMan's
`cx = cy = 128` puts the optical axis on the centre of pixel (128, 128).

Usage:

```python
fragments = rasterize(verts, faces, intrinsics, height=256, width=256)   # verts [B, V, 3] or a list
fragments.face_index   # [B, H, W], -1 where no face covers the pixel
```
"""

from dataclasses import dataclass

import torch


__all__ = ["Fragments", "rasterize", "project_points"]

# Candidate (face, pixel) pairs are processed in chunks of this many rows to bound peak memory: each row costs
# ~60 bytes across the temporaries, so a chunk is ~500 MB at most.
_MAX_CANDIDATES_PER_CHUNK = 8_000_000
# A pixel centre within this (in barycentric units) of an edge counts as inside, so that a centre exactly on an
# edge shared by two faces is not lost to rounding; the scanline bounds are widened by a matching pixel slack.
_INSIDE_TOLERANCE = 1e-6
_SCANLINE_SLACK = 1e-3
# Faces with less than this area (square pixels, twice over) cover no pixel centre robustly and are dropped.
_MIN_AREA = 1e-6
# Faces whose vertices come closer to the camera than this (metres) are dropped rather than clipped.
_NEAR_PLANE = 1e-4


@dataclass
class Fragments:
    """What the rasterizer saw at each pixel.

    Attributes:
        face_index (`torch.LongTensor` of shape `[B, H, W]`):
            Index of the nearest face in its own mesh, `-1` where the pixel is empty.
        depth (`torch.FloatTensor` of shape `[B, H, W]`):
            Camera-frame z of the nearest surface, `inf` where the pixel is empty.
        barycentric (`torch.FloatTensor` of shape `[B, H, W, 3]`):
            Perspective-correct barycentric coordinates of the pixel centre in that face (zeros where empty).
    """

    face_index: torch.Tensor
    depth: torch.Tensor
    barycentric: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """`[B, H, W]` boolean coverage."""
        return self.face_index >= 0


def project_points(points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Projects camera-frame points `[..., 3]` to pixels with camera matrices `[..., 3, 3]` (broadcast).

    Returns `[..., 2]` pixel coordinates `(u, v)`; the caller is responsible for points with `z <= 0`.
    """
    homogeneous = (intrinsics @ points.unsqueeze(-1)).squeeze(-1)  # [..., 3]
    return homogeneous[..., :2] / homogeneous[..., 2:3]


def rasterize(
    verts: torch.Tensor | list[torch.Tensor],
    faces: torch.Tensor | list[torch.Tensor],
    intrinsics: torch.Tensor,
    height: int,
    width: int,
) -> Fragments:
    """Rasterizes a batch of triangle meshes given in camera coordinates.

    Args:
        verts (`torch.Tensor` of shape `[B, V, 3]`, or a list of `B` tensors `[V_b, 3]`):
            Vertices in the camera frame (OpenCV axes, z forward).
        faces (`torch.LongTensor` of shape `[B, F, 3]` / `[F, 3]`, or a list of `B` tensors `[F_b, 3]`):
            Vertex indices of each triangle; a single `[F, 3]` tensor is shared by the whole batch.
        intrinsics (`torch.Tensor` of shape `[3, 3]` or `[B, 3, 3]`):
            Pinhole camera matrix `[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`.
        height (`int`), width (`int`):
            Image size in pixels.

    Returns:
        [`Fragments`] with one image per mesh.
    """
    verts_list = list(verts) if not isinstance(verts, torch.Tensor) or verts.dim() == 3 else [verts]
    faces_list = [faces] * len(verts_list) if isinstance(faces, torch.Tensor) and faces.dim() == 2 else list(faces)
    if len(faces_list) != len(verts_list):
        raise ValueError(f"Got {len(verts_list)} vertex sets but {len(faces_list)} face sets.")
    batch = len(verts_list)
    device = verts_list[0].device
    dtype = verts_list[0].dtype
    intrinsics = intrinsics.to(device=device, dtype=dtype)
    if intrinsics.dim() == 2:
        intrinsics = intrinsics.expand(batch, 3, 3)

    # Pack every mesh's triangles into one list, remembering which image and which local face each came from.
    tri_xyz, image_of_face, local_face = [], [], []
    for b, (v, f) in enumerate(zip(verts_list, faces_list, strict=True)):
        f = f.to(device=device, dtype=torch.long)
        tri_xyz.append(v[f])  # [F_b, 3 corners, 3]
        image_of_face.append(torch.full((f.shape[0],), b, device=device, dtype=torch.long))
        local_face.append(torch.arange(f.shape[0], device=device))
    tri_xyz = torch.cat(tri_xyz)  # [F, 3, 3]
    image_of_face = torch.cat(image_of_face)
    local_face = torch.cat(local_face)

    tri_uv = project_points(tri_xyz, intrinsics[image_of_face].unsqueeze(1))  # [F, 3, 2]
    tri_z = tri_xyz[..., 2]  # [F, 3]

    # Pixel bounding box of each face, clipped to the image; pixel centres sit on integer coordinates.
    x0 = tri_uv[..., 0].amin(1).ceil().clamp(0, width - 1).long()
    x1 = tri_uv[..., 0].amax(1).floor().clamp(-1, width - 1).long()
    y0 = tri_uv[..., 1].amin(1).ceil().clamp(0, height - 1).long()
    y1 = tri_uv[..., 1].amax(1).floor().clamp(-1, height - 1).long()
    area = _edge(tri_uv[:, 0], tri_uv[:, 1], tri_uv[:, 2])  # [F], twice the signed area
    keep = (tri_z.amin(1) > _NEAR_PLANE) & (x1 >= x0) & (y1 >= y0) & (area.abs() > _MIN_AREA)
    # Bounding-box areas: an upper bound on each face's pairs, used to size the chunks.
    counts = torch.where(keep, (x1 - x0 + 1).clamp(min=0) * (y1 - y0 + 1).clamp(min=0), torch.zeros_like(x0))

    pixels = batch * height * width
    zbuffer = torch.full((pixels,), float("inf"), device=device, dtype=dtype)
    winner = torch.full((pixels,), -1, device=device, dtype=torch.long)
    candidates = []
    coefficients = _barycentric_coefficients(tri_uv, area)
    for face_ids in _chunks_by_count(counts):
        pixel_key, z, face_of_pair, weights = _inside_pairs(
            face_ids, x0, x1, y0, y1, coefficients, tri_z, image_of_face, height, width
        )
        zbuffer.scatter_reduce_(0, pixel_key, z, reduce="amin")
        candidates.append((pixel_key, z, face_of_pair, weights))
    for pixel_key, z, face_of_pair, _ in candidates:
        nearest = z == zbuffer[pixel_key]
        winner.scatter_reduce_(0, pixel_key[nearest], face_of_pair[nearest], reduce="amax")

    barycentric = torch.zeros((pixels, 3), device=device, dtype=dtype)
    for pixel_key, _, face_of_pair, weights in candidates:
        chosen = winner[pixel_key] == face_of_pair
        barycentric[pixel_key[chosen]] = weights[chosen]

    covered = winner >= 0
    face_index = torch.where(covered, local_face[winner.clamp(min=0)], winner)
    return Fragments(
        face_index=face_index.view(batch, height, width),
        depth=zbuffer.view(batch, height, width),
        barycentric=barycentric.view(batch, height, width, 3),
    )


def _edge(a: torch.Tensor, b: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Edge function: twice the signed area of triangle `(a, b, p)` for `[..., 2]` points."""
    return (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])


def _barycentric_coefficients(tri_uv: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """`[F, 3, 3]`: for corner i, `(a_i, b_i, c_i)` with screen barycentric `w_i(x, y) = a_i x + b_i y + c_i`.

    Dividing by the signed area makes the coordinates positive inside the triangle for either winding.
    """
    coefficients = []
    for i in range(3):
        p, q = tri_uv[:, (i + 1) % 3], tri_uv[:, (i + 2) % 3]  # the edge opposite corner i
        a = -(q[:, 1] - p[:, 1])
        b = q[:, 0] - p[:, 0]
        c = (q[:, 1] - p[:, 1]) * p[:, 0] - (q[:, 0] - p[:, 0]) * p[:, 1]
        coefficients.append(torch.stack([a, b, c], dim=-1) / area[:, None])
    return torch.stack(coefficients, dim=1)


def _chunks_by_count(counts: torch.Tensor):
    """Yields tensors of face ids whose candidate counts sum to at most one chunk (a huge face gets its own)."""
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1]) if len(ends) else 0
    start_face, done = 0, 0
    while done < total:
        stop_face = int(torch.searchsorted(ends, done + _MAX_CANDIDATES_PER_CHUNK, right=True))
        stop_face = max(stop_face, start_face + 1)
        yield torch.arange(start_face, stop_face, device=counts.device)
        done = int(ends[stop_face - 1])
        start_face = stop_face


def _inside_pairs(face_ids, x0, x1, y0, y1, coefficients, tri_z, image_of_face, height, width):
    """Lists the (face, pixel) pairs whose pixel centre lies inside the face, scanline by scanline.

    Each face row gets the x-interval where all three barycentric coordinates are non-negative (they are linear
    in x along a row), so only covered pixels are expanded: thin diagonal triangles cost their area, not their box.
    """
    rows = (y1 - y0 + 1)[face_ids].clamp(min=0)
    face_of_row = torch.repeat_interleave(face_ids, rows)  # [R]
    first = torch.cumsum(rows, 0) - rows
    y = y0[face_of_row] + torch.arange(int(rows.sum()), device=rows.device) - torch.repeat_interleave(first, rows)
    a, b, c = coefficients[face_of_row].unbind(-1)  # each [R, 3]: b_i(x, y) = a_i x + b_i y + c_i
    offset = b * y[:, None].to(b.dtype) + c  # [R, 3]
    # a_i x + offset_i >= 0 bounds x from below where a_i > 0 and from above where a_i < 0.
    bound = -offset / torch.where(a == 0, torch.ones_like(a), a)
    lower = torch.where(a > 0, bound, torch.full_like(bound, -float("inf"))).amax(-1)
    upper = torch.where(a < 0, bound, torch.full_like(bound, float("inf"))).amin(-1)
    flat_ok = ((a != 0) | (offset >= -_INSIDE_TOLERANCE)).all(-1)
    xl = torch.maximum((lower - _SCANLINE_SLACK).ceil().clamp(-1, width).long(), x0[face_of_row])
    xr = torch.minimum((upper + _SCANLINE_SLACK).floor().clamp(-1, width).long(), x1[face_of_row])
    # NaN bounds (coefficients overflowing on a sliver face) must give an empty row, not a garbage count.
    finite = ~(lower.isnan() | upper.isnan())
    counts = torch.where(flat_ok & finite, (xr - xl + 1).clamp(min=0), torch.zeros_like(xl))

    pair_row = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)  # [N]
    first = torch.cumsum(counts, 0) - counts
    px = xl[pair_row] + torch.arange(int(counts.sum()), device=counts.device) - first[pair_row]
    py = y[pair_row]
    face_of_pair = face_of_row[pair_row]
    coefficient = coefficients[face_of_pair]  # [N, 3, 3]
    screen = coefficient[..., 0] * px[:, None].to(b.dtype) + coefficient[..., 1] * py[:, None].to(b.dtype)
    screen = screen + coefficient[..., 2]  # [N, 3] screen-space barycentrics
    inside = (screen >= -_INSIDE_TOLERANCE).all(-1)
    face_of_pair, px, py = face_of_pair[inside], px[inside], py[inside]
    screen = screen[inside].clamp(min=0)

    # Perspective-correct interpolation: 1/z is linear in screen space.
    inv_z = screen / tri_z[face_of_pair]  # [N, 3]
    z = 1.0 / inv_z.sum(-1)
    weights = inv_z * z[:, None]
    pixel_key = (image_of_face[face_of_pair] * height + py) * width + px
    return pixel_key, z, face_of_pair, weights
