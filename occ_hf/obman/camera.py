"""ObMan's camera, as its public loaders hard-code it.

ObMan's meta pickles carry no camera. hassony2/obman (`obman/obman.py`) and hassony2/obman_train
(`handobjectdatasets/obman.py`) both hard-code the intrinsics below; they come from the writer's Blender camera
(hassony2/obman_render `obman_render/camutils.py`: a 60 mm lens on a 32 mm sensor at 256 px gives f = 480 px, the
principal point at 128). Meta 3D quantities (`coords_3d`, `verts_3d`, `affine_transform`) live in Blender's camera
frame (looking down -z, y up); `BLENDER_TO_OPENCV` turns them into OpenCV's (z forward, y down).
"""

from dataclasses import dataclass, field

import numpy as np


__all__ = ["BLENDER_TO_OPENCV", "OBMAN_IMAGE_SIZE", "OBMAN_INTRINSICS", "Camera", "blender_to_opencv", "obman_camera"]

OBMAN_IMAGE_SIZE = 256
OBMAN_INTRINSICS = np.array([[480.0, 0.0, 128.0], [0.0, 480.0, 128.0], [0.0, 0.0, 1.0]], dtype=np.float64)
# `cam_extr[:3, :3]` of both loaders.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: intrinsics `K` (3 x 3, pixels) and image size; points are given in its OpenCV frame."""

    intrinsics: np.ndarray = field(default_factory=lambda: OBMAN_INTRINSICS.copy())
    height: int = OBMAN_IMAGE_SIZE
    width: int = OBMAN_IMAGE_SIZE

    def project(self, points: np.ndarray) -> np.ndarray:
        """Projects OpenCV camera-frame points `[N, 3]` to pixel coordinates `[N, 2]`."""
        homogeneous = points @ self.intrinsics.T
        return homogeneous[:, :2] / homogeneous[:, 2:3]


def obman_camera() -> Camera:
    """The camera of every ObMan image (fx = fy = 480, cx = cy = 128, 256 x 256)."""
    return Camera()


def blender_to_opencv(points: np.ndarray) -> np.ndarray:
    """Maps Blender camera-frame points `[N, 3]` (meta `coords_3d`, `verts_3d`) to the OpenCV camera frame."""
    return points @ BLENDER_TO_OPENCV.T
