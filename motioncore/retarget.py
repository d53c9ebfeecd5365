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

World space. Imported characters are rarely Z-up in armature space (an FBX from Maya or
Mixamo is rotated 90 degrees about X with scale 0.01; a glTF hangs under a rotated empty). Given
the armature's world matrix, the transfer works in its *upright frame*: world axes and units,
turned about world Z so that the rig's rest pose faces canonical -Y. Pose bases do not change
under a rigid change of frame, so only locations are converted back (divided by the object's
scale). Bones the mapping puts in a limb but that hang elsewhere (IK-style feet parented to the
root) are moved onto the joint their chain gives them. On new motion, the hips are lowered or
raised once so that the planted feet meet the floor on the rig's own proportions.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .canonical import CANONICAL_JOINTS, CANONICAL_PARENTS, FEET, canonical_skeleton, heading_yaw
from .clip import Motion
from .features import PLANTED_HEIGHT, foot_contacts
from .rigs import SIDES, TORSO, Rig

ROOT_MODES = ("BONE", "ROOT", "IN_PLACE", "OBJECT")  # where the travel goes; see Retarget.to_rig


def world_frame(world: np.ndarray) -> tuple[np.ndarray, float]:
    """An object's (4, 4) world matrix -> (its rotation (3, 3), its scale). Refuses mirrored,
    sheared or unevenly scaled objects: their bones have no single rest frame to key against."""
    m = np.asarray(world, dtype=float)[:3, :3]
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError("the armature's world matrix is not a finite 4x4 matrix")
    u, sv, vt = np.linalg.svd(m)
    scale = float(np.cbrt(np.prod(sv)))
    if scale < 1e-9 or np.linalg.det(m) < 0:
        raise ValueError("the armature (or a parent) has zero or negative scale; fix its scale first")
    if sv.max() / sv.min() > 1.01:
        raise ValueError(f"the armature (or a parent) is scaled unevenly ({', '.join(f'{x:.3g}' for x in sv)}); "
                         "keys cannot follow it: give it one scale on all axes")
    return u @ vt, scale


def place(motion: Motion, xy: np.ndarray, yaw: float) -> Motion:
    """The motion turned about the vertical through its first root position, then moved, so
    that it starts with its root over `xy` facing `yaw` (0: canonical -Y)."""
    start = heading_yaw(motion.positions()[:1])[0]
    turn = rot.yaw_rotation(np.asarray(yaw - start))
    root = motion.root_position.copy()
    flat = root - [root[0, 0], root[0, 1], 0.0]
    root = rot.rotate(np.broadcast_to(turn, (len(root), 4)), flat) + [xy[0], xy[1], 0.0]
    q = motion.local_rotations.copy()
    q[:, 0] = rot.multiply(np.broadcast_to(turn, (len(q), 4)), q[:, 0])
    return Motion(motion.skeleton, motion.fps, root, q, motion.local_translations)


def mirrored(motion: Motion) -> Motion:
    """Left and right swapped about the character's own start: it starts where it started,
    facing the same way, and its path bends the other way (Motion.mirror reflects about the
    world's X = 0 plane, which is the character's left-right only when it starts there facing -Y)."""
    xy = motion.root_position[0, :2].copy()
    yaw = float(heading_yaw(motion.positions()[:1])[0])
    return place(place(motion, np.zeros(2), 0.0).mirror(), xy, yaw)


# -- the transfer --------------------------------------------------------------------------
_FRAME_BY = {"Hips": ("Spine", "UpperLeg_L", "UpperLeg_R"), "Chest": ("Neck", "UpperArm_L", "UpperArm_R")}


