# SPDX-License-Identifier: GPL-3.0-or-later
"""What the add-on remembers: per-scene settings of each task, the mapping rows on each armature,
and where the backend runs (the add-on's preferences). Limits come from motioncore.limits."""
from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .motioncore.limits import DEFAULT_ADAPTER, MAX_FRAMES, MAX_SECONDS, MAX_TEXT, MAX_TRAIN_STEPS, MAX_VARIATIONS


def _is_armature(self, obj) -> bool:
    return obj.type == "ARMATURE"


class DynamicPoseBoneMap(bpy.types.PropertyGroup):
    """One row of a custom mapping: a canonical joint and the rig bone that plays it."""

    joint: StringProperty(name="Joint")
    bone: StringProperty(name="Bone", description="Rig bone for this joint (empty: none, held at rest)")


class DynamicPoseTrainClip(bpy.types.PropertyGroup):
    """One take to teach an adapter: an action, the rig it plays on, and what it shows."""

    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                              description="The rig the action animates (read through its retargeting)")
    action: PointerProperty(name="Action", type=bpy.types.Action)
    caption: StringProperty(name="Caption", maxlen=MAX_TEXT,
                            description="What the take shows, in plain words (how you will prompt for it)")


class DynamicPoseTimelineRow(bpy.types.PropertyGroup):
    """One row of a prompt timeline: what happens, for how long (each row carries on from the last)."""

    prompt: StringProperty(name="Prompt", default="a person walks forward", maxlen=MAX_TEXT,
                           description="What happens in this part")
    seconds: FloatProperty(name="Seconds", default=2.0, min=0.5, max=MAX_SECONDS, precision=1,
                           description="How long this part lasts")


class DynamicPoseTake(bpy.types.PropertyGroup):
    """One take of the last Generate (or version of In-between, Edit, ...), to keep or reject."""

    action: PointerProperty(name="Action", type=bpy.types.Action)
    label: StringProperty(name="Take")


class DynamicPoseAdapterItem(bpy.types.PropertyGroup):
    """One of the backend's adapters, as it last listed them."""

    name: StringProperty(name="Name")
    clips: IntProperty(name="Clips")
    steps: IntProperty(name="Steps")
    created: StringProperty(name="When")
    note: StringProperty(name="Note")


