"""Rotation conversions, vectorised over any leading batch shape.

Conventions used everywhere in DynamicPose:
- Quaternions are (..., 4) in (w, x, y, z) order, unit length, Hamilton product.
- Matrices are (..., 3, 3) and act on column vectors: v_world = R @ v_local.
- 6D rotations are the first two *columns* of the matrix, (..., 6) = [col0, col1]
  (Zhou et al. 2019), the continuous representation the model learns.
- Axis-angle is (..., 3): unit axis times angle in radians.
- Euler angles are (..., 3) in radians, in the order of an `order` string such as "ZXY",
  meaning R = Rz(a0) @ Rx(a1) @ Ry(a2): intrinsic rotations applied in the written order,
  which is how BVH channel lists read.
"""
from __future__ import annotations

import numpy as np

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


def normalize(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 4) unit quaternions."""
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    """Identity quaternions of the given batch shape, (*shape, 4)."""
    q = np.zeros((*shape, 4))
    q[..., 0] = 1.0
    return q


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a), broadcasting (..., 4)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternions, (..., 4)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross moves axes about on every call: 3x slower on the few-frame arrays FK loops over
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz -> (..., 3, 3)."""
    q = normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)


def from_matrix(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) wxyz with w >= 0.

    Uses the branch with the largest diagonal term for every element, so it stays
    accurate for rotations near 180 degrees.
    """
    m = np.asarray(m, dtype=float)
    batch = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=-1)
    case = np.argmax(cand, axis=-1)
    q = np.empty((m.shape[0], 4))
    for c in range(4):
        sel = case == c
        if not np.any(sel):
            continue
        r = m[sel]
        if c == 0:
            s = np.sqrt(1.0 + tr[sel]) * 2
            q[sel] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s,
                               (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s], -1)
        elif c == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            q[sel] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s,
                               (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s], -1)
        elif c == 2:
            s = np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2
            q[sel] = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                               0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s], -1)
        else:
            s = np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2
            q[sel] = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                               (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], -1)
    q = normalize(q)
    q[q[:, 0] < 0] *= -1
    return q.reshape(*batch, 4)


def from_axis_angle(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis * angle (radians) -> (..., 4) wxyz."""
    aa = np.asarray(aa, dtype=float)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(x/2)/x -> 1/2 as x -> 0; the series keeps tiny angles exact.
    small = angle < 1e-8
    scale = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz -> (..., 3) axis * angle, angle in [0, pi]."""
    q = normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    small = sin_half < 1e-8
    scale = np.where(small, 2.0 + angle**2 / 12.0, angle / np.where(small, 1.0, sin_half))
    return q[..., 1:] * scale


def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) for rotations by `angle` (radians, any shape) about 'X', 'Y' or 'Z'."""
    angle = np.asarray(angle, dtype=float)
    q = np.zeros((*angle.shape, 4))
    q[..., 0] = np.cos(angle / 2)
    q[..., 1 + _AXIS_INDEX[axis]] = np.sin(angle / 2)
    return q


def _check_order(order: str) -> str:
    order = order.upper()
    if len(order) != 3 or sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"Euler order must be a permutation of XYZ, got {order!r}")
    return order


