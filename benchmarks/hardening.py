"""How the server holds under load and faults, on the real default model (issue #23's figures):
cancel latency (1 and 16 variations, and while the length estimator first loads), concurrent
jobs (each equal to the same seed run alone), requests/s sustained with p99 latency, a real
request among idle half-sent connections, and other requests while a 36 MB answer is written.

    .venv/bin/python benchmarks/hardening.py [--seconds 60] [--json out/hardening.json]
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Server:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--device", "cpu"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE,
                                     text=True)
        hello = json.loads(self.proc.stdout.readline())
        self.token, self.port = hello["token"], int(hello["url"].rsplit(":", 1)[1])

    def call(self, method: str, path: str, body: dict | None = None, conn=None, timeout: float = 600,
             parse: bool = True):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request(method, path, None if body is None else json.dumps(body),
                     {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        if own:
            conn.close()
        return answer.status, json.loads(data) if data and parse else None, len(data)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        for s in (self.proc.stdin, self.proc.stdout):
            s.close()


def cancel_latency(server: Server, variations: int, trials: int, seconds: float | None = 20.0) -> list[float]:
    """Seconds from the cancel request to the job's reported end, cancelled at a random point."""
    found = []
    for _ in range(trials):
        body = {"text": "a person dances wildly", "variations": variations, "wait": False}
        if seconds is not None:
            body["seconds"] = seconds
        _, job, _ = server.call("POST", "/v1/generate", body)
        while server.call("GET", f"/v1/jobs/{job['job']}")[1]["status"] == "queued":
            time.sleep(0.005)
        time.sleep(random.uniform(0.0, 1.5) if seconds is not None else 0.05)
        t0 = time.perf_counter()
        server.call("POST", f"/v1/jobs/{job['job']}/cancel")
        while (state := server.call("GET", f"/v1/jobs/{job['job']}")[1])["status"] == "running":
            time.sleep(0.005)
        found.append(time.perf_counter() - t0)
        assert state["status"] in ("cancelled", "done"), state
    return found


def concurrent_jobs(server: Server, n: int) -> dict:
    """n generate requests at once, waiting for their answers; each equal to its seed run alone."""
    def run(seed):
        status, state, _ = server.call("POST", "/v1/generate", {"text": "a person walks", "seconds": 2.0,
                                                                "seed": seed})
        return status, state["motions"][0]["local_rotations"] if status == 200 else None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        together = list(pool.map(run, range(n)))
    wall = time.perf_counter() - t0
    alone = [run(seed) for seed in range(n)]
    return {"jobs": n, "all_answered_200": all(s == 200 for s, _ in together), "wall_seconds": round(wall, 2),
            "equal_to_alone": sum(a[1] == b[1] for a, b in zip(together, alone))}


def sustained(server: Server, seconds: float, clients: int = 4) -> dict:
    """GET /v1/info on kept-alive connections from `clients` threads for `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine = []
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            status, _, _ = server.call("GET", "/v1/info", conn=conn)
            assert status == 200
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"seconds": seconds, "clients": clients, "requests_per_second": round(len(latencies) / seconds, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
            "p99_ms": round(1000 * latencies[int(0.99 * len(latencies))], 2)}


def among_idle(server: Server, idle: int) -> dict:
    """A real request while `idle` half-sent connections (no token) are open."""
    held = []
    for _ in range(idle):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.append(s)
    try:
        t0 = time.perf_counter()
        status, _, _ = server.call("GET", "/v1/info", timeout=30)
        took = time.perf_counter() - t0
        fds = len(list(Path(f"/proc/{server.proc.pid}/fd").iterdir()))
    finally:
        for s in held:
            s.close()
    return {"idle_connections": idle, "real_request_status": status, "real_request_ms": round(1000 * took, 1),
            "server_open_files": fds}


def beside_a_big_answer(server: Server) -> dict:
    """The longest /v1/info while a 16 x 20 s, 120 fps answer is fetched."""
    _, job, _ = server.call("POST", "/v1/generate", {"text": "a person walks", "seconds": 20.0, "variations": 16,
                                                     "fps": 120.0, "wait": False})
    while server.call("GET", f"/v1/jobs/{job['job']}")[1]["status"] in ("queued", "running"):
        time.sleep(0.2)
    worst, size, done = [0.0], [0], threading.Event()

    def fetch():  # in another process: reading 39 MB here would hold this process's GIL and skew the timing
        got = subprocess.run([sys.executable, "-c", FETCH, str(server.port), server.token, job["job"]],
                             capture_output=True, text=True, check=True)
        size[0] = int(got.stdout)
        done.set()

    t = threading.Thread(target=fetch)
    t0 = time.perf_counter()
    t.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    while not done.is_set():
        a = time.perf_counter()
        server.call("GET", "/v1/info", conn=conn)
        worst[0] = max(worst[0], time.perf_counter() - a)
    t.join()
    return {"answer_mb": round(size[0] / 1e6, 1), "fetch_seconds": round(time.perf_counter() - t0, 2),
            "worst_other_request_ms": round(1000 * worst[0], 1)}


FETCH = """
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=600)
conn.request("GET", "/v1/jobs/" + sys.argv[3], headers={"Authorization": "Bearer " + sys.argv[2]})
print(len(conn.getresponse().read()))
"""


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "worst_s": round(max(values), 3), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to sustain requests")
    ap.add_argument("--trials", type=int, default=5, help="cancels per case")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--only", nargs="*", help="run only these parts (by their key in the output)")
    args = ap.parse_args()
    random.seed(0)
    out = {}
    parts = {
        "cancel_while_length_loads": lambda s: summary(cancel_latency(s, 1, 1, seconds=None)),
        "cancel_1_variation": lambda s: summary(cancel_latency(s, 1, args.trials)),
        "cancel_16_variations": lambda s: summary(cancel_latency(s, 16, args.trials)),
        "concurrent": lambda s: concurrent_jobs(s, 20),
        "sustained": lambda s: sustained(s, args.seconds),
        "keep_alive_1_client": lambda s: sustained(s, 10.0, clients=1),
        "idle": lambda s: among_idle(s, 1000),
        "big_answer": beside_a_big_answer,
    }
    server = Server()  # fresh: its first prompt without a length loads the estimator
    try:
        for name, measure in parts.items():
            if not args.only or name in args.only:
                out[name] = measure(server)
    finally:
        server.stop()
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
