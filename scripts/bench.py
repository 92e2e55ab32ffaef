#!/usr/bin/env python3
"""pasarela's benchmark: gateway overhead, floor, footprint and token economy.

Runs release builds of `pasarela` and of the examples `bench_frames`, `floor_server` and
`naive_proxy` (the hand-written peer pasarela is compared with) on
loopback, loads them with h2load (Debian's nghttp2-client) on both sides, and writes the
figures between the result markers of docs/benchmarks.md (the prose around them is kept).

    scripts/bench.py                  # build, run (about 15 minutes), write docs/benchmarks.md
    scripts/bench.py --seconds 3      # shorter points
    scripts/bench.py --no-build --no-write --keep
    scripts/bench.py --part ledger    # only the money ledger's cost (about 2 minutes)

Every figure is reported beside its pair measured in the same run, as a ratio, because
these machines are noisy; timed goals belong here, never in the tests. Python 3 stdlib only.
"""

import argparse
import datetime
import http.client
import http.server
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:begin (written by scripts/bench.py) -->"
END = "<!-- bench:end -->"
LEDGER_BEGIN = "<!-- bench-ledger:begin (written by scripts/bench.py) -->"
LEDGER_END = "<!-- bench-ledger:end -->"

INSTALL_H2LOAD = ["apt-get", "install", "-y", "--no-install-recommends", "nghttp2-client"]

# The public dev credentials of the sandbox (docs/sandbox.md) and the published dev-only
# HS256 secret that `pasarela token` signs with (docs/auth.md); `serve` accepts it only
# because this configuration sets allow_hs256.
BCS_CLIENT = ("sandbox-bcs-client", "sandbox-bcs-secret")
KIBAN_API_KEY = "sandbox-kiban-api-key"
DAVIPLATA_CLIENT = ("sandbox-daviplata-client", "sandbox-daviplata-secret")
DEV_HS256 = "pasarela-dev-only-hs256-secret-never-use-in-production"

GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]
# Hop-by-hop or recomputed by h2load: not replayed on the direct calls.
NOT_REPLAYED = {"host", "content-length", "connection", "transfer-encoding"}

# Which benchmark case exercises which service, and which sandbox emulator it reaches.
GATEWAY_CASES = [
    ("security", "security_password_status", "bcs"),
    ("bureau", "bureau_password_expiration", "kiban"),
    ("recurring-payments", "payments_request_subscription", None),
]
FLOOR_CASE = "bureau_invalid_member"
INVALID_ARGUMENT = 3

GOALS = {
    "naive_throughput": 0.80,  # pasarela / naive proxy, no provider latency, c=16 and 64
    "latency_throughput": 0.95,  # pasarela / direct, 10 ms provider, c=64
    "added_p99_ms": {16: 1.0, 64: 2.0},  # pasarela - direct, 10 ms provider
    "floor": 0.90,  # pasarela refusal / minimal tonic server, c=16 and 64
    "idle_mib": 30.0,
    "serving_ms": 200.0,
    "tokens_per_lifetime": 1.0,
}


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_h2load():
    if shutil.which("h2load"):
        return
    log("h2load missing: installing Debian's nghttp2-client")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update"], check=True)
    subprocess.run(sudo + INSTALL_H2LOAD, check=True)


