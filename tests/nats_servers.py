"""Real NATS servers for the bus tests: Debian's ``nats-server`` (README "Set up"; ``.ci/run`` installs it),
started with JetStream on free loopback ports in a temporary store directory, single node or a cluster."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

# Debian installs it in /usr/sbin, which is on root's PATH but not on a normal user's: look there too.
NATS_SERVER = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, limit: float = 20.0) -> None:
    end = time.monotonic() + limit  # a hang guard, not a timing assertion
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on 127.0.0.1:{port}")


class NatsServer:
    """One ``nats-server -js`` on 127.0.0.1; ``stop()`` kills it (SIGKILL: the bus going away), ``start()``
    brings it back on the same port and store. ``extra``: more flags (auth, cluster)."""

    def __init__(self, store: Path, port: int | None = None, extra: list[str] | None = None, name: str = "n1") -> None:
        if NATS_SERVER is None:
            raise RuntimeError("nats-server is not installed (README 'Set up': apt-get install nats-server)")
        self.port = port or free_port()
        self.store = Path(store)
        self.extra = list(extra or [])
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log = self.store / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "NatsServer":
        self.store.mkdir(parents=True, exist_ok=True)
        cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store / "js"),
               "-n", self.name, *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        _wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def cluster(base: Path, n: int = 3) -> list[NatsServer]:
    """``n`` JetStream nodes routed to each other on loopback (not started)."""
    ports = [free_port() for _ in range(n)]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in ports)
    out = []
    for i in range(n):
        extra = ["--cluster_name", "liqmap", "--cluster", f"nats://127.0.0.1:{ports[i]}", "--routes", routes]
        out.append(NatsServer(base / f"n{i + 1}", extra=extra, name=f"n{i + 1}"))
    return out
