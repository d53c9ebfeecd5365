import numpy as np
import pytest

from motioncore import rotations as rot

ORDERS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]


@pytest.fixture
def quats():
    q = rot.normalize(np.random.default_rng(0).normal(size=(500, 4)))
    return q


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@pytest.mark.parametrize("order", ORDERS)
def test_euler_matches_matrix_product_and_inverts(order, quats):
    angles = np.array([0.3, -1.1, 2.0])
    mats = {"X": _rx, "Y": _ry, "Z": _rz}
    expected = mats[order[0]](angles[0]) @ mats[order[1]](angles[1]) @ mats[order[2]](angles[2])
    assert np.allclose(rot.to_matrix(rot.from_euler(angles, order)), expected, atol=1e-12)
    back = rot.from_euler(rot.to_euler(quats, order), order)
    assert rot.angle_between(back, quats).max() < 1e-6


@pytest.mark.parametrize("order", ORDERS)
def test_euler_gimbal_lock(order):
    q = rot.from_euler(np.array([[0.4, np.pi / 2, -0.3], [1.0, -np.pi / 2, 0.2]]), order)
    back = rot.from_euler(rot.to_euler(q, order), order)
    assert rot.angle_between(back, q).max() < 1e-6


def test_matrix_6d_axis_angle_round_trips(quats):
    assert rot.angle_between(rot.from_matrix(rot.to_matrix(quats)), quats).max() < 1e-6
    assert rot.angle_between(rot.from_6d(rot.to_6d(quats)), quats).max() < 1e-6
    assert rot.angle_between(rot.from_axis_angle(rot.to_axis_angle(quats)), quats).max() < 1e-6
    m = rot.to_matrix(quats)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)


def test_from_matrix_near_180_degrees():
    q = rot.from_axis_angle(np.array([[np.pi - 1e-9, 0, 0], [0, 0, np.pi]]))
    assert rot.angle_between(rot.from_matrix(rot.to_matrix(q)), q).max() < 1e-6


def test_rotate_matches_matrix(quats):
    v = np.random.default_rng(1).normal(size=(500, 3))
    assert np.allclose(rot.rotate(quats, v), np.einsum("nij,nj->ni", rot.to_matrix(quats), v))


def test_multiply_composes_like_matrices(quats):
    a, b = quats[:250], quats[250:]
    assert np.allclose(rot.to_matrix(rot.multiply(a, b)), rot.to_matrix(a) @ rot.to_matrix(b))


def test_6d_of_noisy_input_is_a_rotation():
    d6 = np.random.default_rng(2).normal(size=(100, 6))
    m = rot.matrix_from_6d(d6)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-10)
    assert np.allclose(np.linalg.det(m), 1.0)


def test_slerp_endpoints_midpoint_and_short_arc():
    a = rot.identity()
    b = rot.from_axis_angle(np.array([0, 0, 1.0]))
    assert np.allclose(rot.slerp(a, b, 0.0), a)
    assert np.allclose(rot.slerp(a, b, 1.0), b)
    mid = rot.slerp(a, b, 0.5)
    assert np.allclose(rot.to_axis_angle(mid), [0, 0, 0.5])
    # -b is the same rotation: slerp must still take the short way.
    assert np.allclose(rot.to_axis_angle(rot.slerp(a, -b, 0.5)), [0, 0, 0.5])


def test_make_continuous_removes_sign_flips(quats):
    seq = rot.slerp(rot.identity(), rot.from_axis_angle(np.array([0, 3.0, 0])), np.linspace(0, 1, 50))
    flipped = seq * np.where(np.arange(50) % 3 == 0, -1.0, 1.0)[:, None]
    cont = rot.make_continuous(flipped)
    assert np.all(np.sum(cont[1:] * cont[:-1], axis=-1) > 0)
    assert rot.angle_between(cont, seq).max() < 1e-6


def test_bad_euler_order():
    with pytest.raises(ValueError, match="permutation of XYZ"):
        rot.from_euler(np.zeros(3), "XXY")
