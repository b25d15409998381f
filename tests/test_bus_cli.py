"""The bus through the command line, as a user runs it across machines (here: processes on loopback): a real
``nats-server``, ``liqmap collect --demo --bus URL`` publishing, ``liqmap collect --from-bus URL`` reading.
And the credentials: a password in the URL never appears in any line either side prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from nats_servers import NatsServer


def liqmap(*args, tmp, timeout=120):
    env = {**os.environ, "LIQMAP_DATA_DIR": str(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg")}
    return subprocess.run([sys.executable, "-m", "liqmap", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def events(stderr: str) -> int:
    last = [ln for ln in stderr.splitlines() if ln.startswith("collect ")][-1]
    return int(re.search(r"· ([\d,]+) events", last).group(1).replace(",", ""))


@pytest.fixture
def server(tmp_path):
    srv = NatsServer(tmp_path / "nats", extra=["--user", "desk", "--pass", "s3cret-pw"]).start()
    yield srv
    srv.stop()


def test_collect_publishes_and_a_late_collector_reads_it_from_the_bus(server, tmp_path):
    url = f"nats://desk:s3cret-pw@127.0.0.1:{server.port}"
    pub = liqmap("collect", "--demo", "--bus", url, "--duration", "4", "--assets", "BTC,ETH", "--status-every", "1",
                 tmp=tmp_path / "a")
    assert pub.returncode == 0, pub.stderr[-2000:]
    assert "s3cret" not in pub.stderr + pub.stdout
    line = [ln for ln in pub.stderr.splitlines() if ln.startswith("collect ")][-1]
    m = re.search(r"bus nats://127\.0\.0\.1:\d+ \w+ · ([\d,]+) msgs ([\d,]+) rows", line)
    assert m, line
    sent_rows = int(m.group(2).replace(",", ""))
    assert sent_rows > 0 and "dropped" not in line
    # a second collector started after the first stopped: it replays the retention window from the bus
    sub = liqmap("collect", "--from-bus", url, "--duration", "3", "--assets", "BTC,ETH", "--status-every", "1",
                 tmp=tmp_path / "b")
    assert sub.returncode == 0, sub.stderr[-2000:]
    assert "s3cret" not in sub.stderr + sub.stdout
    assert "collect BUS" in sub.stderr
    last = [ln for ln in sub.stderr.splitlines() if ln.startswith("collect ")][-1]
    got = re.search(r"from bus nats://127\.0\.0\.1:\d+: [\d,]+ msgs ([\d,]+) rows", last)
    assert got and int(got.group(1).replace(",", "")) == sent_rows, last  # every published row arrived
    assert events(sub.stderr) > 0  # and went through its engine
    assert " 0 rejected" in last


def test_wrong_password_is_one_line_without_the_secret(server, tmp_path):
    url = f"nats://desk:wrong-s3cret@127.0.0.1:{server.port}"
    res = liqmap("collect", "--demo", "--bus", url, "--duration", "2", "--assets", "BTC", "--status-every", "0.5",
                 tmp=tmp_path / "c")
    out = res.stderr + res.stdout
    assert "wrong-s3cret" not in out
    assert "bus nats://127.0.0.1:" in out and "DOWN" in out  # says the bus is not reachable
    assert res.returncode == 0  # the collector itself went on collecting


def test_bad_bus_url_is_refused_with_one_line(tmp_path):
    res = liqmap("collect", "--demo", "--bus", "http://u:pw-secret@127.0.0.1:1", "--duration", "1", tmp=tmp_path)
    assert res.returncode == 2
    assert "pw-secret" not in res.stderr and "nats://" in res.stderr
