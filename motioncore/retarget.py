"""Canonical motion <-> a rig's pose channels (pure numpy; the bpy side only reads rest
matrices and writes keys).

Rigs, presets and detection live in rigs.py.

For a mapped bone b of canonical joint j, the bone's posed world orientation is

    W_b = G_j  Q_j  R_b

with G_j the canonical joint's world rotation (canonical rest frames are world-aligned, so
G_j is identity at the T-pose), R_b the bone's rest orientation and Q_j the rest alignment:
the rotation that takes the rig's rest pose onto the canonical T-pose for that bone (an
A-posed arm is swung up; hips and chest are aligned by their whole frame, up bone and
left-right line). Bones the mapping leaves out between mapped ones are held at rest, and
Blender's composition  W_b = W_parent (R_parent^-1 R_b) basis_b  gives each basis. The root
travels with the hips, scaled by leg length. `from_rig` is the exact inverse for mapped joints.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .canonical import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_skeleton
from .clip import Motion
from .rigs import SIDES, TORSO, Rig


# -- the transfer --------------------------------------------------------------------------
_FRAME_BY = {"Hips": ("Spine", "UpperLeg_L", "UpperLeg_R"), "Chest": ("Neck", "UpperArm_L", "UpperArm_R")}


class Retarget:
    """Moves motion between the canonical skeleton and one rig under one mapping."""

    def __init__(self, rig: Rig, mapping: dict[str, str], drivers: dict[str, str] | None = None,
                 joint_heads: dict[str, np.ndarray] | None = None, switches: dict[str, float] | None = None,
                 rest_pose: dict[str, np.ndarray] | None = None, pivots: dict[str, np.ndarray] | None = None):
        """drivers: for control rigs whose constraints, not bone parents, say what turns what
        (a generated Rigify rig): mapped joint -> the mapped joint whose turn its bone follows
        (measured in Blender). joint_heads: where the canonical joints sit in the rig's rest,
        where that is not at the mapped bones' heads (controls with pivots elsewhere).
        switches: {data path: value} that every action written to the rig keys (FK on).
        rest_pose: mapped joint -> its bone's (4, 4) armature-space matrix as the rig evaluates
        it at rest, where constraints hold it away from its edit-mode rest. pivots: mapped joint
        -> the point its control turns the bones it drives about (measured; default its head)."""
        self.switches = dict(switches or {})
        self.pivots = {j: np.asarray(p, dtype=float) for j, p in (pivots or {}).items()}
        unknown = sorted(set(mapping) - set(CANONICAL_JOINTS))
        if unknown:
            raise ValueError(f"the mapping names joints the canonical skeleton lacks: {unknown}")
        if "Hips" not in mapping:
            raise ValueError("the mapping must give a bone for Hips (it carries the root motion)")
        self.rig, self.skeleton = rig, canonical_skeleton()
        self.joint_bone = {j: rig.index(b) for j, b in mapping.items()}  # raises on a missing bone
        if len(set(self.joint_bone.values())) != len(self.joint_bone):
            raise ValueError("the mapping gives one bone to two joints")
        self.rest_rot = rot.from_matrix(rig.rest[:, :3, :3])
        self.heads = rig.rest[:, :3, 3].copy()
        for j, m in (rest_pose or {}).items():
            b = self.joint_bone[j]
            self.rest_rot[b], self.heads[b] = rot.from_matrix(np.asarray(m)[:3, :3]), np.asarray(m)[:3, 3]
        # Joint positions at rest: the mapped bones' heads, or where joint_heads puts them (also
        # joints no bone is keyed for, such as a control rig's spine: they still frame the hips).
        self.joint_pos = {j: self.heads[b] for j, b in self.joint_bone.items()}
        self.joint_pos.update({j: np.asarray(p, dtype=float) for j, p in (joint_heads or {}).items()})
        self.drivers = None
        if drivers is not None:
            bad = {j: d for j, d in drivers.items() if j not in self.joint_bone or d not in self.joint_bone}
            if bad:
                raise ValueError(f"drivers must name mapped joints: {bad}")
            self.drivers = dict(drivers)
        rest = self.skeleton.rest_positions()
        self.canon_rest = rest - [0.0, 0.0, rest[:, 2].min()]  # standing on z = 0, as the data does
        self.align = self._alignment()
        self.scale = self._scale()
        self.hips_bone = self.joint_bone["Hips"]
        # Bones we write: mapped ones and the bones that link them to each other and the root.
        mapped = set(self.joint_bone.values())
        written = set()
        for b in mapped:
            while b >= 0 and b not in written:
                written.add(b)
                # A control rig's other bones are driven by its constraints: keys there are noise.
                b = rig.parents[b] if self.drivers is None else -1
        self.bone_joint = {b: self.skeleton.index(j) for j, b in self.joint_bone.items()}
        self.between = self._torso_between() if self.drivers is None else {}
        self.twist = self._twist_bones() if self.drivers is None else {}
        self.written = sorted(written | set(self.twist))

    def _twist_bones(self) -> dict[int, tuple[int, int, float]]:
        """Unmapped bones named *twist* under a mapped limb bone: bone -> (that bone, the
        mapped joint after it, share), so that a forearm twist bone turns with part of the
        wrist's twist instead of staying put (the candy-wrapper wrist). The twist spreads along
        the limb, so each bone takes the fraction of the way it sits from the limb's start to
        the next joint (two twist bones at a third and two thirds: 1/3 and 2/3); bones that all
        sit at the start, as some rigs place them, take half."""
        out = {}
        for b, name in enumerate(self.rig.names):
            a = self.rig.parents[b]
            if b in self.bone_joint or "twist" not in name.lower() or a not in self.bone_joint:
                continue
            after = [c for c in self.skeleton.children(self.bone_joint[a]) if self.skeleton.names[c] in self.joint_bone]
            if after:
                limb = self.joint_pos[self.skeleton.names[after[0]]] - self.heads[a]
                along = float(np.dot(self.heads[b] - self.heads[a], limb) / max(np.dot(limb, limb), 1e-12))
                out[b] = (a, after[0], float(np.clip(along, 0.0, 1.0)) if along > 0.05 else 0.5)
        return out

    def _torso_between(self) -> dict[int, tuple[int, int, float]]:
        """Unmapped bones inside the torso chain (a rig with more spine or neck bones than the
        canonical skeleton): bone -> (mapped bone above, joint of the mapped bone below, share).
        Each takes its share of the turn between the two, so the spine bends along its length
        instead of kinking at one joint."""
        out = {}
        for joint in TORSO[1:]:
            if joint not in self.joint_bone:
                continue
            path, b = [], self.rig.parents[self.joint_bone[joint]]
            while b >= 0 and b not in self.bone_joint:
                path.append(b)
                b = self.rig.parents[b]
            if b < 0 or not path:
                continue
            for i, e in enumerate(reversed(path)):  # from the top of the chain down
                out[e] = (b, self.skeleton.index(joint), (i + 1) / (len(path) + 1))
        return out

    def _dirs(self, joint: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(canonical, rig) rest direction from this joint to its first mapped child."""
        j = self.skeleton.index(joint)
        for c in self.skeleton.children(j):
            child = self.skeleton.names[c]
            if child in self.joint_bone:
                d_rig = self.joint_pos[child] - self.joint_pos[joint]
                if np.linalg.norm(d_rig) > 1e-9:
                    return self.canon_rest[c] - self.canon_rest[j], d_rig
        return None

    def _alignment(self) -> np.ndarray:
        """(J, 4) Q_j: the rotation taking the rig's rest onto the canonical T-pose, per joint."""
        q = np.tile(rot.identity(), (len(CANONICAL_JOINTS), 1))
        for j, name in enumerate(CANONICAL_JOINTS):
            if name not in self.joint_bone:
                continue
            frame = _FRAME_BY.get(name)
            if frame and all(n in self.joint_pos for n in frame):
                up, left, right = (self.skeleton.index(n) for n in frame)
                hb, ub, lb, rb = (self.joint_pos[n] for n in (name, *frame))
                canon = rot.frame_from(self.canon_rest[up] - self.canon_rest[j],
                                       self.canon_rest[left] - self.canon_rest[right])
                q[j] = rot.multiply(canon, rot.conjugate(rot.frame_from(ub - hb, lb - rb)))
                continue
            dirs = self._dirs(name)
            if dirs is not None:
                q[j] = rot.shortest_arc(dirs[1], dirs[0])
            elif j > 0:  # a leaf (hand, head, toes) keeps its pose relative to its parent bone
                q[j] = q[CANONICAL_PARENTS[j]]
        return q

    def _scale(self) -> float:
        """Rig units per canonical metre, from the leg (hip to ankle); 1 without legs."""
        for side in SIDES:
            chain = [f"UpperLeg_{side}", f"LowerLeg_{side}", f"Foot_{side}"]
            if all(n in self.joint_bone for n in chain):
                rig = sum(np.linalg.norm(self.joint_pos[b] - self.joint_pos[a])
                          for a, b in zip(chain, chain[1:]))
                idx = [self.skeleton.index(n) for n in chain]
                canon = sum(np.linalg.norm(self.canon_rest[b] - self.canon_rest[a]) for a, b in zip(idx, idx[1:]))
                return float(rig / canon)
        return 1.0

    # -- canonical -> rig --------------------------------------------------------------------
    def to_rig(self, motion: Motion, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A canonical motion -> (basis rotations (T, B, 4) wxyz, locations (T, B, 3)) for every
        bone of the rig; bones outside `written` are left at identity and zero."""
        if not motion.skeleton.same_shape(self.skeleton):
            raise ValueError("to_rig takes a motion on the canonical skeleton")
        G, P = motion.world()
        T, B = motion.num_frames, len(self.rig.names)
        basis = np.tile(rot.identity(), (T, B, 1))
        loc = np.zeros((T, B, 3))
        if self.drivers is not None:
            return self._to_control_rig(G, P, basis, loc, in_place)
        W = np.empty((T, B, 4))
        R = self.rest_rot
        for b in range(B):
            p = self.rig.parents[b]
            rel = R[b] if p < 0 else rot.multiply(rot.conjugate(R[p]), R[b])  # R_p^-1 R_b
            at_rest = rel if p < 0 else rot.multiply(W[:, p], rel)
            j = self.bone_joint.get(b)
            if j is None:
                if b in self.twist:  # a share of the next joint's twist about this limb's axis
                    a, k, share = self.twist[b]
                    turn = rot.multiply(rot.conjugate(self._turn(G, self.skeleton.names[self.bone_joint[a]])),
                                        self._turn(G, self.skeleton.names[k]))
                    axis = rot.rotate(R[a], np.array([0.0, 1.0, 0.0]))  # a Blender bone points along its Y
                    twist = np.concatenate([turn[:, :1], (turn[:, 1:] @ axis)[:, None] * axis], axis=-1)
                    twist = rot.normalize(np.where(np.linalg.norm(twist, axis=-1, keepdims=True) < 1e-9,
                                                   rot.identity(), twist))
                    part = rot.slerp(rot.identity((T,)), twist, share)
                    basis[:, b] = rot.multiply(rot.multiply(rot.conjugate(R[b]), part), R[b])
                    W[:, b] = rot.multiply(at_rest, basis[:, b])
                elif b in self.between:  # a share of the turn from the bone above to the one below
                    a, c, share = self.between[b]
                    turn = rot.multiply(rot.multiply(G[:, c], self.align[c]), rot.multiply(R[a], rot.conjugate(W[:, a])))
                    carried = rot.multiply(W[:, a], rot.multiply(rot.conjugate(R[a]), R[b]))
                    W[:, b] = rot.multiply(rot.slerp(rot.identity((T,)), rot.make_continuous(turn), share), carried)
                    basis[:, b] = rot.multiply(rot.conjugate(at_rest), W[:, b])
                else:
                    W[:, b] = at_rest
                continue
            W[:, b] = rot.multiply(rot.multiply(G[:, j], self.align[j]), R[b])
            basis[:, b] = rot.multiply(rot.conjugate(at_rest), W[:, b])
        basis = rot.make_continuous(basis)
        # The hips bone carries the root: its ancestors stay at rest, so its head is h + R loc.
        travel = self.scale * (P[:, 0] - self.canon_rest[0])
        if in_place:
            travel[:, :2] = 0.0
        h = self.hips_bone
        loc[:, h] = rot.rotate(rot.conjugate(R[h]), travel)
        return basis, loc

    def _turn(self, G: np.ndarray, joint: str) -> np.ndarray:
        """(T, 4) how far a mapped joint's bones have turned from rest: G_j Q_j."""
        j = self.skeleton.index(joint)
        return rot.multiply(G[:, j], self.align[j])

    def _to_control_rig(self, G, P, basis, loc, in_place):
        # A bone following driver d turns as d does, then by its own basis:
        #   W_b = (G_d Q_d) R_b basis_b  and  W_b = G_j Q_j R_b  give  basis_b.
        # A control turns about its pivot, its joint about itself: the control is shifted by
        # what that difference swings, so the joint stays where its driver (or the root
        # travel, for the hips) carries it.
        R = self.rest_rot
        travel = self.scale * (P[:, 0] - self.canon_rest[0])
        if in_place:
            travel[:, :2] = 0.0
        for joint, b in self.joint_bone.items():
            turned = self._turn(G, joint)
            d = self.drivers.get(joint)
            if d is not None:
                turned = rot.multiply(rot.conjugate(self._turn(G, d)), turned)
            basis[:, b] = rot.multiply(rot.multiply(rot.conjugate(R[b]), turned), R[b])
            arm = self._pivot_arm(joint)
            shift = travel if b == self.hips_bone else 0.0
            if b == self.hips_bone or np.linalg.norm(arm) > 1e-6:
                shift = shift + arm - rot.rotate(turned, np.broadcast_to(arm, (len(turned), 3)))
                loc[:, b] = rot.rotate(np.broadcast_to(rot.conjugate(R[b]), (len(turned), 4)), shift)
        return rot.make_continuous(basis), loc

    def _pivot_arm(self, joint: str) -> np.ndarray:
        """From where a joint's control turns things (its measured pivot, or its head) to the joint."""
        b = self.joint_bone[joint]
        return self.joint_pos[joint] - self.pivots.get(joint, self.heads[b])

    def _from_control_rig(self, basis: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of _to_control_rig -> (G (T, J, 4), root joint position (T, 3) in rig units)."""
        T = basis.shape[0]
        R = self.rest_rot
        G = np.empty((T, len(CANONICAL_JOINTS), 4))
        turns: dict[str, np.ndarray] = {}
        for j, name in enumerate(CANONICAL_JOINTS):  # drivers come before the joints they drive
            b = self.joint_bone.get(name)
            if b is None:
                G[:, j] = G[:, CANONICAL_PARENTS[j]]
                continue
            turned = rot.multiply(rot.multiply(R[b], basis[:, b]), rot.conjugate(R[b]))
            d = self.drivers.get(name)
            if d is not None:
                turned = rot.multiply(turns[d], turned)
            turns[name] = turned
            G[:, j] = rot.multiply(turned, rot.conjugate(self.align[j]))
        h, arm = self.hips_bone, self._pivot_arm("Hips")
        moved = rot.rotate(np.broadcast_to(R[h], (T, 4)), loc[:, h])  # travel + arm - turn(arm)
        travel = moved - arm + rot.rotate(turns["Hips"], np.broadcast_to(arm, (T, 3)))
        return G, self.joint_pos["Hips"] + travel

    def travel(self, motion: Motion) -> np.ndarray:
        """(T, 3) the root's horizontal travel in armature space (z = 0): what to_rig leaves out
        in place, for the object to carry instead."""
        out = self.scale * (motion.root_position - self.canon_rest[0])
        out[:, 2] = 0.0
        return out

    # -- rig -> canonical --------------------------------------------------------------------
    def pose(self, basis: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rig forward kinematics: (T, B, 4), (T, B, 3) -> (world rotations (T, B, 4), bone heads
        (T, B, 3)) in armature space, composed as Blender composes pose bones."""
        T, B = basis.shape[:2]
        R, h = self.rest_rot, self.heads
        W, H = np.empty((T, B, 4)), np.empty((T, B, 3))
        for b in range(B):
            p = self.rig.parents[b]
            if p < 0:
                frame = np.broadcast_to(R[b], (T, 4))
                H[:, b] = h[b] + rot.rotate(frame, loc[:, b])
            else:
                parent_frame = rot.multiply(W[:, p], rot.conjugate(R[p]))  # posed parent x rest^-1
                frame = rot.multiply(parent_frame, R[b])
                H[:, b] = H[:, p] + rot.rotate(parent_frame, np.broadcast_to(h[b] - h[p], (T, 3))) \
                    + rot.rotate(frame, loc[:, b])
            W[:, b] = rot.multiply(frame, basis[:, b])
        return W, H

    def split_keys(self, by_bone: dict[str, set[float]]) -> tuple[list[float], dict[float, list[str]]]:
        """The user's key frames per rig bone -> (frames where every keyed joint has a key,
        {any other frame: the canonical joints keyed there}). Joints whose bones hold no keys at
        all do not count (they keep whatever the action gives them); unmapped bones neither."""
        keyed = {j: by_bone[self.rig.names[b]] for j, b in self.joint_bone.items()
                 if by_bone.get(self.rig.names[b])}
        frames = sorted(set().union(*keyed.values()))
        full = [f for f in frames if all(f in fs for fs in keyed.values())]
        partial = {f: [j for j in CANONICAL_JOINTS if f in keyed.get(j, ())] for f in frames if f not in full}
        return full, partial

    def from_rig(self, basis: np.ndarray, loc: np.ndarray, fps: float) -> Motion:
        """Pose channels of every bone -> the canonical motion they show. Canonical joints the
        mapping leaves out follow their parent."""
        if self.drivers is not None:
            G, hips = self._from_control_rig(basis, loc)
        else:
            W, H = self.pose(basis, loc)
            hips = H[:, self.hips_bone]
            G = np.empty((basis.shape[0], len(CANONICAL_JOINTS), 4))
            for j, name in enumerate(CANONICAL_JOINTS):
                b = self.joint_bone.get(name)
                if b is None:
                    G[:, j] = G[:, CANONICAL_PARENTS[j]]
                else:
                    G[:, j] = rot.multiply(rot.multiply(W[:, b], rot.conjugate(self.rest_rot[b])),
                                           rot.conjugate(self.align[j]))
        local = np.empty_like(G)
        local[:, 0] = G[:, 0]
        for j in range(1, len(CANONICAL_JOINTS)):
            local[:, j] = rot.multiply(rot.conjugate(G[:, CANONICAL_PARENTS[j]]), G[:, j])
        root = self.canon_rest[0] + (hips - self.joint_pos["Hips"]) / self.scale
        return Motion(self.skeleton, fps, root, rot.make_continuous(local))