class Retarget:
    """Moves motion between the canonical skeleton and one rig under one mapping."""

    def __init__(self, rig: Rig, mapping: dict[str, str], drivers: dict[str, str] | None = None,
                 joint_heads: dict[str, np.ndarray] | None = None, switches: dict[str, float] | None = None,
                 rest_pose: dict[str, np.ndarray] | None = None, pivots: dict[str, np.ndarray] | None = None,
                 world: np.ndarray | None = None):
        """drivers: for control rigs whose constraints, not bone parents, say what turns what
        (a generated Rigify rig): mapped joint -> the mapped joint whose turn its bone follows
        (measured in Blender). joint_heads: where the canonical joints sit in the rig's rest,
        where that is not at the mapped bones' heads (controls with pivots elsewhere).
        switches: {data path: value} that every action written to the rig keys (FK on).
        rest_pose: mapped joint -> its bone's (4, 4) armature-space matrix as the rig evaluates
        it at rest, where constraints hold it away from its edit-mode rest. pivots: mapped joint
        -> the point its control turns the bones it drives about (measured; default its head).
        All of these are in armature space. world: the armature object's (4, 4) world matrix,
        parents included (default identity): up is world +Z, and the rest pose's facing is
        found and turned to canonical -Y."""
        self.switches = dict(switches or {})
        turn, self.unit = world_frame(np.eye(4) if world is None else world)
        world = np.eye(4) if world is None else np.asarray(world, dtype=float)
        self.world = world

        def point(p):  # armature space -> world, before the facing is known
            return world[:3, :3] @ np.asarray(p, dtype=float) + world[:3, 3]

        self.pivots = {j: point(p) for j, p in (pivots or {}).items()}
        unknown = sorted(set(mapping) - set(CANONICAL_JOINTS))
        if unknown:
            raise ValueError(f"the mapping names joints the canonical skeleton lacks: {unknown}")
        if "Hips" not in mapping:
            raise ValueError("the mapping must give a bone for Hips (it carries the root motion)")
        self.rig, self.skeleton = rig, canonical_skeleton()
        self.joint_bone = {j: rig.index(b) for j, b in mapping.items()}  # raises on a missing bone
        if len(set(self.joint_bone.values())) != len(self.joint_bone):
            raise ValueError("the mapping gives one bone to two joints")
        rest = rig.rest.copy()
        for j, m in (rest_pose or {}).items():
            rest[self.joint_bone[j]] = np.asarray(m, dtype=float)
        self.rest_rot = rot.from_matrix(turn @ rest[:, :3, :3])
        self.heads = rest[:, :3, 3] @ world[:3, :3].T + world[:3, 3]
        # Joint positions at rest: the mapped bones' heads, or where joint_heads puts them (also
        # joints no bone is keyed for, such as a control rig's spine: they still frame the hips).
        self.joint_pos = {j: self.heads[b] for j, b in self.joint_bone.items()}
        self.joint_pos.update({j: point(p) for j, p in (joint_heads or {}).items()})
        # Turn the world about Z so that the rest pose faces -Y: canonical motion then leaves
        # in the rig's own facing. The turn is about the world origin, so floors stay put.
        self.height = float(np.ptp([p[2] for p in self.joint_pos.values()])) or 1.0  # world units
        self.stands = self._rest_stands()
        self.facing = self._rest_facing() if self.stands else 0.0
        self.face = face = rot.yaw_rotation(np.asarray(-self.facing))  # world -> the upright frame
        self.rest_rot = rot.multiply(np.broadcast_to(face, self.rest_rot.shape), self.rest_rot)
        self.heads = rot.rotate(np.broadcast_to(face, (len(self.heads), 4)), self.heads)
        self.joint_pos = {j: rot.rotate(face, p) for j, p in self.joint_pos.items()}
        self.pivots = {j: rot.rotate(face, p) for j, p in self.pivots.items()}
        self.origin = rot.rotate(face, world[:3, 3])  # the object's origin in the upright frame
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
        self.detached = self._detached_bones() if self.drivers is None else {}
        # The root bone: the top of the hips' chain, where that is another bone (UE and Rigify
        # `root`, Auto-Rig Pro `c_traj`); to_rig(root="ROOT") puts the ground track there.
        top = self.hips_bone
        while rig.parents[top] >= 0:
            top = rig.parents[top]
        self.root_bone = top if top != self.hips_bone else None
        # Hung from its origin, as BVH files are: the root at the origin, the feet far below it.
        feet = [self.joint_pos[j][2] for j in FEET if j in self.joint_pos]
        self.hung = bool(feet and min(feet) < self.origin[2] - 0.25 * self.height \
            and abs(self.joint_pos["Hips"][2] - self.origin[2]) < 0.1 * self.height)
        # Where the canonical floor is on the rig, both ways: at its rest pose's feet (the rest is
        # the canonical T-pose), or, for a rig hung from its origin or whose rest does not stand,
        # at the origin's height. to_rig adds it, from_rig takes it off.
        self.base_lift = 0.0
        if self.hung and self.stands:  # its rest-pose feet stand on the origin's floor, as canonical ones do
            low = min((j for j in FEET if j in self.joint_pos), key=lambda j: self.joint_pos[j][2])
            self.base_lift = float(self.origin[2] - self.joint_pos[low][2]
                                   + self.scale * self.canon_rest[self.skeleton.index(low), 2])
        elif not self.stands:  # nothing to go by but the hips: at their canonical height over the origin
            self.base_lift = float(self.origin[2] + self.scale * self.canon_rest[0, 2] - self.joint_pos["Hips"][2])

    def bones_for(self, joints) -> list[int]:
        """The written bones that carry the named canonical joints: their own, twist bones and
        in-between torso bones toward them, and unmapped bones on the chain up to them (the
        hips' ancestors go with Hips)."""
        wanted = {self.skeleton.index(j) for j in joints}
        owner = dict(self.bone_joint)
        owner.update({b: t[1] for b, t in self.twist.items()})
        owner.update({b: t[1] for b, t in self.between.items()})
        for b, j in sorted(self.bone_joint.items(), key=lambda item: item[1]):  # canonical order: Hips first
            up = self.rig.parents[b]
            while up >= 0 and up not in owner:
                owner[up] = j
                up = self.rig.parents[up]
        return sorted(b for b in self.written if owner.get(b) in wanted)

    def _rest_stands(self) -> bool:
        """Whether the rest pose stands upright in the world (head above hips above feet): only
        then do its facing and its feet say anything (a BVH's zero pose may lie along an axis)."""
        z = {j: p[2] for j, p in self.joint_pos.items()}
        feet = [z[j] for j in ("Foot_L", "Foot_R") if j in z]
        return bool("Head" in z and z["Head"] > z["Hips"] + 0.15 * self.height
                    and feet and max(feet) < z["Hips"] - 0.25 * self.height)

    def _rest_facing(self) -> float:
        """The rest pose's facing about world Z (0: -Y, as canonical), from its hip line (or its
        shoulder line); 0 where neither is mapped or the line stands upright."""
        for left, right in (("UpperLeg_L", "UpperLeg_R"), ("UpperArm_L", "UpperArm_R")):
            if left in self.joint_pos and right in self.joint_pos:
                lateral = self.joint_pos[left] - self.joint_pos[right]
                if np.hypot(lateral[0], lateral[1]) > 0.5 * np.linalg.norm(lateral):
                    return float(np.arctan2(lateral[1], lateral[0]))
        return 0.0

    def _detached_bones(self) -> dict[int, int]:
        """Mapped bones that do not hang from the bone of their canonical parent (an IK-style
        foot parented to the root): bone -> the mapped bone whose turn carries it, in canonical
        order (a foot after the thigh that places its shin)."""
        out = {}
        for b in sorted(self.bone_joint, key=self.bone_joint.get):
            j = self.bone_joint[b]
            if j == 0:
                continue
            a = CANONICAL_PARENTS[j]
            while a > 0 and CANONICAL_JOINTS[a] not in self.joint_bone:
                a = CANONICAL_PARENTS[a]
            anchor = self.joint_bone.get(CANONICAL_JOINTS[a])
            up = self.rig.parents[b]
            while up >= 0 and up != anchor:
                up = self.rig.parents[up]
            if anchor is not None and up < 0:
                out[b] = anchor
        return out

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
            if frame and all(n in self.joint_pos for n in frame) and min(
                    np.linalg.norm(self.joint_pos[frame[0]] - self.joint_pos[name]),
                    np.linalg.norm(self.joint_pos[frame[1]] - self.joint_pos[frame[2]])) > 1e-6 * self.height:
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
    def to_rig(self, motion: Motion, root: str = "BONE", floor: str | float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """A canonical motion -> (basis rotations (T, B, 4) wxyz, locations (T, B, 3), armature
        units) for every bone of the rig; bones outside `written` are left at identity and zero.

        root: where the travel goes: BONE (the hips bone), ROOT (the rig's root bone,
        `root_bone`: it carries the smoothed ground track, the hips keep their height and
        sway), IN_PLACE or OBJECT (no horizontal travel on any bone; see `travel`).
        floor: None keeps the motion's heights as they are (the inverse of from_rig: what
        in-between and edit need); "REST" sets the hips once so that planted feet stand at their
        rest-pose height; a number is the floor's world height (planted feet as high above it
        as in the motion data, features.PLANTED_HEIGHT); "AUTO" is "REST", or the object origin's height for a rig hung from it or
        whose rest pose does not stand (BVH files)."""
        if not motion.skeleton.same_shape(self.skeleton):
            raise ValueError("to_rig takes a motion on the canonical skeleton")
        if root not in ROOT_MODES:
            raise ValueError(f"root motion must be one of {ROOT_MODES}, got {root!r}")
        if root == "ROOT" and self.root_bone is None:
            raise ValueError("the rig has no root bone above its hips: put the root motion on the hips, "
                             "the object, or keep it in place")
        G, P = motion.world()
        T, B = motion.num_frames, len(self.rig.names)
        basis = np.tile(rot.identity(), (T, B, 1))
        loc = np.zeros((T, B, 3))
        travel = self.scale * (P[:, 0] - self.canon_rest[0])  # world units, upright frame
        travel[:, 2] += self.base_lift
        if root != "BONE":
            travel[:, :2] = self._ground_track(travel, motion.fps) if root == "ROOT" else 0.0
        if self.drivers is not None:
            self._to_control_rig(G, basis, loc, travel)
        else:
            self._to_bones(G, basis, loc, travel)
        if root == "ROOT":
            track = np.zeros_like(travel)
            track[:, :2] = self.scale * (P[:, 0, :2] - self.canon_rest[0, :2]) - travel[:, :2]
            loc[:, self.root_bone] = rot.rotate(rot.conjugate(self.rest_rot[self.root_bone]), track)
        if floor is not None:
            self._stand(motion, P, basis, loc, floor)
        return basis, loc / self.unit

    def _ground_track(self, travel: np.ndarray, fps: float) -> np.ndarray:
        """(T, 2) what the hips keep of the travel when a root bone carries it: their sway about a
        ground track smoothed over about half a second (the ends extended along their own
        trend, so the track does not lag where the clip starts or stops)."""
        width = min(int(round(0.25 * fps)), len(travel) - 1)
        if width < 1:
            return np.zeros((len(travel), 2))
        pad = np.pad(travel[:, :2], ((width, width), (0, 0)), mode="reflect", reflect_type="odd")
        kernel = np.ones(2 * width + 1) / (2 * width + 1)
        track = np.stack([np.convolve(pad[:, i], kernel, mode="valid") for i in range(2)], axis=-1)
        return travel[:, :2] - track

    def _to_bones(self, G: np.ndarray, basis: np.ndarray, loc: np.ndarray, travel: np.ndarray) -> None:
        T, B = basis.shape[:2]
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
        basis[:] = rot.make_continuous(basis)
        # The hips bone carries the root: its ancestors stay at rest, so its head is h + R loc.
        h = self.hips_bone
        loc[:, h] = rot.rotate(rot.conjugate(R[h]), travel)
        self._attach_detached(basis, loc)

    def _attach_detached(self, basis: np.ndarray, loc: np.ndarray) -> None:
        """Move each detached bone (an IK-style foot) onto where its anchor's chain carries its
        joint, wherever the rest of the rig now is."""
        T = basis.shape[0]
        for b, anchor in self.detached.items():  # canonical order: each sees the ones above it moved
            W, H = self._pose(basis, loc)
            frame = rot.multiply(W[:, b], rot.conjugate(basis[:, b]))
            carried = rot.multiply(W[:, anchor], rot.conjugate(self.rest_rot[anchor]))
            target = H[:, anchor] + rot.rotate(carried, np.broadcast_to(self.heads[b] - self.heads[anchor], (T, 3)))
            loc[:, b] += rot.rotate(rot.conjugate(frame), target - H[:, b])

    def _stand(self, motion: Motion, P: np.ndarray, basis: np.ndarray, loc: np.ndarray, floor) -> None:
        """Raise or lower the whole body once (the hips, and feet that hang elsewhere follow) so
        that the planted feet meet the floor on the rig's own proportions: one offset for the
        clip, so the hips keep their own rise and fall."""
        if floor == "AUTO":  # a rig that does not stand at rest (or hangs from its origin): the origin's height
            floor = "REST" if self.stands and not self.hung else float(self.origin[2])
        if not (floor == "REST" or isinstance(floor, (int, float)) and np.isfinite(floor)):
            raise ValueError(f"floor must be None, 'AUTO', 'REST' or a height, got {floor!r}")
        planted = foot_contacts(P, motion.fps) > 0
        heights = self.joint_heights(motion, loc[:, self.hips_bone])
        gaps = []
        for side in SIDES:  # the lowest mapped joint of each foot: its toes, or its ankle
            joint = next((j for j in (f"Toes_{side}", f"Foot_{side}") if j in self.joint_bone), None)
            if joint is None:
                continue
            on = planted[:, FEET.index(joint)]
            j = self.skeleton.index(joint)
            target = self.joint_pos[joint][2] if floor == "REST" else \
                floor + self.scale * PLANTED_HEIGHT[joint.split("_")[0]]
            gaps.append(target - heights[on, j])
        gaps = np.concatenate(gaps) if gaps else np.zeros(0)
        if not len(gaps):  # no foot mapped, or never planted: leave the heights as they are
            return
        lift = np.broadcast_to([0.0, 0.0, float(np.median(gaps))], (len(P), 3))
        h = self.hips_bone
        loc[:, h] += rot.rotate(np.broadcast_to(rot.conjugate(self.rest_rot[h]), (len(P), 4)), lift)
        self._attach_detached(basis, loc)

    def joint_heights(self, motion: Motion, hips_loc: np.ndarray) -> np.ndarray:
        """(T, J) each canonical joint's height on the rig's proportions (upright frame, world
        units) with the hips bone at `hips_loc` (its loc channel, world units): each joint is
        carried from its nearest mapped ancestor by that joint's turn. Works the same on control
        rigs, whose bones' own parents say nothing of where their joints go."""
        G, _ = motion.world()
        T = motion.num_frames
        h = self.hips_bone
        pos = {0: self.joint_pos["Hips"] + rot.rotate(np.broadcast_to(self.rest_rot[h], (T, 4)), hips_loc)}
        out = np.zeros((T, len(CANONICAL_JOINTS)))
        out[:, 0] = pos[0][:, 2]
        anchor = {0: 0}
        for j in range(1, len(CANONICAL_JOINTS)):
            a = anchor[CANONICAL_PARENTS[j]]
            name = CANONICAL_JOINTS[j]
            if name not in self.joint_pos:
                anchor[j], pos[j] = a, pos[a]
            else:
                anchor[j] = j
                offset = self.joint_pos[name] - self.joint_pos[CANONICAL_JOINTS[a]]
                pos[j] = pos[a] + rot.rotate(self._turn(G, CANONICAL_JOINTS[a]), np.broadcast_to(offset, (T, 3)))
            out[:, j] = pos[j][:, 2]
        return out

    def _turn(self, G: np.ndarray, joint: str) -> np.ndarray:
        """(T, 4) how far a mapped joint's bones have turned from rest: G_j Q_j."""
        j = self.skeleton.index(joint)
        return rot.multiply(G[:, j], self.align[j])

    def _to_control_rig(self, G, basis, loc, travel):
        # A bone following driver d turns as d does, then by its own basis:
        #   W_b = (G_d Q_d) R_b basis_b  and  W_b = G_j Q_j R_b  give  basis_b.
        # A control turns about its pivot, its joint about itself: the control is shifted by
        # what that difference swings, so the joint stays where its driver (or the root
        # travel, for the hips) carries it.
        R = self.rest_rot
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
        basis[:] = rot.make_continuous(basis)

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
        loc = loc * self.unit
        moved = rot.rotate(np.broadcast_to(R[h], (T, 4)), loc[:, h])  # travel + arm - turn(arm)
        if self.root_bone is not None:  # a root bone's ground track carries the hips too
            moved = moved + rot.rotate(np.broadcast_to(R[self.root_bone], (T, 4)), loc[:, self.root_bone])
        travel = moved - arm + rot.rotate(turns["Hips"], np.broadcast_to(arm, (T, 3)))
        return G, self.joint_pos["Hips"] + travel

    def travel(self, motion: Motion) -> np.ndarray:
        """(T, 3) the root's horizontal travel in world axes and units (z = 0): what to_rig
        leaves out in place, for the object to carry instead."""
        out = self.scale * (motion.root_position - self.canon_rest[0])
        out[:, 2] = 0.0
        return rot.rotate(rot.conjugate(self.face), out)

    def moved(self, motion: Motion, worlds: np.ndarray, undo: bool = False) -> Motion:
        """The canonical motion as it looks when the armature object stands at worlds[t] (T, 4, 4)
        instead of the world matrix this retargeting was made with: each frame's root turned
        and moved as the object was. from_rig reads the armature's own space; an animated object
        (or parent) carries it about the world, and in-between and edit see the world motion.
        undo: the inverse, the world motion -> what the bones must do under the moving object."""
        worlds = np.asarray(worlds, dtype=float)
        if worlds.shape != (motion.num_frames, 4, 4):
            raise ValueError(f"need one (4, 4) world matrix per frame, got {worlds.shape}")
        face = rot.to_matrix(self.face)
        rel = worlds @ np.linalg.inv(self.world)  # (T, 4, 4): from where the object stood to where it stands
        if undo:
            rel = np.linalg.inv(rel)
        turn, scale = zip(*(world_frame(r) for r in rel))
        if max(abs(k - 1.0) for k in scale) > 1e-3:
            raise ValueError("the armature's scale is animated; keys cannot follow it")
        Ru = face @ np.array(turn) @ face.T  # in the upright frame
        tu = rel[:, :3, 3] @ face.T
        o = self.joint_pos["Hips"] + [0.0, 0.0, self.base_lift]
        c0 = self.canon_rest[0]
        root = c0 + np.einsum("tij,tj->ti", Ru, motion.root_position - c0) + \
            (np.einsum("tij,j->ti", Ru, o) + tu - o) / self.scale
        q = motion.local_rotations.copy()
        q[:, 0] = rot.multiply(rot.from_matrix(Ru), q[:, 0])
        return Motion(motion.skeleton, motion.fps, root, q, motion.local_translations)

    # -- rig -> canonical --------------------------------------------------------------------
    def pose(self, basis: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rig forward kinematics: basis (T, B, 4) and locations (T, B, 3, armature units) ->
        (rotations (T, B, 4), bone heads (T, B, 3)) in the upright frame (world units; the
        armature's own space when no world matrix was given and the rig faces -Y), composed as
        Blender composes pose bones."""
        return self._pose(basis, np.asarray(loc) * self.unit)

    def _pose(self, basis: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        root = self.canon_rest[0] + (hips - self.joint_pos["Hips"] - [0.0, 0.0, self.base_lift]) / self.scale
        return Motion(self.skeleton, fps, root, rot.make_continuous(local))
