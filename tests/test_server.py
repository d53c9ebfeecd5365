"""The backend as a real server process on 127.0.0.1, with tiny weights, and the add-on's
client against it and in process."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def server(tiny_weights):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--weights", str(tiny_weights),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    hello = json.loads(line)
    yield {**hello, "proc": proc}
    if proc.poll() is None:
        proc.kill()


def call(server, method, path, body=None, token=None, headers=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    h = {"Authorization": f"Bearer {token or server['token']}", "Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(server["url"] + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def addon_client():
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose import client

    return client


def test_info_and_loopback_only(server):
    assert server["url"].startswith("http://127.0.0.1:")
    status, info = call(server, "GET", "/v1/info")
    assert status == 200 and info["device"] == "cpu" and info["api"] == 1
    # Every listening socket of the process is on 127.0.0.1.
    pid = server["proc"].pid
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
              if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in open(table).read().splitlines()[1:]:
            cols = row.split()
            if cols[9] in inodes and cols[3] == "0A":  # state LISTEN
                listening.append(cols[1])
    assert listening and all(addr.split(":")[0] == "0100007F" for addr in listening), listening


def test_http_and_embedded_give_identical_results(server, tiny_weights, addon_client):
    http = addon_client.HTTPBackend(server["url"], server["token"])
    embedded = addon_client.EmbeddedBackend(str(tiny_weights), device="cpu")
    a = http.generate("a person waves", 2.0, seed=5, variations=2)
    b = embedded.generate("a person waves", 2.0, seed=5, variations=2)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert np.array_equal(x.local_rotations, y.local_rotations)
        assert np.array_equal(x.root_position, y.root_position)
    assert http.caption(a[0]) == embedded.caption(a[0])
    assert http.info()["codebook_size"] == embedded.info()["codebook_size"]
    clip = a[0]
    e1, e2 = (b.edit(clip, 10, 30, "a person jumps", seed=3) for b in (http, embedded))
    u1, u2 = (b.edit(clip, 10, 30, "a person waves", seed=3, part="upper") for b in (http, embedded))
    assert np.allclose(u1.root_position, clip.root_position, atol=1e-7) and not np.array_equal(u1.local_rotations, e1.local_rotations)
    i1, i2 = (b.inbetween(clip, [0, 20, clip.num_frames - 1], "", seed=4, partial_keys={10: ["Hand_L"]})
              for b in (http, embedded))
    c1, c2 = (b.continue_(clip, "then a person sits", 1.0, seed=5) for b in (http, embedded))
    assert c1.num_frames == clip.num_frames + 30
    assert np.allclose(c1.local_rotations[: clip.num_frames], clip.local_rotations, atol=1e-7)
    for x, y in ((e1, e2), (u1, u2), (i1, i2), (c1, c2)):
        assert np.array_equal(x.local_rotations, y.local_rotations)
        assert np.array_equal(x.root_position, y.root_position)
    assert np.allclose(e1.local_rotations[:10], clip.local_rotations[:10], atol=1e-7)


def test_answers_carry_the_jobs_run_time(server):
    t = time.perf_counter()
    status, answer = call(server, "POST", "/v1/generate", {"text": "a person walks", "seconds": 1.0, "steps": 2})
    wall = time.perf_counter() - t
    assert status == 200 and answer["status"] == "done" and len(answer["motions"]) == 1
    assert 0 < answer["seconds"] < wall
    status, again = call(server, "GET", f"/v1/jobs/{answer['job']}")
    assert status == 200 and again["seconds"] == answer["seconds"] and again["motions"] == answer["motions"]


def test_client_follows_progress_and_cancels(server, addon_client):
    http = addon_client.HTTPBackend(server["url"], server["token"])
    seen = []
    http.generate("a person walks", 4.0, steps=16, progress=seen.append)
    assert seen and all(0 <= p <= 1 for p in seen)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(addon_client.Cancelled):
        http.generate("a long dance", 20.0, variations=16, steps=64, cancel=cancel)
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("body, where", [
    ({"text": "x", "seconds": -1}, "seconds"),
    ({"text": "x", "seconds": 1e9}, "seconds"),
    ({"text": "x" * 100_000, "seconds": 2}, "text"),
    ({"text": "x", "seconds": 2, "variations": 10_000}, "variations"),
    ({"text": "x", "seconds": 2, "task": "dance"}, "task"),
    ({"seconds": 2}, "text"),
])
def test_bad_requests_get_4xx_and_server_keeps_serving(server, body, where):
    status, out = call(server, "POST", "/v1/generate", body)
    assert 400 <= status < 500
    assert where in json.dumps(out["detail"])
    assert call(server, "GET", "/v1/info")[0] == 200


@pytest.mark.parametrize("raw", [b"{not json", b'{"text": "x", "seconds": NaN}', b'{"text": "x", "seconds": Infinity}'])
def test_malformed_json_and_non_finite_numbers(server, raw):
    status, _ = call(server, "POST", "/v1/generate", raw=raw)
    assert status == 422


def test_edit_and_inbetween_refuse_bad_ranges_and_keys(server, addon_client):
    http = addon_client.HTTPBackend(server["url"], server["token"])
    clip = http.generate("walk", 1.0)[0]
    with pytest.raises(addon_client.BackendError, match="start < stop"):
        http.edit(clip, 20, 5)
    with pytest.raises(addon_client.BackendError, match="part"):
        http.edit(clip, 5, 20, part="tail")
    with pytest.raises(addon_client.BackendError, match="keys"):
        http.inbetween(clip, [3])
    with pytest.raises(addon_client.BackendError, match="lie in"):
        http.inbetween(clip, [0, 500])
    with pytest.raises(addon_client.BackendError, match="partial_keys"):
        http.inbetween(clip, [0, 20], partial_keys={10: ["Tail"]})
    with pytest.raises(addon_client.BackendError, match="outside"):
        http.inbetween(clip, [0, 20], partial_keys={500: ["Hips"]})
    assert call(server, "GET", "/v1/info")[0] == 200


def test_caption_rejects_wrong_joint_count_and_nan(server):
    motion = {"fps": 20, "root_position": [[0, 0, 1]] * 4, "local_rotations": [[[1, 0, 0, 0]] * 20] * 4}
    status, out = call(server, "POST", "/v1/caption", {"motion": motion})
    assert status == 422 and "local_rotations" in json.dumps(out)
    motion["local_rotations"] = [[[1, 0, 0, 0]] * 21] * 4
    raw = json.dumps({"motion": motion}).replace("[0, 0, 1]", "[NaN, 0, 1]", 1).encode()
    assert call(server, "POST", "/v1/caption", raw=raw)[0] == 422


def test_token_and_host_are_checked(server):
    assert call(server, "GET", "/v1/info", token="wrong")[0] == 401
    req = urllib.request.Request(server["url"] + "/v1/info")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    status, out = call(server, "GET", "/v1/info", headers={"Host": "evil.example:80"})
    assert status == 403 and "loopback" in out["detail"]


def test_cancel_stops_a_running_job_within_a_second(server):
    status, job = call(server, "POST", "/v1/generate",
                       {"text": "a long dance", "seconds": 20, "variations": 16, "steps": 64, "wait": False})
    assert status == 200
    deadline = time.monotonic() + 30
    while call(server, "GET", f"/v1/jobs/{job['job']}")[1]["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    call(server, "POST", f"/v1/jobs/{job['job']}/cancel")
    while (state := call(server, "GET", f"/v1/jobs/{job['job']}")[1])["status"] == "running":
        time.sleep(0.01)
    assert state["status"] == "cancelled", state
    assert time.monotonic() - t0 < 1.0


def test_twenty_concurrent_requests_all_complete(server, addon_client):
    http = addon_client.HTTPBackend(server["url"], server["token"])
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda s: http.generate("walk", 1.0, seed=s)[0], range(20)))
    again = http.generate("walk", 1.0, seed=7)[0]
    assert np.array_equal(results[7].local_rotations, again.local_rotations)
    assert len({r.local_rotations.tobytes() for r in results}) > 1


def test_fuzzed_bodies_never_break_the_server(server):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                       st.text(max_size=50), st.lists(st.integers(), max_size=5))
    bodies = st.one_of(st.dictionaries(st.sampled_from(["text", "seconds", "seed", "variations", "steps",
                                                        "temperature", "top_k", "fps", "wait", "extra"]),
                                       values, max_size=8), values)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body):
        if isinstance(body, dict):
            body.setdefault("seconds", 0.5) if body.get("seconds") is None else None
        status, _ = call(server, "POST", "/v1/generate", body)
        assert status < 500

    check()
    assert call(server, "GET", "/v1/info")[0] == 200


def test_client_reports_a_stopped_server_readably(addon_client):
    dead = addon_client.HTTPBackend("http://127.0.0.1:9", "x", timeout=5)
    with pytest.raises(addon_client.BackendError, match="cannot reach the backend"):
        dead.info()


def test_sigterm_stops_the_server(tiny_weights):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--weights", str(tiny_weights),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert "server stopped" in proc.stderr.read()
