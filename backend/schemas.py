"""Request and response bodies of the HTTP API (version 1), with every field bounded.

Motion on the wire is canonical motion (motioncore): metres, Z up, the character facing -Y,
root_position (T, 3) of the Hips, local_rotations (T, 21, 4) as (w, x, y, z) relative to the
parent, joints in CANONICAL_JOINTS order.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.sampling import Sampling
from motioncore import canonical
from motioncore.clip import Motion
from motioncore.limits import MAX_FPS, MAX_FRAMES, MAX_SECONDS, MAX_TEXT, MAX_VARIATIONS, MIN_FPS, motion_problem
from motioncore.wire import WIRE_FORMAT, from_wire

DEFAULT_SAMPLING = Sampling()

API_VERSION = WIRE_FORMAT

Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Quat = Annotated[list[float], Field(min_length=4, max_length=4)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MotionData(Strict):
    format: int = Field(API_VERSION, description="wire format version")
    fps: float = Field(ge=MIN_FPS, le=MAX_FPS)
    joint_names: list[str] = Field(default_factory=lambda: list(canonical.CANONICAL_JOINTS),
                                   max_length=len(canonical.CANONICAL_JOINTS))
    root_position: list[Vec3] = Field(min_length=1, max_length=MAX_FRAMES, description="metres, Z up")
    local_rotations: list[Annotated[list[Quat], Field(min_length=len(canonical.CANONICAL_JOINTS),
                                                      max_length=len(canonical.CANONICAL_JOINTS))]] = Field(
        min_length=1, max_length=MAX_FRAMES, description="(T, 21, 4) wxyz")

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != API_VERSION:
            raise ValueError(f"motion format {v} is not supported; this server speaks {API_VERSION}")
        return v

    @field_validator("joint_names")
    @classmethod
    def _canonical_joints(cls, v: list[str]) -> list[str]:
        if tuple(v) != canonical.CANONICAL_JOINTS:
            raise ValueError(f"joints must be the {len(canonical.CANONICAL_JOINTS)} canonical joints in order "
                             f"{list(canonical.CANONICAL_JOINTS)}")
        return v

    @model_validator(mode="after")
    def _readable(self) -> "MotionData":
        if len(self.root_position) != len(self.local_rotations):
            raise ValueError(f"root_position has {len(self.root_position)} frames but local_rotations "
                             f"{len(self.local_rotations)}")
        problem = motion_problem(len(self.root_position), self.fps)
        if problem:
            raise ValueError(problem)
        return self

    def to_motion(self) -> Motion:
        return from_wire(self.model_dump())


class GenerateRequest(Strict):
    text: str = Field(max_length=MAX_TEXT)
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                  description="length; left out or null: as long as the text suggests")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    variations: int = Field(1, ge=1, le=MAX_VARIATIONS)
    steps: int = Field(DEFAULT_SAMPLING.steps, ge=1, le=64, description="parallel decoding passes")
    temperature: float = Field(1.0, ge=0, le=10)
    top_k: int = Field(0, ge=0, le=4096)
    guidance: float = Field(DEFAULT_SAMPLING.guidance, ge=0, le=10,
                            description="classifier-free guidance scale (1: off)")
    decoding: Literal["parallel", "next"] = Field("parallel", description="parallel passes or token by token")
    fps: float = Field(30.0, ge=MIN_FPS, le=MAX_FPS)
    wait: bool = Field(True, description="answer with the result; false: answer with a job id at once")


class InfillOptions(Strict):
    text: str = Field("", max_length=MAX_TEXT)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int = Field(DEFAULT_SAMPLING.steps, ge=1, le=64, description="parallel decoding passes")
    temperature: float = Field(1.0, ge=0, le=10)
    top_k: int = Field(0, ge=0, le=4096)
    guidance: float = Field(DEFAULT_SAMPLING.guidance, ge=0, le=10,
                            description="classifier-free guidance scale (1: off)")
    wait: bool = Field(True, description="answer with the result; false: answer with a job id at once")


class EditRequest(InfillOptions):
    motion: MotionData
    start: int = Field(ge=0, le=MAX_FRAMES, description="first frame to regenerate")
    stop: int = Field(ge=1, le=MAX_FRAMES, description="frame after the last to regenerate")


class ContinueRequest(InfillOptions):
    motion: MotionData
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                  description="how much to add; left out or null: as long as the text suggests")


JointName = Literal[canonical.CANONICAL_JOINTS]


class InbetweenRequest(InfillOptions):
    motion: MotionData = Field(description="poses at the key frames; other frames are ignored")
    keys: list[Annotated[int, Field(ge=0, le=MAX_FRAMES)]] = Field(min_length=2, max_length=MAX_FRAMES,
                                                                   description="frames whose whole pose is keyed")
    partial_keys: dict[Annotated[int, Field(ge=0, le=MAX_FRAMES)],
                       Annotated[list[JointName], Field(min_length=1, max_length=len(canonical.CANONICAL_JOINTS))]] = Field(
        default_factory=dict, max_length=MAX_FRAMES,
        description="more frames, each with the canonical joints keyed there (keys on some bones)")
    loop: bool | None = Field(None, description="a seamless cycle; default: whether the first and last key match")


class CaptionRequest(Strict):
    motion: MotionData


class JobState(BaseModel):
    job: str
    task: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: float = Field(ge=0, le=1)
    seconds: float | None = Field(None, description="how long the job ran, once it has finished")
    error: str | None = None
    motions: list[MotionData] | None = None
    text: str | None = None
