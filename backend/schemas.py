"""Request and response bodies of the HTTP API (version 1), with every field bounded.

Motion on the wire is canonical motion (motioncore): metres, Z up, the character facing -Y,
root_position (T, 3) of the Hips, local_rotations (T, 21, 4) as (w, x, y, z) relative to the
parent, joints in CANONICAL_JOINTS order.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from backend.sampling import Sampling
from motioncore import canonical
from motioncore.clip import Motion
from motioncore.limits import (ADAPTER_NAME, MAX_FPS, MAX_FRAMES, MAX_SECONDS, MAX_TEXT, MAX_TRAIN_BATCH,
                               MAX_TRAIN_CLIPS, MAX_TRAIN_STEPS, MAX_VARIATIONS, MIN_FPS, motion_problem,
                               training_problem)
from motioncore.wire import WIRE_FORMAT, from_wire

DEFAULT_SAMPLING = Sampling()

API_VERSION = WIRE_FORMAT

def _not_a_flag(value):
    if isinstance(value, bool):  # JSON true/false is not a number, though Python counts it as one
        raise ValueError("expected a number, not true/false")
    return value


Num = Annotated[float, BeforeValidator(_not_a_flag)]
Int = Annotated[int, BeforeValidator(_not_a_flag)]
Vec3 = Annotated[list[Num], Field(min_length=3, max_length=3)]
Quat = Annotated[list[Num], Field(min_length=4, max_length=4)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Flag = Annotated[bool, Field(strict=True)]  # 0 and "yes" are not booleans


class MotionData(Strict):
    format: Int = Field(API_VERSION, description="wire format version")
    fps: Num = Field(ge=MIN_FPS, le=MAX_FPS)
    joint_names: list[str] = Field(default_factory=lambda: list(canonical.CANONICAL_JOINTS),
                                   max_length=len(canonical.CANONICAL_JOINTS),
                                   json_schema_extra={"const": list(canonical.CANONICAL_JOINTS)})
    root_position: list[Vec3] = Field(min_length=2, max_length=MAX_FRAMES,
                                      description=f"metres, Z up; frames / fps at most {MAX_SECONDS:g} s")
    local_rotations: list[Annotated[list[Quat], Field(min_length=len(canonical.CANONICAL_JOINTS),
                                                      max_length=len(canonical.CANONICAL_JOINTS))]] = Field(
        min_length=2, max_length=MAX_FRAMES, description="(T, 21, 4) wxyz, as many frames as root_position")

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
    seconds: Num | None = Field(None, gt=0, le=MAX_SECONDS,
                                  description="length; left out or null: as long as the text suggests")
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    variations: Int = Field(1, ge=1, le=MAX_VARIATIONS)
    steps: Int = Field(DEFAULT_SAMPLING.steps, ge=1, le=64, description="parallel decoding passes")
    temperature: Num = Field(1.0, ge=0, le=10)
    top_k: Int = Field(0, ge=0, le=4096)
    guidance: Num = Field(DEFAULT_SAMPLING.guidance, ge=0, le=10,
                            description="classifier-free guidance scale (1: off)")
    decoding: Literal["parallel", "next"] = Field("parallel", description="parallel passes or token by token")
    fps: Num = Field(30.0, ge=MIN_FPS, le=MAX_FPS)
    wait: Flag = Field(True, description="answer with the result; false: answer with a job id at once")


class InfillOptions(Strict):
    text: str = Field("", max_length=MAX_TEXT)
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    steps: Int = Field(DEFAULT_SAMPLING.steps, ge=1, le=64, description="parallel decoding passes")
    temperature: Num = Field(1.0, ge=0, le=10)
    top_k: Int = Field(0, ge=0, le=4096)
    guidance: Num = Field(DEFAULT_SAMPLING.guidance, ge=0, le=10,
                            description="classifier-free guidance scale (1: off)")
    wait: Flag = Field(True, description="answer with the result; false: answer with a job id at once")


BodyPart = Literal[tuple(canonical.BODY_PARTS)]


class EditRequest(InfillOptions):
    motion: MotionData
    start: Int = Field(ge=0, le=MAX_FRAMES, description="first frame to regenerate")
    stop: Int = Field(ge=1, le=MAX_FRAMES, description="frame after the last to regenerate")
    part: BodyPart = Field(
        "body", description="what is regenerated: the whole body, the upper body (legs and travel kept) or the legs")


class ContinueRequest(InfillOptions):
    motion: MotionData
    seconds: Num | None = Field(None, gt=0, le=MAX_SECONDS,
                                  description="how much to add; left out or null: as long as the text suggests")


JointName = Literal[canonical.CANONICAL_JOINTS]


class InbetweenRequest(InfillOptions):
    motion: MotionData = Field(description="poses at the key frames; other frames are ignored")
    keys: list[Annotated[Int, Field(ge=0, le=MAX_FRAMES)]] = Field(min_length=2, max_length=MAX_FRAMES,
                                                                   description="frames whose whole pose is keyed")
    partial_keys: dict[Annotated[int, Field(ge=0, le=MAX_FRAMES)],
                       Annotated[list[JointName], Field(min_length=1, max_length=len(canonical.CANONICAL_JOINTS))]] = Field(
        default_factory=dict, max_length=MAX_FRAMES,
        description="more frames, each with the canonical joints keyed there (keys on some bones)")
    loop: Flag | None = Field(None, description="a seamless cycle; default: whether the first and last key match")


class CaptionRequest(Strict):
    motion: MotionData


AdapterName = Annotated[str, Field(min_length=1, max_length=63, pattern=f"^(?:{ADAPTER_NAME})$")]
FilePath = Annotated[str, Field(min_length=1, max_length=4096, description="an absolute path on the backend's machine")]


class TrainClip(Strict):
    motion: MotionData
    caption: str = Field("", max_length=MAX_TEXT)
    source: str = Field("", max_length=200, description="where it came from (an action's name), for the record")


class TrainAdapterRequest(Strict):
    name: AdapterName
    clips: list[TrainClip] = Field(min_length=1, max_length=MAX_TRAIN_CLIPS)
    steps: Int = Field(120, ge=1, le=MAX_TRAIN_STEPS)
    batch: Int = Field(8, ge=1, le=MAX_TRAIN_BATCH)
    lr: Num = Field(1e-3, gt=0, le=0.01)
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    report: Flag = Field(True, description="measure the adapter against the default when trained")
    wait: Flag = Field(False, description="answer when trained; false: answer with a job id at once")

    @model_validator(mode="after")
    def _not_too_much(self) -> "TrainAdapterRequest":
        problem = training_problem([(len(c.motion.root_position), c.motion.fps) for c in self.clips])
        if problem:
            raise ValueError(problem)
        return self


class SelectAdapterRequest(Strict):
    name: AdapterName
    wait: Flag = True


class AdapterRef(Strict):
    name: AdapterName


class ExportAdapterRequest(Strict):
    name: AdapterName
    path: FilePath


class ImportAdapterRequest(Strict):
    path: FilePath
    name: AdapterName | None = Field(None, description="the name to import it as; default: the name it was exported with")


class AdapterSummary(BaseModel):
    name: str
    clips: int | None = None
    steps: int | None = None
    steps_asked: int | None = None
    created: str | None = None
    stopped: str | None = None
    imported: dict | None = None


class AdapterList(BaseModel):
    adapters: list[AdapterSummary]
    in_use: str


class TrainingProgress(BaseModel):
    step: Int
    steps: Int
    loss: Num | None = None
    seconds_left: Num | None = None


class JobState(BaseModel):
    job: str
    task: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: Num = Field(ge=0, le=1)
    seconds: Num | None = Field(None, description="how long the job ran, once it has finished")
    error: str | None = None
    detail: str | None = Field(None, description="why a job was cut short (the server is stopping)")
    motions: list[MotionData] | None = None
    text: str | None = None
    adapter: str | None = Field(None, description="the adapter that made the result (default: the shipped model)")
    training: TrainingProgress | None = Field(None, description="a training job's step, loss and time left")
    result: dict | None = Field(None, description="a training or adapter job's outcome (the adapter's info)")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, then the field path")
    msg: str


class ErrorAnswer(BaseModel):
    """What every refusal answers: a sentence, or one entry per invalid field."""

    detail: str | list[FieldError]


def _error(why: str) -> dict:
    return {"model": ErrorAnswer, "description": why}


def _job(why: str) -> dict:
    return {"model": JobState, "description": why}


# The answers every route may give besides its 200, for the OpenAPI description.
REFUSALS = {401: _error("missing or wrong token"), 403: _error("the Host header is not a loopback name"),
            413: _error("the body is larger than any valid request"),
            422: _error("an invalid field (each one named)"), 429: _error("too many jobs waiting")}
JOB_ANSWERS = {**REFUSALS, 400: _job("the engine refused the input (the job's error says why)"),
               500: _job("the engine failed (a bug)"), 503: _job("the server is stopping; the job was cancelled")}
ADAPTER_ANSWERS = {**REFUSALS, 400: _error("no such adapter, it is in use, or its file is damaged or does not fit")}
LOOKUP_ANSWERS = {**REFUSALS, 404: _error("no such job (finished jobs are kept 10 minutes)")}
