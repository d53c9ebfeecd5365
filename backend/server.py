"""`dynamicpose serve`: the engine over HTTP + JSON, on 127.0.0.1 only.

Every request needs the per-launch token (`Authorization: Bearer <token>`) and a loopback Host
header (a browser page elsewhere cannot reach it by DNS rebinding). Routes are versioned under
/v1. FastAPI validates every field against the bounded schemas in schemas.py.
"""
from __future__ import annotations

import json
import secrets
import signal
import socket
import sys
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import adapters as store
from backend import cpu_threads, studio
from backend.engine import Engine, Sampling
from backend.guards import BodyLimit, GuardedH11Protocol, quiet_repeats
from backend.jobs import Job, JobQueue
from backend.schemas import (ADAPTER_ANSWERS, JOB_ANSWERS, LOOKUP_ANSWERS, REFUSALS, AdapterList, AdapterRef,
                             CaptionRequest, ContinueRequest, EditRequest, ExportAdapterRequest, GenerateRequest,
                             ImportAdapterRequest, InbetweenRequest, JobState, SelectAdapterRequest,
                             TrainAdapterRequest)
from motioncore.wire import to_wire

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
WAIT_POLL_SECONDS = 0.02


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if ":" in header else header


def job_state(job: Job) -> dict:
    """The JobState answer as a JSON-ready dict, without the result's motions (they stream:
    _answer_pieces). Built directly rather than through the pydantic model: validating our own
    5,000-float motions cost more than the rest of a request."""
    state = {"job": job.id, "task": job.task, "status": job.status, "progress": round(job.progress, 3),
             "seconds": None if job.seconds is None else round(job.seconds, 4), "error": job.error,
             "adapter": job.adapter, "training": job.training}
    if job.status == "done" and job.task == "caption":
        state["text"] = job.result
    elif job.status == "done" and job.task not in MOTION_TASKS:
        state["result"] = job.result
    return {k: v for k, v in state.items() if v is not None}


MOTION_TASKS = ("generate", "edit", "continue", "inbetween")  # jobs whose result is motions


def result_motions(job: Job) -> list:
    """Generate answers several variations, edit and in-between one motion."""
    return job.result if isinstance(job.result, list) else [job.result]


STREAM_ROWS = 120  # frames of motion per streamed piece (about 25 ms of JSON writing each)


def _answer_pieces(state: dict, motions: list):
    """The JobState JSON with its motions, as byte pieces of at most STREAM_ROWS frames: each
    piece is one short hold of the GIL (json.dumps runs in C and lets no other thread in)."""
    yield (json.dumps(state)[:-1] + ', "motions": [').encode()
    for i, motion in enumerate(motions):
        wire = to_wire(motion)
        head = {k: v for k, v in wire.items() if k not in ("root_position", "local_rotations")}
        yield ((", " if i else "") + json.dumps(head)[:-1]).encode()
        for key in ("root_position", "local_rotations"):
            rows = wire[key]
            yield f', "{key}": ['.encode()
            for start in range(0, len(rows), STREAM_ROWS):
                yield ((", " if start else "") + json.dumps(rows[start:start + STREAM_ROWS])[1:-1]).encode()
            yield b"]"
        yield b"}"
    yield b"]}"


def sampling_of(body, **more) -> Sampling:
    """The decoding controls a request carries."""
    return Sampling(steps=body.steps, temperature=body.temperature, top_k=body.top_k, guidance=body.guidance,
                    **more)


