"""The failure drill of scripts/verify-deploy.sh, against a running stack (deploy/compose.yaml).

Under steady load through the balancer it stops one API replica (SIGTERM, as a rolling update
or a drained node does) and kills the leading worker (SIGKILL), then checks what the team
deployment promises:

* requests fail only while the replica dies (each failure is timed and counted);
* the standby worker takes the scheduler lock within the lease;
* no prediction log is lost: the log rows of this run equal its successful responses;
* the dashboard answers throughout.

Only the standard library: it runs on the host's ``python3``, with ``docker`` on the PATH.
Prints a summary table and exits 1 when a promise does not hold.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

RATINGS = [
    3.5,
    0,
    4,
    0,
    2,
    5,
    0,
    1,
    0,
    3,
    0,
    0,
    4.5,
    0,
    2,
    0,
    0,
    3,
    0,
    1,
    0,
    0,
    5,
    0,
    2,
    0,
    1,
    0,
    4,
]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def add(self, at: float, ok: bool, latency: float, what: str = "") -> None:
        with self.lock:
            self.sent += 1
            if ok:
                self.ok += 1
                self.latencies.append(latency)
            else:
                self.failures.append((at, what))


def docker(*args: str, check: bool = True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


class Stack:
    def __init__(self, project: str) -> None:
        self.project = project

    def container(self, service: str) -> str:
        return docker(
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).splitlines()[0]

    def sql(self, query: str) -> str:
        return docker(
            "exec",
            self.container("db"),
            "psql",
            "-h",
            "/tmp",
            "-U",
            "planwise",
            "-d",
            "planwise",
            "-Atc",
            query,
        )

    def leader(self) -> tuple[str, str] | None:
        """(holder, container id) of the worker recorded as holding the scheduler lock."""
        row = self.sql(
            "select holder from worker_leases where name = 'scheduler' "
            "and expires_at > (now() at time zone 'utc')"
        )
        if not row:
            return None
        host = row.split(":")[0]
        for service in ("worker1", "worker2"):
            cid = docker(
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            )
            if cid and docker("inspect", "-f", "{{.Config.Hostname}}", cid) == host:
                return row, cid
        return row, ""


def load(url: str, key: str, tag: str, tally: Tally, stop: threading.Event, t0: float) -> None:
    host, port = url.split("//")[1].split(":")
    conn: http.client.HTTPConnection | None = None
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps(
            {"ratings": RATINGS, "lat": 40.4168, "lng": -3.7038, "k": 10, "user_id": f"{tag}-{n}"}
        )
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=15)
            conn.request(
                "POST",
                "/recommend",
                body,
                {"Content-Type": "application/json", "X-API-Key": key},
            )
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            tally.add(
                start - t0, ok, time.monotonic() - start, "" if ok else f"HTTP {response.status}"
            )
            if not ok:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            tally.add(start - t0, False, 0.0, type(exc).__name__)
            if conn is not None:
                conn.close()
            conn = None


def probe_dashboard(url: str, tally: Tally, stop: threading.Event, t0: float) -> None:
    while not stop.is_set():
        start = time.monotonic()
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                ok = r.status == 200 and r.read().strip() == b"ok"
            tally.add(start - t0, ok, time.monotonic() - start, "" if ok else "not ok")
        except OSError as exc:
            tally.add(start - t0, False, 0.0, type(exc).__name__)
        stop.wait(0.5)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--project", required=True)
    p.add_argument("--api", required=True, help="the balancer, http://host:port")
    p.add_argument("--dashboard", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--seconds", type=float, default=50)
    p.add_argument("--lease", type=float, default=30, help="the workers' lease (takeover bound)")
    args = p.parse_args()

    stack = Stack(args.project)
    tag = f"verify-{uuid.uuid4().hex[:8]}"
    api, dash = Tally(), Tally()
    stop = threading.Event()
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=load, args=(args.api, args.key, tag, api, stop, t0), daemon=True)
        for _ in range(args.clients)
    ]
    threads.append(
        threading.Thread(target=probe_dashboard, args=(args.dashboard, dash, stop, t0), daemon=True)
    )
    for t in threads:
        t.start()

    time.sleep(8)
    print(f"[{time.monotonic() - t0:5.1f}s] stopping api1 (SIGTERM)", flush=True)
    api1 = stack.container("api1")
    replica_down_from = time.monotonic() - t0
    docker("stop", "-t", "20", api1)
    replica_down_until = time.monotonic() - t0
    print(f"[{replica_down_until:5.1f}s] api1 stopped", flush=True)

    time.sleep(3)
    before = stack.leader()
    if before is None or not before[1]:
        print(f"no live leader recorded: {before}", file=sys.stderr)
        stop.set()
        return 1
    holder, cid = before
    print(
        f"[{time.monotonic() - t0:5.1f}s] killing the leading worker {holder} (SIGKILL)", flush=True
    )
    killed_at = time.monotonic()
    docker("kill", cid)
    takeover = float("nan")
    new_holder = ""
    while time.monotonic() - killed_at < args.lease + 15:
        now = stack.leader()
        if now is not None and now[0] != holder:
            takeover = time.monotonic() - killed_at
            new_holder = now[0]
            break
        time.sleep(0.25)
    print(f"[{time.monotonic() - t0:5.1f}s] standby {new_holder or '(none)'} leads", flush=True)

    remaining = args.seconds - (time.monotonic() - t0)
    if remaining > 0:
        time.sleep(remaining)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    elapsed = time.monotonic() - t0

    # The replica that stopped flushed its log on the way out; the other flushes every 0.25 s.
    logged = -1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logged = int(
            stack.sql(f"select count(*) from prediction_logs where user_id like '{tag}-%'")
        )
        if logged >= api.ok:
            break
        time.sleep(1)
    duplicates = int(
        stack.sql(
            "select count(*) - count(distinct request_id) from prediction_logs "
            f"where user_id like '{tag}-%'"
        )
    )

    window = (replica_down_from - 0.5, replica_down_until + 3.0)
    outside = [f for f in api.failures if not window[0] <= f[0] <= window[1]]
    lat = sorted(api.latencies)
    p99 = lat[int(0.99 * (len(lat) - 1))] * 1000 if lat else float("nan")
    checks = {
        "requests fail only while the replica dies": not outside,
        "standby takes over within the lease": takeover == takeover and takeover <= args.lease,
        "no prediction log lost (logged = successful)": logged == api.ok and duplicates == 0,
        "dashboard answers throughout": dash.sent > 0 and not dash.failures,
    }
    rows = [
        ("load", f"{args.clients} clients, {elapsed:.0f} s through the balancer"),
        ("requests sent", api.sent),
        ("successful responses", api.ok),
        ("failed requests", len(api.failures)),
        ("  of which while api1 died", len(api.failures) - len(outside)),
        ("api1 dying (s after start)", f"{replica_down_from:.1f} – {replica_down_until:.1f}"),
        ("throughput (req/s)", f"{api.ok / elapsed:.0f}"),
        ("latency p99 (ms)", f"{p99:.0f}"),
        ("prediction logs written", logged),
        ("duplicate log rows", duplicates),
        ("leader killed", holder),
        ("new leader", new_holder or "none"),
        ("takeover (s)", f"{takeover:.2f} (lease {args.lease:.0f} s)"),
        ("dashboard probes / failed", f"{dash.sent} / {len(dash.failures)}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 40))
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if outside:
        print(f"failures outside the window: {outside[:5]}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
