"""API throughput and latency on loopback, driven from a second process.

    .venv/bin/python -m bench.bench_api [--seconds 5] [--rounds 5] [--concurrency 8]

Starts ``python -m api`` (prediction logging on, SQLite registry) and a plain FastAPI app
returning a constant on the same machine, then drives them in turn, round after round, with
a load-generator process (asyncio keep-alive connections) sending 1,000 different users at
1,000 different places.
Targets (issue 7): ≥ 1,000 requests/s, p99 ≤ 25 ms, and ≥ 50 % of the plain endpoint's
throughput. It also checks that every successful response was logged.

    .venv/bin/python -m bench.bench_api --shadow 0.1 [--rounds 6]

instead drives one API process whose model has a staging version, with shadow scoring
(``api.shadow``) switched off and on (sampling 10 % of production's requests) in alternating
rounds (issue 21: p50 and throughput within noise of shadow off).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, median, percentile, scratch_registry, table

WARMUP = 50  # requests per round before timing starts

PLAIN_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

class Body(BaseModel):
    ratings: list[float]
    lat: float
    lng: float
    k: int = 10

@app.post("/recommend")
async def recommend(body: Body) -> dict:
    return {"ok": True}
"""


def request_bodies(n: int) -> list[bytes]:
    """Varied users: sparse 0–5 ratings, each at a random place of the catalogue moved by up
    to ~300 m, so no two requests rank the same neighbourhood for the same tastes."""
    from core.data import catalogue

    cat = catalogue.load()
    rng = random.Random(42)
    out = []
    for _ in range(n):
        share = rng.uniform(0.05, 0.6)
        ratings = [rng.randint(1, 5) if rng.random() < share else 0 for _ in range(29)]
        if not any(ratings):
            ratings[rng.randrange(29)] = 5
        place = rng.randrange(len(cat))
        body = {
            "ratings": ratings,
            "lat": round(float(cat.lat[place]) + rng.uniform(-0.0027, 0.0027), 6),
            "lng": round(float(cat.lng[place]) + rng.uniform(-0.0035, 0.0035), 6),
            "k": 10,
            "user_id": "",
        }
        out.append(json.dumps(body).encode())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drive(url: str, seconds: float, concurrency: int, key: str) -> dict:
    """Keep-alive HTTP/1.1 clients on raw asyncio streams (httpx would be the bottleneck)."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    bodies = request_bodies(1000)

    def request(user: str, n: int) -> bytes:
        body = bodies[n % len(bodies)].replace(b'"user_id": ""', f'"user_id": "{user}"'.encode())
        head = (
            f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def call(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, user: str, n: int
    ) -> int:
        writer.write(request(user, n))
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def worker(n: int, warmup: int) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in range(warmup):
            await call(reader, writer, f"warm{n}-{i}", i)
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            t = time.perf_counter()
            status = await call(reader, writer, f"w{n}-{i}", n * 7919 + i)
            latencies.append((time.perf_counter() - t) * 1000)
            failures += status != 200
        writer.close()

    warmups = [WARMUP // concurrency + (n < WARMUP % concurrency) for n in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(worker(n, warmups[n]) for n in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "failures": failures,
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "latencies": [round(x, 3) for x in latencies],
    }


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    parser.add_argument(
        "--shadow", type=float, metavar="RATE", help="compare shadow scoring off and on at RATE"
    )
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, key, _ = args.client
        print(json.dumps(asyncio.run(drive(url, args.seconds, args.concurrency, key))))
        return
    if args.shadow is not None:
        shadow_bench(args)
        return
    tmp = scratch_registry()
    from core import monitoring, registry
    from core.accounts.auth import SYSTEM
    from core.training import legacy

    d = ROOT / "data" / "planwise" / "legacy_model"
    v = legacy.import_legacy(
        actor=SYSTEM,
        model_file=d / "autoencoder.h5",
        scaler_file=d / "scaler.save",
        name="autoencoder",
    )
    registry.promote(
        actor=SYSTEM,
        model="autoencoder",
        version=v.version,
        stage="production",
        reason="test promotion",
    )
    env = dict(os.environ, API_KEYS="bench-key")
    (tmp / "plain_app.py").write_text(PLAIN_APP)
    api_name, plain_name = "planwise API (logging on)", "plain FastAPI endpoint"
    commands = {
        api_name: [sys.executable, "-m", "api", "--port", "{port}", "--workers", str(args.workers)],
        plain_name: [sys.executable, "-m", "uvicorn", "plain_app:app", "--port", "{port}"]
        + ["--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
    }
    servers, ports = {}, {}
    rounds: dict[str, list[dict]] = {api_name: [], plain_name: []}
    try:
        for name, cmd in commands.items():
            ports[name] = free_port()
            servers[name] = subprocess.Popen(
                [c.format(port=ports[name]) for c in cmd],
                cwd=tmp if name == plain_name else ROOT,
                env=env,
            )
        for port in ports.values():
            wait_up(port)
        # The two servers take turns, back to back: this machine's speed drifts by tens of
        # per cent over a minute, and a ratio of two runs minutes apart measured the drift.
        for _ in range(args.rounds):
            for name in (api_name, plain_name):
                before = cpu_seconds(servers[name].pid)
                result = drive_round(ports[name], args, env)
                result["cpu_us"] = (cpu_seconds(servers[name].pid) - before) / result["requests"]
                rounds[name].append(result)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    logged = monitoring.count_logs("autoencoder")
    summary = {name: pooled(r) for name, r in rounds.items()}
    rows = [
        [
            name,
            r["requests"],
            r["failures"],
            f"{r['rps']:.0f}",
            " / ".join(f"{x['rps']:.0f}" for x in rounds[name]),
            f"{r['p50']:.1f} ms",
            f"{r['p99']:.1f} ms",
            f"{r['cpu_us'] * 1e6:.0f} µs",
        ]
        for name, r in summary.items()
    ]
    headers = ["server", "requests", "failures", "requests/s (median)", "per round"]
    print(table(rows, [*headers, "p50", "p99", "server CPU a request (all its processes)"]))
    api = summary[api_name]
    shares = [
        a["rps"] / b["rps"] for a, b in zip(rounds[api_name], rounds[plain_name], strict=True)
    ]
    share = median(shares)
    expected_logs = api["requests"] - api["failures"] + WARMUP * args.rounds
    print(
        table(
            [
                ["throughput ≥ 1,000 req/s", f"{api['rps']:.0f}", api["rps"] >= 1000],
                ["p99 ≤ 25 ms", f"{api['p99']:.1f} ms", api["p99"] <= 25],
                [
                    "≥ 50 % of plain FastAPI (median of rounds)",
                    f"{share:.0%} ({', '.join(f'{x:.0%}' for x in shares)})",
                    share >= 0.5,
                ],
                [
                    f"logged = successful responses (+{WARMUP} warm-up a round)",
                    f"{logged} vs {expected_logs}",
                    logged == expected_logs,
                ],
            ],
            ["target", "measured", "met"],
        )
    )


def shadow_bench(args: argparse.Namespace) -> None:
    """One API process, shadow scoring off and on in alternating rounds (the same process,
    so the comparison is not one of two processes' luck)."""
    import httpx

    scratch_registry()
    from core import registry
    from core.accounts.auth import SYSTEM
    from core.rollout import shadow
    from core.training import legacy

    d = ROOT / "data" / "planwise" / "legacy_model"
    versions = [
        legacy.import_legacy(
            actor=SYSTEM,
            model_file=d / "autoencoder.h5",
            scaler_file=d / "scaler.save",
            name="autoencoder",
        ).version
        for _ in range(2)
    ]
    registry.promote(
        actor=SYSTEM,
        model="autoencoder",
        version=versions[0],
        stage="production",
        reason="test promotion",
    )
    registry.promote(
        actor=SYSTEM,
        model="autoencoder",
        version=versions[1],
        stage="staging",
        reason="test promotion",
    )
    env = dict(os.environ, API_KEYS="bench-key")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port)], cwd=ROOT, env=env)
    off, on = "shadow off", f"shadow on ({args.shadow:.0%} sampled)"
    rounds: dict[str, list[dict]] = {off: [], on: []}
    try:
        wait_up(port)
        for i in range(args.rounds):
            pair = ((off, 0.0), (on, args.shadow))
            for name, rate in pair if i % 2 == 0 else pair[::-1]:  # order effects cancel
                shadow.set_rate(actor=SYSTEM, model="autoencoder", rate=rate)
                time.sleep(2.5)  # the API re-reads the registry every second
                before = cpu_seconds(server.pid)
                result = drive_round(port, args, env)
                result["cpu_us"] = (cpu_seconds(server.pid) - before) / result["requests"]
                rounds[name].append(result)
        health = httpx.get(
            f"http://127.0.0.1:{port}/health", headers={"X-API-Key": "bench-key"}
        ).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {name: pooled(r) for name, r in rounds.items()}
    print(
        table(
            [
                [
                    name,
                    r["requests"],
                    r["failures"],
                    f"{r['rps']:.0f}",
                    " / ".join(f"{x['rps']:.0f}" for x in rounds[name]),
                    f"{r['p50']:.2f} ms",
                    " / ".join(f"{percentile(x['latencies'], 50):.2f}" for x in rounds[name]),
                    f"{r['p99']:.1f} ms",
                    f"{r['cpu_us'] * 1e6:.0f} µs",
                ]
                for name, r in summary.items()
            ],
            ["mode", "requests", "failures", "requests/s (median)", "per round", "p50",
             "p50 per round", "p99", "server CPU a request"],
        )
    )  # fmt: skip
    rps = [b["rps"] / a["rps"] for a, b in zip(rounds[off], rounds[on], strict=True)]
    p50 = [
        percentile(b["latencies"], 50) / percentile(a["latencies"], 50)
        for a, b in zip(rounds[off], rounds[on], strict=True)
    ]
    spread = [x["rps"] / median([y["rps"] for y in rounds[off]]) for x in rounds[off]]
    print(
        table(
            [
                ["throughput on / off (median of paired rounds)", f"{median(rps):.1%}",
                 ", ".join(f"{x:.0%}" for x in rps)],
                ["p50 on / off (median of paired rounds)", f"{median(p50):.1%}",
                 ", ".join(f"{x:.0%}" for x in p50)],
                ["noise: shadow-off rounds / their median", "",
                 ", ".join(f"{x:.0%}" for x in spread)],
                ["shadow samples sent / dropped", str(health["shadow"]["sent"]),
                 str(health["shadow"]["dropped"])],
                ["shadow scores stored", str(shadow.summary("autoencoder").requests), ""],
            ],
            ["comparison", "median", "rounds"],
        )
    )  # fmt: skip


def drive_round(port: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_api", "--seconds", str(args.seconds)]
        + ["--concurrency", str(args.concurrency), "--client"]
        + [f"http://127.0.0.1:{port}/recommend", "bench-key", "x"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def pooled(rounds: list[dict]) -> dict:
    """Requests and failures summed, the median round's throughput, latencies pooled."""
    latencies = [x for r in rounds for x in r["latencies"]]
    return {
        "requests": sum(r["requests"] for r in rounds),
        "failures": sum(r["failures"] for r in rounds),
        "rps": median([r["rps"] for r in rounds]),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "cpu_us": median([r["cpu_us"] for r in rounds]),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (the API's log writer, the
    workers of ``--workers``), all their threads (Linux /proc)."""
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])

    def in_tree(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parents.get(p, 0)
        return False

    return sum(t for p, t in ticks.items() if in_tree(p)) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