def build():
    log("building release binaries")
    subprocess.run(["cargo", "build", "--release", "-p", "pasarela-server"], cwd=ROOT, check=True)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "pasarela",
         "--example", "bench_frames", "--example", "floor_server", "--example", "naive_proxy",
         "--example", "bench_money"],
        cwd=ROOT, check=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the bench starts, stopped by pid when the bench ends."""

    def __init__(self, work):
        self.work = work
        self.running = []

    def start(self, name, args, env=None):
        out = open(self.work / f"{name}.log", "w")
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, cwd=self.work)
        self.running.append(process)
        return process

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.remove(process)

    def stop_all(self):
        for process in list(self.running):
            self.stop(process)


def wait_for_line(path, pattern, process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text(errors="replace"), re.MULTILINE)
        if match:
            return match
        if process.poll() is not None:
            raise RuntimeError(f"{path.name}: exited early:\n{path.read_text()}")
        time.sleep(0.02)
    raise RuntimeError(f"{path.name}: no line matching {pattern!r}")


def start_sandbox(procs, name, token_ttl_secs=None):
    args = [str(RELEASE / "pasarela"), "sandbox", "--pki-dir", str(procs.work / f"{name}-pki"),
            "--admin-port", "0", "--bcs-port", "0", "--kiban-port", "0", "--daviplata-port", "0"]
    if token_ttl_secs is not None:
        args += ["--daviplata-token-ttl-secs", str(token_ttl_secs)]
    process = procs.start(name, args)
    wait_for_line(procs.work / f"{name}.log", r"^daviplata_client_key=", process)
    lines = (procs.work / f"{name}.log").read_text().splitlines()
    urls = dict(line.split("=", 1) for line in lines if "=" in line)
    return process, urls


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def toml(table, prefix=""):
    """Nested dicts as TOML: scalars first, then sub-tables, lists of dicts as arrays."""
    scalars, arrays, subs = [], [], []
    for key, value in table.items():
        quoted = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
        if isinstance(value, dict):
            subs.append((quoted, value))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                arrays.append(f"\n[[{prefix}{quoted}]]")
                arrays.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
        else:
            scalars.append(f"{quoted} = {toml_value(value)}")
    lines = scalars + arrays
    for quoted, value in subs:
        lines.append(f"\n[{prefix}{quoted}]")
        lines.append(toml(value, f"{prefix}{quoted}."))
    return "\n".join(lines)


def serve_config(services, listen, admin, bcs=None, kiban=None, daviplata=None, margin=None,
                 idempotency=None):
    """`pasarela serve` as `pasarela dev` configures itself, but with a rate limit that
    admits the load (dev's policy is fixed at 50 calls/s per principal)."""
    config = {
        "services": services,
        "listen": f"127.0.0.1:{listen}",
        "admin_listen": f"127.0.0.1:{admin}",
        "shutdown": {"drain_delay": "0s", "drain_timeout": "5s"},
        "auth": {
            "issuer": "pasarela-dev",
            "audience": "pasarela",
            "allow_hs256": True,
            "hs256_secret": DEV_HS256,
            "superuser_scope": "*",
            # The published dev secret and superuser scope, on loopback: a bench, not a deploy.
            "insecure_dev_credentials": True,
            "methods": {"*": ["{method}"]},
            # Kept (not removed) so that the rate limiters' cost is measured too: the bench
            # checks one member's password over and over.
            "rate_limits": [{"name": "bench", "methods": ["*"],
                             "per_second": 1e9, "burst": 1000000000}],
            "secret_attempts": {"per_second": 1e9, "burst": 1000000000},
            "max_concurrent_calls_per_principal": 1000000,
        },
    }
    if "security" in services:
        config["security"] = {"base_url": bcs, "client_id": BCS_CLIENT[0],
                              "client_secret": BCS_CLIENT[1],
                              "access_token": "sandbox-bcs-token", "environment": "sandbox"}
    if "bureau" in services:
        config["bureau"] = {"base_url": kiban, "api_key": KIBAN_API_KEY,
                            "environment": "sandbox"}
    if "recurring-payments" in services:
        url, ca, cert, key = daviplata
        config["recurring_payments"] = {
            "base_url": url, "client_id": DAVIPLATA_CLIENT[0],
            "client_secret": DAVIPLATA_CLIENT[1],
            "payment_provider_id": "00000001",
            "environment": "sandbox",
            "outbound": {"http": {"ca_file": ca, "cert_file": cert, "key_file": key}},
        }
        if margin is not None:
            config["recurring_payments"]["token_refresh_margin"] = margin
        if idempotency is not None:
            # The bench plays the wallet holder: the lab OTP subscribes the charged wallet.
            config["recurring_payments"]["lab_otp_passthrough"] = True
            config["recurring_payments"]["idempotency"] = idempotency
    return toml(config) + "\n"


def daviplata_of(urls):
    return (urls["daviplata_url"], urls["daviplata_ca_cert"], urls["daviplata_client_cert"],
            urls["daviplata_client_key"])


class Serve:
    """One `pasarela serve` process."""

    def __init__(self, procs, name, services, **upstreams):
        self.procs = procs
        self.grpc = free_port()
        self.admin = free_port()
        config = procs.work / f"{name}.toml"
        config.write_text(serve_config(services, self.grpc, self.admin, **upstreams))
        self.started = time.monotonic()
        self.process = procs.start(name, [str(RELEASE / "pasarela"), "serve", "--config",
                                          str(config)])
        self.serving_after, self.poll_interval = wait_serving(self.admin, self.process,
                                                              self.started)

    @property
    def addr(self):
        return f"127.0.0.1:{self.grpc}"

    def rss(self, field):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024

    def calls(self):
        """`pasarela_rpc_calls` by (method, code), from the admin port."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics").read().decode()
        counts = {}
        for match in re.finditer(r"^pasarela_rpc_calls_total\{([^}]*)\} (\d+)", body, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            counts[(labels["method"], labels["code"])] = int(match.group(2))
        return counts

    def stop(self):
        self.procs.stop(self.process)


def wait_serving(admin, process, started, timeout=30.0):
    """Polls `pasarela health` as tightly as it can run; returns the time from `started`
    to the first SERVING answer and the mean time between polls."""
    polls = 0
    while time.monotonic() - started < timeout:
        polls += 1
        ok = subprocess.run([str(RELEASE / "pasarela"), "health", "--addr", f"127.0.0.1:{admin}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if ok:
            elapsed = time.monotonic() - started
            return elapsed, elapsed / polls
        if process.poll() is not None:
            raise RuntimeError(f"pasarela exited before serving (code {process.returncode})")
    raise RuntimeError("pasarela not SERVING in time")


def check(addr, token, frames, case, path, code, status_file=None):
    args = [str(RELEASE / "examples" / "bench_frames"), "check", addr, token,
            str(frames / f"{case}.bin"), path, str(code)]
    if status_file:
        args.append(str(status_file))
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


class Capture(http.server.ThreadingHTTPServer):
    """A forwarding proxy in front of one emulator: records what pasarela sends, so that
    the direct calls replay exactly those headers, query and body."""

    daemon_threads = True

    def __init__(self, upstream):
        self.upstream = upstream
        self.seen = []
        super().__init__(("127.0.0.1", 0), CaptureHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class CaptureHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in NOT_REPLAYED]
        self.server.seen.append({"method": self.command, "path": self.path,
                                 "headers": headers, "body": body})
        host = self.server.upstream.split("//", 1)[1]
        upstream = http.client.HTTPConnection(host, timeout=10)
        upstream.request(self.command, self.path, body=body or None, headers=dict(headers))
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in NOT_REPLAYED:
                self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = forward
    do_POST = forward
    do_PUT = forward


def capture_requests(procs, urls, token, frames, paths):
    """The provider request pasarela makes for each gateway case, as pasarela sent it."""
    proxies = {"bcs": Capture(urls["bcs_url"]), "kiban": Capture(urls["kiban_url"])}
    serve = Serve(procs, "capture", ["security", "bureau"],
                  bcs=proxies["bcs"].url, kiban=proxies["kiban"].url)
    captured = {}
    for _, case, provider in GATEWAY_CASES:
        if provider is None:
            continue
        check(serve.addr, token, frames, case, paths[case], 0)
        captured[case] = proxies[provider].seen[-1]
    serve.stop()
    for proxy in proxies.values():
        proxy.shutdown()
    return captured


def h2load(name, work, url, concurrency, seconds, headers, data=None, h1=False):
    """One load point; requests/s from h2load, percentiles from its per-request log."""
    log_file = work / f"{name}.tsv"
    args = ["h2load", "-D", str(seconds), "--warm-up-time", "1", "-c", str(concurrency),
            "-m", "1", "--log-file", str(log_file)]
    if h1:
        args.append("--h1")
    for header in headers:
        args += ["-H", header]
    if data is not None:
        args += ["-d", str(data)]
    args.append(url)
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    (work / f"{name}.out").write_text(output)
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1))
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored", output)
    durations = sorted(int(line.split("\t")[2]) for line in log_file.read_text().splitlines()
                       if line.split("\t")[1] == "200")
    return {"rps": rps, "done": int(counts.group(2)), "failed": int(counts.group(4)),
            "errored": int(counts.group(5)), "p50_ms": percentile(durations, 50),
            "p99_ms": percentile(durations, 99)}


def percentile(sorted_us, p):
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_us:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_us)))
    return sorted_us[rank - 1] / 1000


def grpc_point(name, work, addr, path, token, frame, concurrency, seconds):
    return h2load(name, work, f"http://{addr}{path}", concurrency, seconds,
                  GRPC_HEADERS + [f"authorization: Bearer {token}"], data=frame)


def check_direct(url, request):
    """The captured request, replayed once, must succeed as it did for pasarela."""
    host, path = url.split("//", 1)[1], request["path"]
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.request(request["method"], path, body=request["body"] or None,
                       headers=dict(request["headers"]))
    status = connection.getresponse().status
    connection.close()
    if status != 200:
        raise RuntimeError(f"direct {request['method']} {path} answered {status}")


def direct_point(name, work, urls, provider, request, concurrency, seconds):
    check_direct(urls[f"{provider}_url"], request)
    data = None
    if request["body"]:
        data = work / f"{name}.body"
        data.write_bytes(request["body"])
    headers = [f"{k}: {v}" for k, v in request["headers"]]
    return h2load(name, work, urls[f"{provider}_url"] + request["path"], concurrency, seconds,
                  headers, data=data, h1=True)


def not_ok(serve, before, method, expected="OK"):
    """Calls of `method` since `before` that pasarela answered with another code."""
    after = serve.calls()
    return sum(n - before.get(key, 0) for key, n in after.items()
               if key[0] == method and key[1] != expected)


def sandbox_faults(urls, latency_ms):
    """Every Banco Caja Social and Kiban call answered `latency_ms` later (0: none)."""
    urllib.request.urlopen(urllib.request.Request(urls["admin_url"] + "/faults",
                                                  method="DELETE")).close()
    for provider in ("bcs", "kiban") if latency_ms else ():
        rule = {"provider": provider, "fault": {"type": "latency", "ms": latency_ms}}
        urllib.request.urlopen(urllib.request.Request(
            urls["admin_url"] + "/faults", data=json.dumps(rule).encode(),
            headers={"content-type": "application/json"}, method="POST")).close()


def cpu_seconds(process):
    """User plus system CPU time a process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_point(process, name, work, addr, path, token, frame, concurrency, seconds):
    """A gRPC point and the CPU the server spent on it, per call (warm-up included, so a
    slight overestimate alike for every server)."""
    before = cpu_seconds(process)
    point = grpc_point(name, work, addr, path, token, frame, concurrency, seconds)
    point["cpu_us"] = (cpu_seconds(process) - before) * 1e6 / max(point["done"], 1)
    return point


def start_naive(procs, urls):
    """The hand-written peer, in front of the same emulators."""
    args = [str(RELEASE / "examples" / "naive_proxy"), f"127.0.0.1:{free_port()}",
            urls["bcs_url"], urls["kiban_url"], urls["daviplata_url"],
            urls["daviplata_ca_cert"], urls["daviplata_client_cert"],
            urls["daviplata_client_key"]]
    process = procs.start("naive", args)
    addr = wait_for_line(procs.work / "naive.log", r"^naive: gRPC on (\S+)", process).group(1)
    return process, addr


def run_gateway(procs, urls, token, frames, paths, captured, args):
    serve = Serve(procs, "gateway", ["security", "bureau", "recurring-payments"],
                  bcs=urls["bcs_url"], kiban=urls["kiban_url"], daviplata=daviplata_of(urls))
    naive = start_naive(procs, urls)
    rows = []
    for latency in (0, args.provider_latency_ms):
        sandbox_faults(urls, latency)
        for service, case, provider in GATEWAY_CASES:
            if latency and not provider:
                continue
            rows += gateway_rows(procs, serve, naive, urls, token, frames, paths[case],
                                 captured, args, service, case, provider, latency)
    sandbox_faults(urls, 0)
    procs.stop(naive[0])
    floor_rows = run_floor(procs, serve, token, frames, paths, args)
    serve.stop()
    return rows, floor_rows


def interleaved(rounds, measures):
    """Each measure taken `rounds` times in turn (a, b, c, a, b, c...), so that the shared
    machine's drifts fall on every system alike; per system, the round of median
    throughput is kept, with the median CPU per call, every round's req/s, and the
    failures of all rounds."""
    taken = [[] for _ in measures]
    for round_ in range(rounds):
        for points, measure in zip(taken, measures):
            points.append(measure(round_))
    return [median_round(points) for points in taken]


def median_round(points):
    point = dict(sorted(points, key=lambda p: p["rps"])[len(points) // 2])
    point["rounds_rps"] = [p["rps"] for p in points]
    for key in ("failed", "errored", "grpc_not_ok", "failures"):
        if key in point:
            point[key] = sum(p[key] for p in points)
    if "cpu_us" in point:
        point["cpu_us"] = sorted(p["cpu_us"] for p in points)[len(points) // 2]
    return point


def gateway_rows(procs, serve, naive, urls, token, frames, path, captured, args, service,
                 case, provider, latency):
    """One service at each concurrency: through pasarela, through the naive proxy, and
    straight to the emulator, in interleaved rounds."""
    check(serve.addr, token, frames, case, path, 0)
    naive_process, naive_addr = naive
    check(naive_addr, token, frames, case, path, 0)
    frame = frames / f"{case}.bin"
    rows = []
    for c in args.concurrency:
        log(f"gateway {service} c={c} provider latency {latency} ms")
        name = f"{case}-l{latency}-c{c}"

        def gateway(round_):
            before = serve.calls()
            point = measured_point(serve.process, f"{name}-r{round_}", procs.work, serve.addr,
                                   path, token, frame, c, args.seconds)
            point["grpc_not_ok"] = not_ok(serve, before, path)
            return point

        def hand_written(round_):
            return measured_point(naive_process, f"{name}-naive-r{round_}", procs.work,
                                  naive_addr, path, token, frame, c, args.seconds)

        def direct(round_):
            return direct_point(f"{name}-direct-r{round_}", procs.work, urls, provider,
                                captured[case], c, args.seconds)

        measures = [gateway, hand_written] + ([direct] if provider else [])
        points = interleaved(args.rounds, measures)
        rows.append({"service": service, "case": case, "concurrency": c, "latency_ms": latency,
                     "gateway": points[0], "naive": points[1],
                     "direct": points[2] if provider else None})
    return rows


def grpc_lines(path):
    return [line for line in path.read_text().splitlines() if line.startswith("grpc-")]


def run_floor(procs, serve, token, frames, paths, args):
    path = paths[FLOOR_CASE]
    trailers = procs.work / "refusal.trailers"
    check(serve.addr, token, frames, FLOOR_CASE, path, INVALID_ARGUMENT, trailers)
    floor = procs.start("floor", [str(RELEASE / "examples" / "floor_server"),
                                  f"127.0.0.1:{free_port()}", str(trailers)])
    addr = wait_for_line(procs.work / "floor.log", r"^floor: gRPC on (\S+)", floor).group(1)
    check(addr, token, frames, FLOOR_CASE, path, INVALID_ARGUMENT, procs.work / "floor.trailers")
    same = grpc_lines(procs.work / "floor.trailers") == grpc_lines(trailers)
    rows = []
    frame = frames / f"{FLOOR_CASE}.bin"
    for c in args.concurrency:
        log(f"floor c={c}")

        def bare(round_):
            return grpc_point(f"floor-minimal-c{c}-r{round_}", procs.work, addr, path, token,
                              frame, c, args.seconds)

        def refused(round_):
            before = serve.calls()
            point = grpc_point(f"floor-pasarela-c{c}-r{round_}", procs.work, serve.addr, path,
                               token, frame, c, args.seconds)
            point["grpc_not_ok"] = not_ok(serve, before, path, "INVALID_ARGUMENT")
            return point

        minimal, gateway = interleaved(args.rounds, [bare, refused])
        rows.append({"concurrency": c, "pasarela": gateway, "minimal": minimal,
                     "same_trailers": same})
    procs.stop(floor)
    return rows


def run_footprint(procs, urls, token, frames, paths, args):
    rows = []
    for service, case, _ in GATEWAY_CASES:
        starts = []
        for attempt in range(args.starts):
            serve = Serve(procs, f"footprint-{service}-{attempt}", [service], bcs=urls["bcs_url"],
                          kiban=urls["kiban_url"], daviplata=daviplata_of(urls))
            starts.append((serve.serving_after, serve.poll_interval))
            if attempt < args.starts - 1:
                serve.stop()
        log(f"footprint {service}")
        time.sleep(2)
        idle = serve.rss("VmRSS")
        check(serve.addr, token, frames, case, paths[case], 0)
        load = grpc_point(f"footprint-{service}-c256", procs.work, serve.addr, paths[case],
                          token, frames / f"{case}.bin", 256, args.seconds)
        rows.append({"service": service, "idle_mib": idle, "hwm_mib": serve.rss("VmHWM"),
                     "load": load,
                     "serving_ms": [s * 1000 for s, _ in starts],
                     "poll_ms": statistics.mean(p for _, p in starts) * 1000})
        serve.stop()
    return rows


def sandbox_counters(urls):
    with urllib.request.urlopen(urls["admin_url"] + "/daviplata/counters") as answer:
        return json.load(answer)


def run_tokens(procs, token, frames, paths, args):
    """Daviplata token requests under sustained load, against a short token lifetime."""
    ttl, margin = args.token_ttl, args.token_margin
    sandbox, urls = start_sandbox(procs, "sandbox-tokens", token_ttl_secs=ttl)
    serve = Serve(procs, "tokens", ["recurring-payments"], daviplata=daviplata_of(urls),
                  margin=f"{margin}s")
    case = "payments_request_subscription"
    before = sandbox_counters(urls)["tokens_issued"]
    check(serve.addr, token, frames, case, paths[case], 0)
    started = time.monotonic()
    load = grpc_point("tokens-c16", procs.work, serve.addr, paths[case], token,
                      frames / f"{case}.bin", 16, args.token_seconds)
    elapsed = time.monotonic() - started
    issued = sandbox_counters(urls)["tokens_issued"] - before
    serve.stop()
    procs.stop(sandbox)
    lifetime = ttl - margin
    needed = math.ceil(elapsed / lifetime)
    return {"ttl_s": ttl, "margin_s": margin, "elapsed_s": elapsed, "issued": issued,
            "needed": needed, "calls": load["done"], "rps": load["rps"],
            "per_lifetime": issued / needed}


RECORD_KEY = "the bench's idempotency record key, 32 bytes or more"


def money_point(procs, name, serve, token, concurrency, seconds):
    """Charges under fresh keys: each a claim and an outcome in the ledger."""
    out = subprocess.run([str(RELEASE / "examples" / "bench_money"), "load", serve.addr, token,
                          str(concurrency), str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    point = json.loads(re.search(r"^load (\{.*\})$", out, re.M).group(1))
    log(f"{name}: {point['rps']:.0f} charges/s, p99 {point['p99_ms']:.2f} ms, "
        f"{point['failures']} failed")
    return point


def run_ledger(procs, token, args):
    """Money calls with the memory store and with the PostgreSQL ledger (a TLS primary and
    its synchronous standby on loopback, as the tests run them), in interleaved rounds."""
    sandbox, urls = start_sandbox(procs, "sandbox-ledger")
    ledger = procs.start("ledger", [str(RELEASE / "examples" / "bench_money"), "ledger"])
    found = wait_for_line(procs.work / "ledger.log", r"^ledger (\{.*\})$", ledger, timeout=60)
    database = json.loads(found.group(1))
    stores = {
        # Room for every charge of the run: each holds its key and its transaction id.
        "memory": {"store": "memory", "max_keys": 50_000_000},
        "postgres": {"store": "postgres", "record_key": RECORD_KEY,
                     "postgres": {**database, "schema": "recurring_payments",
                                  "migrate_at_start": True}},
    }
    serves = {kind: Serve(procs, f"money-{kind}", ["recurring-payments"],
                          daviplata=daviplata_of(urls), idempotency=store)
              for kind, store in stores.items()}
    subprocess.run([str(RELEASE / "examples" / "bench_money"), "subscribe",
                    serves["memory"].addr, token], check=True)
    rows = []
    for concurrency in args.ledger_concurrency:
        measures = [lambda round_, kind=kind, serve=serve: money_point(
            procs, f"{kind}-c{concurrency}-r{round_}", serve, token, concurrency, args.seconds)
            for kind, serve in serves.items()]
        memory, postgres = interleaved(args.rounds, measures)
        rows.append({"c": concurrency, "memory": memory, "postgres": postgres})
    for serve in serves.values():
        serve.stop()
    procs.stop(ledger)
    procs.stop(sandbox)
    return rows


def ledger_report(rows, command):
    out = [
        f"Run of {datetime.date.today().isoformat()}: `{command}`. Charges under fresh "
        "idempotency keys through `pasarela serve` (recurring payments) to the sandbox, with "
        "the in-process store and with the PostgreSQL ledger (TLS, a primary whose every "
        "commit waits for its synchronous standby, both on this machine's loopback and "
        "disk). Rounds interleaved; the median round shown, every round's charges/s beside "
        "it.",
        "",
        "| c | memory charges/s | p50 ms | p99 ms | PostgreSQL charges/s | p50 ms | p99 ms "
        "| PostgreSQL / memory | added p99 ms | failed | rounds (memory; PostgreSQL) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        m, p = row["memory"], row["postgres"]
        rounds = (", ".join(f"{r:.0f}" for r in m["rounds_rps"]) + "; "
                  + ", ".join(f"{r:.0f}" for r in p["rounds_rps"]))
        out.append(
            f"| {row['c']} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} "
            f"| {p['rps']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} "
            f"| {p['rps'] / m['rps']:.2f} | {p['p99_ms'] - m['p99_ms']:+.2f} "
            f"| {m['failures'] + p['failures']} | {rounds} |")
    return "\n".join(out)


def machine():
    cpu = re.search(r"Model name:\s+(.*)", subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout)
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu.group(1).strip() if cpu else "unknown",
            "memory_gib": int(memory.group(1)) / 1024 / 1024, "kernel": platform.release(),
            "h2load": h2, "rustc": rustc, "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_start": os.getloadavg()[0]}


def verdict(ok):
    return "met" if ok else "**missed**"


def fmt_point(point):
    return f"{point['rps']:.0f} | {point['p50_ms']:.2f} | {point['p99_ms']:.2f}"


def round_ratios(a, b):
    """The req/s ratio of two interleaved points, round by round."""
    return ", ".join(f"{x / y:.2f}" for x, y in zip(a["rounds_rps"], b["rounds_rps"]))


def report(results, command):
    m = results["machine"]
    out = [
        f"Run of {m['date']}, commit `{m['commit']}`: `{command}`.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']:.1f} GiB, Linux "
        f"{m['kernel']}; {m['rustc']}; {m['h2load']}. Load average (1 min) "
        f"{m['loadavg_start']:.2f} at the start, {m['loadavg_end']:.2f} at the end "
        f"(the machine is shared; figures are only comparable within one run).",
        "",
        f"Points of {results['seconds']} s after 1 s of warm-up, one h2load thread, "
        "`-m 1` (one call per connection at a time), concurrency = connections. Compared "
        f"points (pasarela, naive, direct; pasarela, minimal tonic) run in {results['rounds']} "
        "interleaved rounds; each shows its median round (CPU per call: the median of the "
        "rounds), and the ratio of each round is listed beside it.",
        "",
        "### Gateway overhead",
        "",
        "Naive = `tools/bench/naive_proxy.rs`, the tonic + reqwest + serde handler a team would "
        "write by hand (no auth, validation, metrics, audit, retries, idempotency), loaded "
        "like pasarela. Direct = h2load over HTTP/1.1 to the emulator with the request "
        "pasarela sent (captured); provider latency = a sandbox latency fault on every path "
        "alike. "
        "Non-OK = pasarela / direct, over all rounds: h2load failures, plus, for pasarela, "
        "calls its own metrics counted with a code other than OK (h2load counts any HTTP 200 "
        "as a success).",
        "",
        "| service | provider latency ms | c | pasarela req/s | p50 ms | p99 ms "
        "| naive req/s | p50 ms | p99 ms | pasarela / naive "
        "| direct req/s | p50 ms | p99 ms | throughput ratio | added p99 ms | non-OK |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["gateway"]:
        g, d, n = row["gateway"], row["direct"], row["naive"]
        naive = f"{fmt_point(n)} | {g['rps'] / n['rps']:.2f}"
        failures = g["grpc_not_ok"] + g["failed"] + g["errored"]
        if d:
            ratio = g["rps"] / d["rps"]
            added = g["p99_ms"] - d["p99_ms"]
            direct = f"{fmt_point(d)} | {ratio:.2f} | {added:+.2f}"
            failures = f"{failures} / {d['failed'] + d['errored']}"
        else:
            direct = "— | — | — | — | —"
        out.append(f"| {row['service']} | {row['latency_ms']} | {row['concurrency']} "
                   f"| {fmt_point(g)} | {naive} | {direct} | {failures} |")
    out += [
        "",
        "CPU per call: user + system time of the server process over the point "
        "(`/proc/PID/stat`, warm-up included) divided by the calls h2load completed; "
        "steadier than throughput on a shared machine, and what a change to pasarela's own "
        "work moves.",
        "",
        "| service | provider latency ms | c | pasarela CPU µs/call | naive CPU µs/call "
        "| pasarela / naive | req/s pasarela / naive, each round |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["gateway"]:
        g, n = row["gateway"], row["naive"]
        out.append(f"| {row['service']} | {row['latency_ms']} | {row['concurrency']} "
                   f"| {g['cpu_us']:.0f} | {n['cpu_us']:.0f} | {g['cpu_us'] / n['cpu_us']:.1f} "
                   f"| {round_ratios(g, n)} |")
    out += [
        "",
        "### Floor",
        "",
        "The same invalid GetPasswordExpiration (refused by validation, INVALID_ARGUMENT, "
        "before any provider call) against pasarela and against `tools/bench/floor_server.rs`. "
        "Other answers, over all rounds = h2load failures plus pasarela answers other than "
        "INVALID_ARGUMENT.",
        "",
        "| c | pasarela req/s | p50 ms | p99 ms | minimal tonic req/s | p50 ms | p99 ms "
        "| ratio | each round | other answers |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in results["floor"]:
        p, f = row["pasarela"], row["minimal"]
        out.append(f"| {row['concurrency']} | {fmt_point(p)} | {fmt_point(f)} "
                   f"| {p['rps'] / f['rps']:.2f} | {round_ratios(p, f)} "
                   f"| {p['grpc_not_ok'] + p['failed'] + p['errored']} |")
    same = all(row["same_trailers"] for row in results["floor"])
    out += [
        "",
        "The minimal server answers the very trailers pasarela answered "
        f"(`grpc-status`, `grpc-message`, `grpc-status-details-bin`): "
        f"{'identical' if same else 'NOT identical'}.",
        "",
        "### Footprint (one service per process)",
        "",
        "| service | RSS idle MiB | peak RSS (VmHWM) at c=256 MiB | c=256 req/s | p99 ms "
        "| start to SERVING ms (each start) | poll period ms |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in results["footprint"]:
        starts = ", ".join(f"{s:.0f}" for s in row["serving_ms"])
        out.append(f"| {row['service']} | {row['idle_mib']:.1f} | {row['hwm_mib']:.1f} "
                   f"| {row['load']['rps']:.0f} | {row['load']['p99_ms']:.2f} | {starts} "
                   f"| {row['poll_ms']:.1f} |")
    t = results["tokens"]
    out += [
        "",
        "### Token economy (Daviplata)",
        "",
        f"Token lifetime {t['ttl_s']} s, refreshed {t['margin_s']} s early (so one token "
        f"serves {t['ttl_s'] - t['margin_s']} s); {t['calls']} RequestSubscription calls at "
        f"c=16 over {t['elapsed_s']:.1f} s ({t['rps']:.0f} req/s): {t['issued']} token "
        f"requests where {t['needed']} lifetimes elapsed, **{t['per_lifetime']:.2f} token "
        "requests per token lifetime**.",
        "",
        "### Against the goals",
        "",
        "| goal | measured | verdict |",
        "| --- | --- | --- |",
    ]
    out += goal_rows(results)
    return "\n".join(out)


def goal_rows(results):
    rows = []
    for row in results["gateway"]:
        if row["latency_ms"] or row["concurrency"] not in (16, 64):
            continue
        ratio = row["gateway"]["rps"] / row["naive"]["rps"]
        goal = GOALS["naive_throughput"]
        rows.append(f"| throughput ≥ {goal:.0%} of the naive proxy, {row['service']} "
                    f"c={row['concurrency']}, no provider latency | {ratio:.0%} "
                    f"| {verdict(ratio >= goal)} |")
    paired = [r for r in results["gateway"] if r["direct"] and r["latency_ms"]]
    for row in paired:
        c = row["concurrency"]
        if c in GOALS["added_p99_ms"]:
            goal = GOALS["added_p99_ms"][c]
            added = row["gateway"]["p99_ms"] - row["direct"]["p99_ms"]
            rows.append(f"| added p99 ≤ {goal} ms at c={c}, {row['service']}, provider latency "
                        f"{row['latency_ms']} ms | {added:+.2f} ms | {verdict(added <= goal)} |")
        if c == 64:
            goal = GOALS["latency_throughput"]
            ratio = row["gateway"]["rps"] / row["direct"]["rps"]
            rows.append(f"| throughput ≥ {goal:.0%} of direct at c=64, {row['service']}, "
                        f"provider latency {row['latency_ms']} ms | {ratio:.0%} "
                        f"| {verdict(ratio >= goal)} |")
    for row in results["floor"]:
        if row["concurrency"] not in (16, 64):
            continue
        ratio = row["pasarela"]["rps"] / row["minimal"]["rps"]
        rows.append(f"| floor ≥ {GOALS['floor']:.0%} of minimal tonic, c={row['concurrency']} "
                    f"| {ratio:.0%} | {verdict(ratio >= GOALS['floor'])} |")
    for row in results["footprint"]:
        rows.append(f"| idle RSS < {GOALS['idle_mib']:.0f} MiB, {row['service']} "
                    f"| {row['idle_mib']:.1f} MiB | {verdict(row['idle_mib'] < GOALS['idle_mib'])} |")
        worst = max(row["serving_ms"])
        rows.append(f"| start to SERVING < {GOALS['serving_ms']:.0f} ms, {row['service']} "
                    f"| median {statistics.median(row['serving_ms']):.0f} ms, worst {worst:.0f} ms "
                    f"| {verdict(worst < GOALS['serving_ms'])} |")
    t = results["tokens"]
    rows.append(f"| token requests per lifetime = 1 | {t['per_lifetime']:.2f} "
                f"| {verdict(t['per_lifetime'] <= GOALS['tokens_per_lifetime'])} |")
    return rows


def write_between(text, begin, end):
    """Replaces what docs/benchmarks.md holds between `begin` and `end` with `text`."""
    doc = DOC.read_text()
    if begin not in doc or end not in doc:
        raise RuntimeError(f"{DOC} has no {begin} ... {end} markers")
    head, rest = doc.split(begin, 1)
    tail = rest.split(end, 1)[1]
    DOC.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="measured seconds per point")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of each compared point (the median is kept)")
    parser.add_argument("--provider-latency-ms", type=int, default=10,
                        help="latency fault of the second gateway pass (a provider's own time)")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 16, 64])
    parser.add_argument("--starts", type=int, default=5, help="cold starts per service")
    parser.add_argument("--token-ttl", type=int, default=5, help="Daviplata token lifetime, s")
    parser.add_argument("--token-margin", type=int, default=1, help="refresh margin, s")
    parser.add_argument("--token-seconds", type=int, default=20, help="token economy load, s")
    parser.add_argument("--no-build", action="store_true", help="use the existing release build")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (logs, h2load output, configurations)")
    parser.add_argument("--part", choices=["all", "ledger"], default="all",
                        help="everything, or only the money ledger's cost")
    parser.add_argument("--ledger-concurrency", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 16], help="concurrent callers of the ledger points")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 1:
        parser.error("--rounds and --seconds must be at least 1")
    return args


def run_all(results, args, procs, token):
    frames = procs.work / "frames"
    listing = subprocess.run([str(RELEASE / "examples" / "bench_frames"), "write", str(frames)],
                             capture_output=True, text=True, check=True)
    paths = dict(line.split(" ", 1) for line in listing.stdout.splitlines())
    sandbox, urls = start_sandbox(procs, "sandbox")
    captured = capture_requests(procs, urls, token, frames, paths)
    results["gateway"], results["floor"] = run_gateway(procs, urls, token, frames, paths,
                                                       captured, args)
    results["footprint"] = run_footprint(procs, urls, token, frames, paths, args)
    procs.stop(sandbox)
    results["tokens"] = run_tokens(procs, token, frames, paths, args)


def main():
    args = parse_args()
    command = "scripts/bench.py " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "scripts/bench.py"
    ensure_h2load()
    if not args.no_build:
        build()
    results = {"machine": machine(), "seconds": args.seconds, "rounds": args.rounds}
    work = Path(tempfile.mkdtemp(prefix="pasarela-bench-"))
    log(f"work folder: {work}")
    procs = Processes(work)
    token = subprocess.run([str(RELEASE / "pasarela"), "token", "--scope", "*", "--ttl", "2h"],
                           capture_output=True, text=True, check=True).stdout.strip()
    try:
        if args.part == "all":
            run_all(results, args, procs, token)
        results["ledger"] = run_ledger(procs, token, args)
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(work)
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    parts = [(ledger_report(results["ledger"], command), LEDGER_BEGIN, LEDGER_END)]
    if args.part == "all":
        parts.insert(0, (report(results, command), BEGIN, END))
    for text, begin, end in parts:
        print(text)
        if not args.no_write:
            write_between(text, begin, end)
    if not args.no_write:
        log(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