def from_euler(angles: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) radians in `order` (R = R_order[0] R_order[1] R_order[2]) -> (..., 4) wxyz."""
    order = _check_order(order)
    angles = np.asarray(angles, dtype=float)
    q = axis_rotation(order[0], angles[..., 0])
    q = multiply(q, axis_rotation(order[1], angles[..., 1]))
    return multiply(q, axis_rotation(order[2], angles[..., 2]))


def to_euler(q: np.ndarray, order: str) -> np.ndarray:
    """(..., 4) wxyz -> (..., 3) radians such that from_euler(result, order) == q.

    For R = Ri(a) Rj(b) Rk(c) with (i, j, k) a permutation, R[i, k] = s * sin(b) where s is
    the permutation's parity; the other two angles follow from the row and column of k, i.
    """
    order = _check_order(order)
    i, j, k = (_AXIS_INDEX[a] for a in order)
    parity = 1.0 if (j - i) % 3 == 1 else -1.0
    m = to_matrix(q)
    sin_b = np.clip(parity * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sin_b)
    a = np.arctan2(-parity * m[..., j, k], m[..., k, k])
    c = np.arctan2(-parity * m[..., i, j], m[..., i, i])
    # Gimbal lock: a and c rotate about the same axis; put it all on a.
    locked = np.abs(sin_b) > 1 - 1e-12
    if np.any(locked):
        a_lock = np.arctan2(parity * m[..., k, j], m[..., j, j])
        a = np.where(locked, a_lock, a)
        c = np.where(locked, 0.0, c)
    return np.stack([a, b, c], axis=-1)


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns, column-major."""
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def matrix_from_6d(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; any non-degenerate input gives a rotation."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.linalg.norm(a2, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def to_6d(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz -> (..., 6)."""
    return matrix_to_6d(to_matrix(q))


def from_6d(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 4) wxyz."""
    return from_matrix(matrix_from_6d(d6))


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation along the shorter arc; a, b (..., 4), t broadcast to (...)."""
    t = np.asarray(t, dtype=float)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6  # nearly parallel: linear interpolation is exact enough
    safe = np.where(near, 1.0, sin_theta)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return normalize(wa * a + wb * b)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` (time) so consecutive quaternions have a positive dot product.

    q and -q are the same rotation, but interpolating keys (or an fcurve) across a sign flip
    swings the long way round.
    """
    q = np.moveaxis(np.array(q, dtype=float), axis, 0)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
    q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def yaw_rotation(yaw: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) turning by `yaw` radians about the up axis (+Z)."""
    return axis_rotation("Z", yaw)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle in radians between rotations a and b, (..., 4) -> (...)."""
    dot = np.abs(np.sum(normalize(a) * normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions of the smallest rotations taking vectors a onto the directions of
    vectors b ((..., 3) each, broadcast)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(s, dot)
    q = from_axis_angle(axis / np.where(s < 1e-12, 1.0, s) * angle)
    parallel = s[..., 0] < 1e-12
    if np.any(parallel):  # same direction: no turn; opposite: half a turn about any perpendicular
        same = parallel & (dot[..., 0] > 0)
        q[same] = identity()
        flip = parallel & ~same
        if np.any(flip):
            side = np.where(np.abs(a[flip][:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
            perp = np.cross(a[flip], side)
            q[flip] = from_axis_angle(perp / np.linalg.norm(perp, axis=-1, keepdims=True) * np.pi)
    return q


def frame_from(up: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Rotations (..., 4) wxyz of the frames whose z is `up` and whose x is `lateral` made
    orthogonal to it ((..., 3) each): the frame of a hips or chest from its up bone and its
    left-right line."""
    up, lateral = np.asarray(up, dtype=float), np.asarray(lateral, dtype=float)
    z = up / np.linalg.norm(up, axis=-1, keepdims=True)
    x = lateral - np.sum(lateral * z, axis=-1, keepdims=True) * z
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return from_matrix(np.stack([x, np.cross(z, x), z], axis=-1))


def from_blender_euler(xyz: np.ndarray, mode: str) -> np.ndarray:
    """Blender Euler channels (..., 3), always stored as (x, y, z), in rotation mode `mode`
    ('XYZ' applies X first: R = Rz Ry Rx) -> (..., 4) wxyz."""
    order = _check_order(mode)[::-1]
    xyz = np.asarray(xyz, dtype=float)
    return from_euler(np.stack([xyz[..., _AXIS_INDEX[a]] for a in order], axis=-1), order)


def to_blender_euler(q: np.ndarray, mode: str) -> np.ndarray:
    """Inverse of from_blender_euler: (..., 4) wxyz -> (..., 3) (x, y, z) channels."""
    order = _check_order(mode)[::-1]
    angles = to_euler(q, order)
    out = np.empty_like(angles)
    for k, a in enumerate(order):
        out[..., _AXIS_INDEX[a]] = angles[..., k]
    return out
