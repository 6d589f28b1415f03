"""The daemon at rest: CPU and memory of ``aggregator run`` once its first refresh is done.

Copies the bundled config and its source folders into a temp dir (so the state
and the published feed are throwaway), starts the daemon there on a free port,
waits for the first publish, then samples ``/proc/PID/stat`` (utime + stime)
and ``/proc/PID/status`` (VmRSS) once a second while nothing happens.

    python bench/daemon_idle.py              # 60 s
    python bench/daemon_idle.py --seconds 300 --config path/to/config.toml

Targets (issue 6): under 1 % of one core and under 150 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVING = re.compile(r"serving (http://[^\s]+)/feed\.atom")
CPU_TARGET = 1.0  # % of one core
RSS_TARGET = 150.0  # MB
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The fields after the ")" that ends the command name, from field 3 on.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds: the daemon's own plus its reaped children's, and each live child's."""
    fields = _stat(pid)
    # utime, stime, cutime, cstime are fields 14 to 17.
    cpu = {pid: sum(int(f) for f in fields[11:15]) / TICKS}
    for child in children(pid):
        with contextlib.suppress(FileNotFoundError):
            cpu[child] = sum(int(f) for f in _stat(child)[11:13]) / TICKS
    return cpu


def refreshing(pid: int) -> list[int]:
    """The live refresh processes (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def cpu_between(start: dict[int, float], end: dict[int, float], pid: int) -> float:
    # A child alive at the start and reaped since is in the daemon's cutime at the end.
    return end[pid] - start[pid] + sum(end.values()) - end[pid] - sum(start.values()) + start[pid]


def rss_mb(pid: int) -> float:
    """Resident memory of the daemon and its live children."""
    total = 0.0
    for one in (pid, *children(pid)):
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def copy_setup(config: Path, into: Path) -> Path:
    """The config with its folder sources copied beside it and the server on port 0."""
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    for source in raw.get("sources", []):
        if "path" in source and not Path(source["path"]).is_absolute():
            shutil.copytree(config.parent / source["path"], into / source["path"])
    text = config.read_text(encoding="utf-8")
    if "server" in raw:  # port = 0 in the table already there, replacing any port line
        text = re.sub(r"(?m)^port\s*=.*\n?", "", text)
        text = re.sub(r"(?m)^\[server\]\s*$", "[server]\nport = 0", text, count=1)
    else:
        text += "\n[server]\nport = 0\n"
    copied = into / "config.toml"
    copied.write_text(text, encoding="utf-8")
    return copied


def wait_until(deadline: float, check: object) -> object:
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit("timed out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time to measure")
    parser.add_argument("--config", type=Path, default=REPO / "config.toml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="daemon-idle-") as tmp:
        config = copy_setup(args.config.resolve(), Path(tmp))
        log = Path(tmp) / "daemon.log"
        with log.open("wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                return measure(proc, log, started, args.seconds)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def measure(proc: subprocess.Popen[bytes], log: Path, started: float, seconds: float) -> int:
    def url() -> str | None:
        found = SERVING.search(log.read_text(errors="replace"))
        return found[1] if found else None

    base = str(wait_until(time.monotonic() + 30, url))
    with httpx.Client(base_url=base, timeout=5) as http:
        wait_until(time.monotonic() + 60, lambda: http.get("/healthz").json()["last_refresh"])
        health = http.get("/healthz").json()
    ready = time.monotonic() - started
    print(f"daemon {proc.pid} at {base}: first publish after {ready:.2f} s")
    print(f"  {health['stories']} stories; refresh process {refreshing(proc.pid)}")
    # The refresh process exits once idle (daemon.IDLE_EXIT): measure until it has.
    t0, cpu0, peak = time.monotonic(), tree_cpu(proc.pid), rss_mb(proc.pid)
    while refreshing(proc.pid) and time.monotonic() - t0 < 120:
        time.sleep(1.0)
        peak = max(peak, rss_mb(proc.pid))
    settled, cpu1 = time.monotonic() - t0, tree_cpu(proc.pid)
    print(
        f"settling: the refresh process exited {settled:.0f} s after the first publish; "
        f"meanwhile {cpu_between(cpu0, cpu1, proc.pid):.2f} s of CPU, peak RSS {peak:.1f} MB"
    )
    t0, cpu0 = time.monotonic(), tree_cpu(proc.pid)
    samples = [rss_mb(proc.pid)]
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        samples.append(rss_mb(proc.pid))
    t1, cpu1, kids = time.monotonic(), tree_cpu(proc.pid), children(proc.pid)
    used = cpu_between(cpu0, cpu1, proc.pid)
    cpu = used / (t1 - t0) * 100
    peak, mean = max(samples), sum(samples) / len(samples)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(30)
    print(f"idle {t1 - t0:.0f} s: CPU {cpu:.3f} % of one core ({used:.2f} s of CPU)")
    print(f"idle RSS (daemon + children {kids}): peak {peak:.1f} MB, mean {mean:.1f} MB")
    print(f"SIGTERM: exit status {status} after {time.monotonic() - began:.2f} s")
    ok = cpu < CPU_TARGET and peak < RSS_TARGET and status == 0
    verdict = "met" if ok else "MISSED"
    print(f"targets (< {CPU_TARGET} % of a core, < {RSS_TARGET:.0f} MB, exit 0): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