def create_app(engine: Engine, token: str, jobs: JobQueue | None = None, on_ready=None) -> FastAPI:
    """The API. on_ready() runs once the server is up and handles SIGTERM (where serve()
    announces itself), so a client that reads the announcement can always stop it cleanly."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if on_ready is not None:
            on_ready()
        yield

    app = FastAPI(title="DynamicPose backend", version="1", lifespan=lifespan)
    jobs = jobs or JobQueue()
    app.state.jobs = jobs

    def submit(task: str, run) -> Job:
        """An engine job, recording the adapter that does it."""
        def with_adapter(job: Job):
            job.adapter = engine.adapter
            return run(job)

        return jobs.submit(task, with_adapter)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if _host_name(request.headers.get("host", "")) not in LOOPBACK_HOSTS:
            return JSONResponse({"detail": "requests must name a loopback Host (127.0.0.1 or localhost)"},
                                status_code=403)
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"detail": "missing or wrong token (Authorization: Bearer <token>)"},
                                status_code=401)
        return await call_next(request)

    async def wait_for(job: Job, wait: bool) -> Response:
        """The job's answer, once it has finished if `wait`. Waiting polls rather than holding a
        thread per request. Motions (up to 36 MB for 16 long takes) stream one at a time, each
        written off the event loop, so one big answer never holds the others up for long."""
        import asyncio

        while wait and not job.done.is_set():
            await asyncio.sleep(WAIT_POLL_SECONDS)
        state = job_state(job)
        code = 200
        if state["status"] == "failed":  # the engine refused the input (400) or broke (500)
            code = 500 if state.get("error", "").startswith("internal") else 400
        elif state["status"] == "cancelled" and jobs.closing:
            state, code = {**state, "detail": "the backend is shutting down; the job was cancelled"}, 503
        if state["status"] != "done" or job.task not in MOTION_TASKS:
            return Response(json.dumps(state), status_code=code, media_type="application/json")

        async def body():
            loop = asyncio.get_running_loop()
            pieces = _answer_pieces(state, result_motions(job))
            while (piece := await loop.run_in_executor(None, next, pieces, None)) is not None:
                yield piece

        return StreamingResponse(body(), status_code=code, media_type="application/json")

    @app.get("/v1/info", responses=REFUSALS)
    async def info() -> dict:  # cheap: on the loop, no thread hop
        return {**engine.info(), "api": 1, "queued": jobs.pending()}

    @app.post("/v1/generate", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def generate(body: GenerateRequest):
        sampling = sampling_of(body, decoding=body.decoding)
        job = submit("generate", lambda j: engine.generate(
            body.text, body.seconds, seed=body.seed, variations=body.variations, sampling=sampling,
            fps=body.fps, on_step=j.on_step))
        return await wait_for(job, body.wait)

    def motion_of(body):  # the motion, or the 422 answer naming what is wrong with it
        try:
            return body.motion.to_motion()
        except ValueError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)

    async def motion_job(task: str, body, call):
        """Jobs that read a motion: call(motion, sampling, on_step) on the queue, or the 422."""
        motion = motion_of(body)
        if isinstance(motion, JSONResponse):
            return motion
        sampling = sampling_of(body)
        job = submit(task, lambda j: call(motion, sampling, j.on_step))
        return await wait_for(job, body.wait)

    @app.post("/v1/edit", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def edit(body: EditRequest):
        return await motion_job("edit", body, lambda m, s, cb: engine.edit(
            m, body.start, body.stop, body.text, seed=body.seed, sampling=s, on_step=cb, part=body.part))

    @app.post("/v1/continue", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def continue_(body: ContinueRequest):
        return await motion_job("continue", body, lambda m, s, cb: engine.continue_(
            m, body.text, body.seconds, seed=body.seed, sampling=s, on_step=cb))

    @app.post("/v1/inbetween", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def inbetween(body: InbetweenRequest):
        return await motion_job("inbetween", body, lambda m, s, cb: engine.inbetween(
            m, body.keys, body.text, seed=body.seed, sampling=s, on_step=cb, loop=body.loop,
            partial_keys=body.partial_keys))

    @app.post("/v1/caption", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def caption(body: CaptionRequest):
        motion = motion_of(body)
        if isinstance(motion, JSONResponse):
            return motion
        job = submit("caption", lambda j: engine.caption(motion))
        return await wait_for(job, True)

    # -- adapters: the user's own (backend/adapters.py) -----------------------------------------
    @app.get("/v1/adapters", response_model=AdapterList, responses=REFUSALS)
    def adapters() -> dict:  # reads a folder: off the loop
        return {"adapters": engine.adapters_list(), "in_use": engine.adapter}

    @app.post("/v1/adapters/select", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def select_adapter(body: SelectAdapterRequest):
        # On the queue: a switch waits for the jobs before it, and the ones after it see it made.
        job = jobs.submit("select_adapter", lambda j: {"in_use": engine.use_adapter(body.name)["name"]})
        return await wait_for(job, body.wait)

    @app.post("/v1/adapters/train", response_model=JobState, response_model_exclude_none=True, responses=JOB_ANSWERS)
    async def train_adapter(body: TrainAdapterRequest):
        try:
            motions = [c.motion.to_motion() for c in body.clips]
        except ValueError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)

        def run(j: Job):
            return studio.train_adapter(engine, body.name, motions, [c.caption for c in body.clips], steps=body.steps,
                                        batch=body.batch, lr=body.lr, seed=body.seed, on_step=j.on_step,
                                        on_progress=lambda p: setattr(j, "training", p), report=body.report,
                                        sources=[c.source for c in body.clips])

        return await wait_for(submit("train_adapter", run), body.wait)

    def absolute(path: str) -> Path:
        """Files are named in full: the server's working directory is nothing the client knows."""
        if not Path(path).is_absolute():
            raise store.AdapterError(f"give an absolute path for the file, got {path!r}")
        return Path(path)

    @app.post("/v1/adapters/export", responses=ADAPTER_ANSWERS)
    def export_adapter(body: ExportAdapterRequest):
        try:
            return store.export(body.name, absolute(body.path), engine.adapters)
        except store.AdapterError as e:
            return JSONResponse({"detail": str(e)}, status_code=400)

    @app.post("/v1/adapters/import", responses=ADAPTER_ANSWERS)
    def import_adapter(body: ImportAdapterRequest):
        try:
            info = store.import_file(absolute(body.path), engine.identity, name=body.name, root=engine.adapters)
        except store.AdapterError as e:
            return JSONResponse({"detail": str(e)}, status_code=400)
        return {k: info.get(k) for k in store.SUMMARY}

    @app.post("/v1/adapters/remove", responses=ADAPTER_ANSWERS)
    def remove_adapter(body: AdapterRef):
        if body.name == engine.adapter:
            return JSONResponse({"detail": f"{body.name!r} is in use; select another adapter first"}, status_code=400)
        try:
            store.remove(body.name, engine.adapters)
        except store.AdapterError as e:
            return JSONResponse({"detail": str(e)}, status_code=400)
        return {"removed": body.name}

    @app.get("/v1/jobs/{job_id}", response_model=JobState, response_model_exclude_none=True, responses=LOOKUP_ANSWERS)
    async def get_job(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            return JSONResponse({"detail": f"no job {job_id!r}"}, status_code=404)
        return await wait_for(job, False)

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobState, response_model_exclude_none=True,
              responses=LOOKUP_ANSWERS)
    async def cancel_job(job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            return JSONResponse({"detail": f"no job {job_id!r}"}, status_code=404)
        return await wait_for(job, False)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # Name the field and the problem; never echo the input (it may hold NaN, or 100 kB).
        detail = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "invalid")} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # a body that is not JSON text at all: a field error like the rest
            return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc.detail)}]}, status_code=422)
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    async def busy(request: Request, exc: OverflowError):
        return JSONResponse({"detail": str(exc)}, status_code=429)

    return app


