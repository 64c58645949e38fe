import torch

from occ_hf.rendering import rasterize, shade_lambert


K = torch.tensor([[480.0, 0.0, 128.0], [0.0, 480.0, 128.0], [0.0, 0.0, 1.0]])


def _triangle(z, size=0.1):
    return torch.tensor([[-size, -size, z], [size, -size, z], [0.0, size, z]])


def test_nearer_triangle_wins_whatever_the_order():
    far, near = _triangle(1.0), _triangle(0.8, size=0.05)
    verts = torch.cat([far, near])
    for faces, near_index in ((torch.tensor([[0, 1, 2], [3, 4, 5]]), 1), (torch.tensor([[3, 4, 5], [0, 1, 2]]), 0)):
        fragments = rasterize([verts], [faces], K, 256, 256)
        assert fragments.face_index[0, 128, 128] == near_index
        torch.testing.assert_close(fragments.depth[0, 128, 128], torch.tensor(0.8))
        # Outside the near triangle, the far one shows.
        assert fragments.face_index[0, 90, 128] == 1 - near_index


def test_pixel_centres_on_integer_coordinates():
    """An axis-aligned square from pixel 100 to 110 (closed) covers 11 x 11 pixel centres."""
    z = 1.0
    corners = [(100, 100), (110, 100), (110, 110), (100, 110)]
    verts = torch.tensor([[(u - 128) * z / 480, (v - 128) * z / 480, z] for u, v in corners])
    fragments = rasterize([verts], [torch.tensor([[0, 1, 2], [0, 2, 3]])], K, 256, 256)
    assert fragments.mask.sum() == 121
    assert fragments.mask[0, 100:111, 100:111].all()


def test_perspective_correct_depth_on_a_tilted_plane():
    """Interpolated depth equals the ray-plane intersection, not a screen-linear blend."""
    verts = torch.tensor([[-0.3, -0.3, 0.5], [0.3, -0.3, 0.5], [0.3, 0.3, 1.5], [-0.3, 0.3, 1.5]])
    fragments = rasterize([verts], [torch.tensor([[0, 1, 2], [0, 2, 3]])], K, 256, 256)
    # Plane: z = 1 + y / 0.6 * 1.0; along the ray through pixel v: y = (v - 128) / 480 * z.
    for row in (100, 128, 150):
        slope = (row - 128) / 480
        expected = 1.0 / (1.0 - slope / 0.6)
        assert abs(float(fragments.depth[0, row, 128]) - expected) < 1e-4


def test_batched_equals_one_by_one():
    generator = torch.Generator().manual_seed(0)
    meshes = []
    for _ in range(3):
        verts = torch.rand(30, 3, generator=generator) * 0.4 - 0.2 + torch.tensor([0.0, 0.0, 1.0])
        faces = torch.randint(0, 30, (40, 3), generator=generator)
        meshes.append((verts, faces))
    batched = rasterize([v for v, _ in meshes], [f for _, f in meshes], K, 64, 80)
    for b, (verts, faces) in enumerate(meshes):
        single = rasterize([verts], [faces], K, 64, 80)
        assert torch.equal(batched.face_index[b], single.face_index[0])
        assert torch.equal(batched.depth[b], single.depth[0])
        assert torch.allclose(batched.barycentric[b], single.barycentric[0])


def test_shading_is_black_outside_and_lit_inside():
    verts = _triangle(1.0)
    faces = torch.tensor([[0, 1, 2]])
    fragments = rasterize([verts], [faces], K, 256, 256)
    rgb = shade_lambert(fragments, [verts], [faces], [torch.tensor([[1.0, 0.5, 0.0]])])
    assert rgb[0, 0, 0].abs().sum() == 0
    # Facing the camera head-on: full diffuse at the centre.
    torch.testing.assert_close(rgb[0, 128, 128], torch.tensor([1.0, 0.5, 0.0]), atol=2e-3, rtol=0)
