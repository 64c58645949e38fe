"""A hand-shaped occluder for generated samples: a palm, four fingers and a thumb, with 21 joints.

It stands in for ObMan's MANO hand in `occ-hf synth-obman`: what matters for OCC-MLLM-CoT is that a hand-sized,
hand-shaped thing hides a controlled share of the object. It is built in its own frame, metres, palm in the
xy plane facing -z (towards a camera looking down +z), fingers along -y (up in the image).

Faces are ordered palm first, then fingers and thumb, so a face index tells which segmentation value it gets
(ObMan's palm `rightHand` = 22, fingers `rightHandIndex1` = 24).
"""

from dataclasses import dataclass

import numpy as np
import trimesh


__all__ = ["HandOccluder", "make_hand_occluder"]

_FINGER_SECTIONS = 10


@dataclass
class HandOccluder:
    """A hand-like mesh in its own frame.

    Attributes:
        vertices (`np.ndarray` `[V, 3]`), faces (`np.ndarray` `[F, 3]`): The mesh.
        num_palm_faces (`int`): Faces `[0, num_palm_faces)` are the palm, the rest fingers and thumb.
        joints (`np.ndarray` `[21, 3]`): Wrist, then thumb, index, middle, ring, pinky, 4 joints each
            (base to tip), the order the ObMan loaders return `coords_3d` in.
    """

    vertices: np.ndarray
    faces: np.ndarray
    num_palm_faces: int
    joints: np.ndarray


def _finger(base: np.ndarray, direction: np.ndarray, length: float, radius: float):
    """A capped cylinder from `base` along unit `direction`, and its 4 joints (base, two knuckles, tip)."""
    cylinder = trimesh.creation.cylinder(radius=radius, height=length, sections=_FINGER_SECTIONS)
    # trimesh's cylinder runs along z, centred on the origin.
    rotation = trimesh.geometry.align_vectors([0, 0, 1], direction)
    cylinder.apply_transform(rotation)
    cylinder.apply_translation(base + direction * length / 2)
    joints = base + np.outer([0.0, 0.4, 0.7, 1.0], direction) * length
    return cylinder, joints


def make_hand_occluder(rng: np.random.Generator) -> HandOccluder:
    """Builds one hand with jittered proportions (palm ~8 cm wide, fingers ~7 cm long)."""
    size = rng.uniform(0.92, 1.08)
    palm_width, palm_length, palm_depth = 0.080 * size, 0.085 * size, 0.025 * size
    palm = trimesh.creation.box(extents=[palm_width, palm_length, palm_depth])
    wrist = np.array([0.0, palm_length / 2, 0.0])

    parts, joints = [], [wrist]
    thumb_direction = np.array([-0.8, -0.6, -0.1])
    thumb_direction /= np.linalg.norm(thumb_direction)
    thumb, thumb_joints = _finger(
        np.array([-palm_width / 2, palm_length * 0.15, 0.0]), thumb_direction, 0.060 * size, 0.0105 * size
    )
    parts.append(thumb)
    joints.extend(thumb_joints)
    for i, length in enumerate((0.072, 0.080, 0.075, 0.060)):
        x = palm_width * (-0.375 + 0.25 * i)
        spread = np.array([0.06 * (i - 1.5), -1.0, rng.uniform(-0.15, 0.0)])
        finger, finger_joints = _finger(
            np.array([x, -palm_length / 2, 0.0]), spread / np.linalg.norm(spread), length * size, 0.0085 * size
        )
        parts.append(finger)
        joints.extend(finger_joints)

    fingers = trimesh.util.concatenate(parts)
    vertices = np.concatenate([palm.vertices, fingers.vertices])
    faces = np.concatenate([palm.faces, fingers.faces + len(palm.vertices)])
    return HandOccluder(vertices=vertices, faces=faces, num_palm_faces=len(palm.faces), joints=np.stack(joints))
