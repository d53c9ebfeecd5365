"""`bench inbetween` against the LaFAN1 benchmark's own computation, written out again here
array by array as its `extract.py` and `benchmarks.py` do it (windows cut from whole clips,
X-Y centred by the window mean, faced at the last context frame from the hips' forward axis,
per-coordinate statistics of the training windows), with none of motioncore's windowing, FK or
slerp, on real clips."""
import numpy as np
import pytest

from conftest import DATA
from motioncore import canonical, read_bvh

N_PAST, N_FUTURE = 10, 10


# -- quaternions (w, x, y, z), as the benchmark's utils.py has them ---------------------------
def qmul(a, b):
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def qrot(q, v):
    v4 = np.concatenate([np.zeros(v.shape[:-1] + (1,)), v], axis=-1)
    conj = q * np.array([1, -1, -1, -1])
    return qmul(qmul(q, v4), conj)[..., 1:]


def fk(lq, root, offsets, parents):
    """(B, T, J, 4) local quats, (B, T, 3) root -> global quats and positions."""
    gq, gp = [lq[..., 0, :]], [root]
    for j in range(1, len(parents)):
        p = parents[j]
        gp.append(qrot(gq[p], np.broadcast_to(offsets[j], root.shape)) + gp[p])
        gq.append(qmul(gq[p], lq[..., j, :]))
    return np.stack(gq, axis=-2), np.stack(gp, axis=-2)


def slerp(a, b, t):
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    theta = np.arccos(np.clip(np.abs(dot), -1, 1))
    s = np.sin(theta)
    wa = np.where(s < 1e-6, 1 - t, np.sin((1 - t) * theta) / np.maximum(s, 1e-12))
    wb = np.where(s < 1e-6, t, np.sin(t * theta) / np.maximum(s, 1e-12))
    q = wa * a + wb * b
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


# -- extract.get_lafan1_set and get_train_stats -----------------------------------------------
def lafan1_set(motions, window, offset, sk):
    Q, X = [], []
    for m in motions:
        i = 0
        while i + window < m.num_frames:
            Q.append(m.local_rotations[i: i + window])
            X.append(m.root_position[i: i + window])
            i += offset
    Q, X = np.array(Q), np.array(X)
    X[:, :, :2] -= X[:, :, :2].mean(axis=1, keepdims=True)  # sequences around XY = 0 (Z is up here)
    # Unify facing on the last seed frame from the hips' forward axis, as rotate_at_frame does.
    lateral = sk.offsets[sk.index("UpperLeg_L")] - sk.offsets[sk.index("UpperLeg_R")]
    rest_forward = np.cross(lateral, [0.0, 0.0, 1.0])
    forward = qrot(Q[:, N_PAST - 1, 0], np.broadcast_to(rest_forward, (len(Q), 3)))
    yaw = np.arctan2(forward[:, 0], -forward[:, 1])  # the angle from -Y to the forward axis
    unturn = np.stack([np.cos(-yaw / 2), 0 * yaw, 0 * yaw, np.sin(-yaw / 2)], axis=-1)[:, None]
    Q = Q.copy()
    Q[:, :, 0] = qmul(np.broadcast_to(unturn, Q[:, :, 0].shape), Q[:, :, 0])
    X = qrot(np.broadcast_to(unturn, X.shape[:2] + (4,)), X)
    return Q, X


def train_stats(motions, sk):
    Q, X = lafan1_set(motions, 50, 20, sk)
    _, gp = fk(Q, X, sk.offsets, sk.parents)
    flat = gp.reshape(gp.shape[0], gp.shape[1], -1).transpose(0, 2, 1)
    return flat.mean(axis=(0, 2), keepdims=True), flat.std(axis=(0, 2), keepdims=True)


# -- benchmarks.benchmark_interpolation ------------------------------------------------------
def interpolation_l2p(Q, X, x_mean, x_std, sk, n_trans):
    w = n_trans + N_PAST + N_FUTURE
    q, x = Q[:, :w], X[:, :w]
    J = len(sk.parents)

    def normalised(lq, root):
        _, gp = fk(lq, root, sk.offsets, sk.parents)
        return (gp.reshape(gp.shape[0], gp.shape[1], J * 3).transpose(0, 2, 1) - x_mean) / x_std

    gt = normalised(q[:, N_PAST:-N_FUTURE], x[:, N_PAST:-N_FUTURE])
    t = np.linspace(0.0, 1.0, n_trans + 2)[1:-1]
    start_q, end_q = q[:, N_PAST - 1][:, None], q[:, -N_FUTURE][:, None]
    inter_q = slerp(np.broadcast_to(start_q, (len(q), n_trans) + start_q.shape[2:]),
                    np.broadcast_to(end_q, (len(q), n_trans) + end_q.shape[2:]), t[None, :, None, None])
    start_r, end_r = x[:, N_PAST - 1][:, None], x[:, -N_FUTURE][:, None]
    inter_r = start_r + t[None, :, None] * (end_r - start_r)
    zero_q = np.broadcast_to(start_q, inter_q.shape)
    zero_r = np.broadcast_to(start_r, inter_r.shape)
    l2p = lambda pred: float(np.mean(np.sqrt(np.sum((normalised(*pred) - gt) ** 2, axis=1))))  # noqa: E731
    return l2p((inter_q, inter_r)), l2p((zero_q, zero_r))


@pytest.fixture(scope="module")
def clips():
    return [canonical.to_canonical(read_bvh(p)) for p in sorted(DATA.glob("*/*.bvh"))]


def test_bench_inbetween_matches_the_benchmarks_own_computation(clips):
    from backend.evaluation import inbetween as bench

    sk = canonical.canonical_skeleton()
    train, test = clips[::2], clips[1::2]
    x_mean, x_std = train_stats(train, sk)
    Q, X = lafan1_set(test, bench.WINDOW, bench.OFFSET, sk)
    assert len(Q) >= 5

    stats = bench.train_stats(("", m) for m in train)
    wins = bench.windows(("", m) for m in test)
    assert len(wins) == len(Q)
    np.testing.assert_allclose(stats[0].reshape(1, -1, 1), x_mean, atol=1e-3)
    np.testing.assert_allclose(stats[1].reshape(1, -1, 1), x_std, rtol=0.05)

    result = bench.run(wins, None, stats)
    for n in bench.GAPS:
        interp, zero = interpolation_l2p(Q, X, x_mean, x_std, sk, n)
        assert result["interpolation"]["L2P"][str(n)] == pytest.approx(interp, rel=0.05), n
        assert result["zero_velocity"]["L2P"][str(n)] == pytest.approx(zero, rel=0.05), n
    # Holding still is the worse guess, and more so on longer gaps.
    assert result["zero_velocity"]["L2P"]["45"] > result["interpolation"]["L2P"]["45"]


def test_a_clip_of_exactly_one_window_gives_none_as_the_benchmark_cuts_them(clips):
    from backend.evaluation import inbetween as bench

    m = clips[0]
    assert bench.windows([("", m.trim(0, bench.WINDOW))]) == []
    assert len(bench.windows([("", m.trim(0, bench.WINDOW + 1))])) == 1
    with pytest.raises(ValueError, match="more than 50 frames"):
        bench.train_stats([("", m.trim(0, 50))])