def loopback_socket(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one). Nothing else is ever bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


SHUTDOWN_SECONDS = 2  # after SIGTERM: running jobs are cancelled and answered, then the process exits


def serve(port: int = 0, weights: Path | None = None, device: str = "auto", token: str | None = None,
          exit_with_stdin: bool = False, adapter: str = store.DEFAULT, threads: int = 0) -> None:
    """Load the engine, print one JSON line {"url", "token", "pid", "device"} and serve until
    SIGINT or SIGTERM, or, with `exit_with_stdin`, until stdin closes (the add-on holds the
    other end: when Blender goes, so does the server). Stopping cancels the running jobs, whose
    waiting clients get a JSON 503, and exits within SHUTDOWN_SECONDS. `threads`: CPU threads
    per job (0: the cores other processes leave free, chosen before each job; backend/cpu_threads.py)."""
    import os
    import threading

    import uvicorn

    jobs = JobQueue(before_each=cpu_threads.Chooser(user=threads or cpu_threads.setting()).apply)
    engine = jobs.call(lambda: Engine(weights, device=device, adapter=adapter))  # loaded where its jobs will run
    import gc

    # The model's objects live as long as the process: keep them out of the collector's full
    # passes, which otherwise paused every request for a few hundred ms while a big answer was
    # written (millions of new floats set the collections off).
    gc.freeze()
    token = token or os.environ.get("DYNAMICPOSE_TOKEN") or secrets.token_urlsafe(24)
    sock = loopback_socket(port)
    host, bound = sock.getsockname()[:2]

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            jobs.shut_down()
            super().handle_exit(sig, frame)

    server: Server | None = None

    def announce() -> None:
        print(json.dumps({"url": f"http://{host}:{bound}", "token": token, "pid": os.getpid(),
                          "device": str(engine.device), "load_seconds": round(engine.load_seconds, 2)}),
              flush=True)
        if exit_with_stdin:
            def watch() -> None:  # the raw fd: a buffered read would hold a lock at exit (abort)
                try:
                    while os.read(sys.stdin.fileno(), 4096):
                        pass
                except (OSError, ValueError):
                    pass
                server.handle_exit(signal.SIGTERM, None)

            threading.Thread(target=watch, name="dynamicpose-parent-watch", daemon=True).start()

    app = create_app(engine, token, jobs=jobs, on_ready=announce)
    quiet_repeats()
    config = uvicorn.Config(BodyLimit(app), log_level="warning", access_log=False, http=GuardedH11Protocol,
                            timeout_graceful_shutdown=SHUTDOWN_SECONDS, lifespan="on")
    # uvicorn handles SIGTERM gracefully, then re-raises it to the handler it found: make that
    # a no-op so the process finishes its clean-up and exits 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        jobs.close()
        sock.close()
        print("dynamicpose: server stopped", file=sys.stderr, flush=True)