class DynamicPoseSettings(bpy.types.PropertyGroup):
    # Generate
    prompt: StringProperty(name="Prompt", default="a person walks forward",
                           description="What the character does, in plain words; \"then\" chains actions in "
                                       "order (\"a man walks forward, then bows\")")
    length_unit: EnumProperty(name="Length in", items=[
        ("AUTO", "Auto", "As long as the prompt suggests (a raised hand is short, a walk long)"),
        ("SECONDS", "Seconds", ""), ("FRAMES", "Frames", "")], default="SECONDS")
    seconds: FloatProperty(name="Seconds", default=4.0, min=0.1, max=MAX_SECONDS, precision=1)
    frames: IntProperty(name="Frames", default=120, min=2, max=MAX_FRAMES)
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same prompt: same motion")
    variations: IntProperty(name="Variations", default=1, min=1, max=MAX_VARIATIONS,
                            description="How many different takes to make (one action each)")
    as_strip: BoolProperty(name="As NLA strip", default=False,
                           description="Put each take on a new NLA track as a strip (to sequence, blend and layer "
                                       "takes) and keep the armature's action as it is")
    sparse_keys: BoolProperty(name="Editable keys", default=False,
                              description="Keys only where the motion needs them (Bezier curves through them replay it "
                                          "within the error below) instead of one on every frame")
    key_error_mm: FloatProperty(name="Within", default=5.0, min=0.1, max=100.0, precision=1, subtype="NONE",
                                description="How far (mm) any joint may leave the generated motion with editable keys")
    takes: CollectionProperty(type=DynamicPoseTake)
    takes_index: IntProperty(name="Take", default=0)
    takes_armature: PointerProperty(name="Takes of", type=bpy.types.Object, poll=_is_armature)
    takes_previous: PointerProperty(name="Action before", type=bpy.types.Action,
                                    description="The action the rig had before these takes (never removed)")
    timeline: CollectionProperty(type=DynamicPoseTimelineRow)
    timeline_index: IntProperty(name="Row", default=0)
    lock_feet: BoolProperty(name="Lock feet", default=True,
                            description="Hold each planted foot where it lands (the legs turned by IK, "
                                        "blended in and out), so generated feet do not slide")
    target: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                            description="Rig to put the motion on (empty: the active armature)")
    start_frame: IntProperty(name="Start frame", default=1)
    root_motion: EnumProperty(name="Root motion", default="BONE", items=(
        ("BONE", "Hips", "The hips bone travels"),
        ("ROOT", "Root bone", "The rig's root bone (UE and Rigify root, Auto-Rig Pro c_traj) carries the ground "
                              "track; the hips keep their own height and sway"),
        ("IN_PLACE", "In place", "Keep the hips over the rig's rest spot"),
        ("OBJECT", "Object", "The armature object travels (Mixamo-style); the hips stay over it")))
    start_facing: EnumProperty(name="Start", default="CHARACTER", items=(
        ("CHARACTER", "Where it stands", "Start where the character stands and faces at the start frame"),
        ("REST", "Rest facing", "Start where the character stands, facing the way its rest pose faces")))
    floor: EnumProperty(name="Floor", default="AUTO", items=(
        ("AUTO", "Rest pose", "Planted feet stand where the rest pose's feet are (a BVH hung from its origin: "
                              "on the origin's height)"),
        ("HEIGHT", "Height", "Planted feet stand on a floor at the height below")))
    floor_height: FloatProperty(name="Floor height", default=0.0, unit="LENGTH",
                                description="World height of the floor the feet stand on")
    retarget_source: PointerProperty(name="Source", type=bpy.types.Object, poll=_is_armature,
                                     description="Armature whose actions Retarget actions copies onto the active one")
    # In-between
    inbetween_prompt: StringProperty(name="Prompt", default="",
                                     description="Optional: how to move between the keys")
    # Edit
    edit_prompt: StringProperty(name="Prompt", default="a person jumps")
    edit_use_preview: BoolProperty(name="Use preview range", default=False,
                                   description="Regenerate the scene's preview range instead of the frames below")
    edit_start: IntProperty(name="From", default=1)
    edit_end: IntProperty(name="To", default=30)
    edit_context_seconds: IntProperty(name="Context", default=2, min=0, max=8,
                                      description="Seconds on each side of the range the model sees (and keeps)")
    edit_part: EnumProperty(name="Part", default="BODY", items=(
        ("BODY", "Whole body", "Regenerate every bone in the range"),
        ("UPPER", "Upper body", "Regenerate the spine, head and arms; the legs and the hips' travel stay as they are"),
        ("LEGS", "Legs", "Regenerate the hips' travel and the legs; the upper body's own keys stay as they are")),
        description="What Edit regenerates; the rest of the body keeps its keys exactly")
    # Extend
    extend_prompt: StringProperty(name="Prompt", default="", maxlen=MAX_TEXT,
                                  description="What happens next (empty: it carries on as it goes)")
    extend_seconds: FloatProperty(name="Seconds", default=2.0, min=0.1, max=MAX_SECONDS - 0.5, precision=1,
                                  description="How much longer the action becomes")
    loop_seconds: FloatProperty(name="Blend", default=0.5, min=0.1, max=4.0, precision=1,
                                description="Seconds at the end of the action regenerated so that it runs on "
                                            "into its start")
    # Your motion: adapters trained from the file's actions
    train_clips: CollectionProperty(type=DynamicPoseTrainClip)
    train_index: IntProperty(name="Take", default=0)
    adapter_name: StringProperty(name="Name", default="my style", maxlen=63,
                                 description="Name of the new adapter (letters, digits, spaces, '_', '-', '.')")
    train_steps: IntProperty(name="Steps", default=120, min=1, max=MAX_TRAIN_STEPS,
                             description="Training steps (about 1.5 s each on a 2-core CPU: 120 take 3 minutes)")
    train_report: StringProperty(name="Last training", default="")
    train_picture: StringProperty(name="Report picture", default="", subtype="FILE_PATH",
                                  description="Your takes, the default model's and the adapter's, side by side")
    adapters: CollectionProperty(type=DynamicPoseAdapterItem)
    adapters_index: IntProperty(name="Adapter", default=0)
    adapter_in_use: StringProperty(name="Adapter in use", default=DEFAULT_ADAPTER)
    # Backend status, shown in the panel
    status: StringProperty(name="Status", default="not started")

    def picked_adapter(self) -> str:
        """The adapter selected in the Backend panel's list ("" when none is)."""
        i = self.adapters_index
        return self.adapters[i].name if 0 <= i < len(self.adapters) else ""

    def floor_setting(self) -> str | float:
        """The floor as Retarget.to_rig takes it."""
        return self.floor_height if self.floor == "HEIGHT" else "AUTO"

    def length_seconds(self, fps: float) -> float | None:
        """The length asked for; None: let the backend read it from the prompt."""
        if self.length_unit == "AUTO":
            return None
        return self.seconds if self.length_unit == "SECONDS" else self.frames / fps


