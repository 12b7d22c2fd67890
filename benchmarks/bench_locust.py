"""How many requests per second Locust drives against one mock endpoint.

One GET on the CRM mock (``/services/data/v60.0/sobjects/Account/{Id}``), served by
``twin mocks serve --only crm`` (uvicorn, its own process, injected latency off), hammered by
FastHttpUsers with no wait time: first one Locust process, then a master with two workers.
Each run lasts 10 s. Prints requests/s and the ratio to a target of 2,000 req/s.

    python benchmarks/bench_locust.py [--seconds 10] [--users 20]

Users per process default to 50: a user with no wait time sends its next request when the answer
comes, so req/s = users / latency and too few users measure the latency, not Locust.
Numbers depend on the machine (the mock and Locust share its cores): read them as "can this box
drive the load I want", not as a property of the twin.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS = 2000.0

LOCUSTFILE = """
import os
from locust import FastHttpUser, constant, task

PATH = "/services/data/v60.0/sobjects/Account/" + os.environ["BENCH_ACCOUNT"]


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_account(self):
        with self.client.get(PATH, name="crm:get_account", catch_response=True) as r:
            if r.status_code != 200 or '"Id"' not in (r.text or ""):
                r.failure(f"HTTP {r.status_code}")
"""


def _start_crm(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-c", "from sim.cli import main; main()", "mocks", "serve", "--only", "crm"]
    cmd += ["--port-base", "0", "--set", "systems.crm.latency=0"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"the CRM mock exited: {log.read_text()[-2000:]}")
        m = re.search(r"^crm\s+(http://\S+)", log.read_text(), re.M)
        if m:
            url = m.group(1)
            try:
                if httpx.get(f"{url}/_twin/health", timeout=1).status_code == 200:
                    return p, url
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise SystemExit("the CRM mock did not come up within 30 s")


def _account() -> str:
    from sim.masterdata import generate
    from sim.rng import Streams
    from sim.scenario import Scenario

    s = Scenario(name="default")
    return generate(s.masterdata, Streams(s.seed)).customers[0].crm_account_id


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def _rps(csv_prefix: Path) -> tuple[float, int, int, float]:
    with (csv_prefix.parent / f"{csv_prefix.name}_stats.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                n, failed = int(row["Request Count"]), int(row["Failure Count"])
                return float(row["Requests/s"]), n, failed, float(row["50%"] or 0)
    return 0.0, 0, 0, 0.0


def _cpu(pid: int) -> float:
    import psutil  # a Locust dependency

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def run_locust(
    url: str, workdir: Path, label: str, workers: int, users: int, seconds: int, env: dict[str, str], server_pid: int
) -> float:
    lf = workdir / "bench_locustfile.py"
    csv_prefix = workdir / label
    base = [sys.executable, "-m", "locust", "-f", str(lf), "--loglevel", "WARNING"]
    head = [*base, "--headless", "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s"]
    head += ["--csv", str(csv_prefix), "--only-summary", "--stop-timeout", "2", "--exit-code-on-error", "0"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if workers:
            port = _free_port()
            head += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
            head += ["--expect-workers", str(workers), "--expect-workers-max-wait", "30"]
            for _ in range(workers):
                w = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
                procs.append(
                    subprocess.Popen(
                        w, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                    )
                )
        cpu0, t0 = _cpu(server_pid), time.monotonic()
        master = subprocess.run(head, env=env, capture_output=True, timeout=seconds + 90)
        server_cpu = (_cpu(server_pid) - cpu0) / max(1e-9, min(float(seconds), time.monotonic() - t0))
        if master.returncode not in (0, 1):
            raise SystemExit(f"locust failed: {master.stderr.decode()[-2000:]}")
    finally:
        for p in procs:
            _stop(p)
    rps, n, failed, p50_ms = _rps(csv_prefix)
    print(
        f"{label:<20} {rps:>7.0f} req/s  ({n} requests, {failed} failed, p50 {p50_ms:g} ms, mock CPU {server_cpu:.0%})  "
        f"ratio to {TARGET_RPS:,.0f} req/s: {rps / TARGET_RPS:.2f}"
    )
    return rps


def _free_port() -> int:
    from sim.loadrun import free_port

    return free_port()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=50, help="users per Locust process")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "bench_locustfile.py").write_text(LOCUSTFILE)
        crm, url = _start_crm(work / "crm.log")
        try:
            env = {**os.environ, "BENCH_ACCOUNT": _account()}
            print(f"CRM mock at {url}, GET Account, {a.seconds} s per run, {os.cpu_count()} CPUs on this machine")
            one = run_locust(url, work, "1 process", 0, a.users, a.seconds, env, crm.pid)
            two = run_locust(url, work, "master + 2 workers", 2, 2 * a.users, a.seconds, env, crm.pid)
            if one > 0:
                print(f"scaling with 2 workers: {two / one:.2f}x of one process")
            print(
                "reading: mock CPU near 100 % means the uvicorn process is the limit; a p50 far above the mock's "
                "own latency with CPU to spare means requests wait on the network stack (users x 1/p50 = req/s)"
            )
        finally:
            _stop(crm)


if __name__ == "__main__":
    main()