# -- where the backend runs (Edit > Preferences > Add-ons) --------------------------------
MODES = [
    ("PROCESS", "Local process", "Start `python -m backend serve` with the Python below and talk to it on 127.0.0.1"),
    ("URL", "Connect to URL", "Use a backend you started yourself (`dynamicpose serve` prints its URL and token)"),
    ("EMBEDDED", "Embedded", "Run the model inside Blender (needs torch in Blender's Python)"),
]
DEVICES = [("auto", "Auto", "CUDA, then Apple MPS, then CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", ""),
           ("mps", "Apple MPS", "")]


# Values kept in memory only: a property with get/set stores nothing in the preferences file
# (which is readable by every user of the computer).
_SESSION = {"token": ""}


def _get_token(self) -> str:
    return _SESSION["token"]


def _set_token(self, value: str) -> None:
    _SESSION["token"] = value


class DynamicPosePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__  # the extension's own package: settings.py sits at its root

    mode: EnumProperty(name="Backend", items=MODES, default="PROCESS")
    python: StringProperty(name="Python", subtype="FILE_PATH",
                           description="Python interpreter of the DynamicPose backend environment "
                                       "(for example the checkout's .venv/bin/python)")
    backend_dir: StringProperty(name="Backend folder", subtype="DIR_PATH",
                                description="Folder holding the backend package (the DynamicPose checkout); empty: the "
                                            "backend installed in the chosen Python")
    url: StringProperty(name="URL", default="http://127.0.0.1:8765")
    token: StringProperty(name="Token", subtype="PASSWORD", get=_get_token, set=_set_token,
                          description="The token the server printed (kept for this Blender session only, "
                                      "never saved with the preferences)")
    weights: StringProperty(name="Model folder", subtype="DIR_PATH",
                            description="Model weights (empty: the backend's default model)")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "mode")
        col = layout.column()
        if self.mode == "PROCESS":
            col.prop(self, "python")
            col.prop(self, "backend_dir")
        elif self.mode == "URL":
            col.prop(self, "url")
            col.prop(self, "token")
        else:
            col.prop(self, "backend_dir")
        if self.mode != "URL":
            col.prop(self, "weights")
            col.prop(self, "device")


def preferences(context: bpy.types.Context) -> DynamicPosePreferences:
    return context.preferences.addons[__package__].preferences
