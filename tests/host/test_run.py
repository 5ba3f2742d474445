"""`python -m host_tools run SCRIPT.py` (host_tools/run.py, host_tools/mp/run_main.py): unmodified
MicroPython scripts over tcpip against Linux, on the MicroPython unix port and on CPython.

The scripts (tests/host/clients/) import `socket`, `usocket`, `select`, `time`, `asyncio`, never
tcpip. Most tests make their own namespace (TestNamespace: tap0, Linux 192.0.2.1/24) with the
HTTP server of test_mp_clients.py (48 KiB body, then it waits for our FIN) and run the command in
it (`ip netns exec NS python -m host_tools run ... --tap tap0 --addr 192.0.2.2/24`); the --netns
tests let the command make the namespace and its server itself. Checked: the body's SHA-256, that
the connection came from the stack (and that the script got tcpip's module, not the runtime's),
that the stack goes on answering ping while a script sleeps, and that --netns leaves nothing
behind. Needs root, /dev/net/tun, iproute2 and ping; every wait has a deadline.
"""
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from host_tools import run as run_cmd
from host_tools.netns import TestNamespace, child_env, namespace_exists, read_line
from realpeer import require_environment
from test_mp_clients import LINUX_IP, PORT, STACK_ADDR, STACK_IP, check_transfer, parse, server  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "host", "clients")
HTTP_GET = os.path.join(CLIENTS, "http_get.py")
ASYNC_GET = os.path.join(CLIENTS, "async_get.py")
USOCKET_GET = os.path.join(CLIENTS, "usocket_poll_get.py")
SLEEPER = os.path.join(CLIENTS, "sleeper.py")
RUN_TIMEOUT_S = 90
RUNTIMES = ("micropython", "cpython")


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("the run command tests", tools=("ip", "ss", "ping"), micropython=True)


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


def run_argv(script, runtime, *extra, script_args=()):
    return [sys.executable, "-m", "host_tools", "run", script, "--tap", "tap0", "--addr", STACK_ADDR,
            "--gateway", LINUX_IP, "--runtime", runtime, "--timeout", "60"] + list(extra) + \
        ["--"] + list(script_args)


def run_in(ns, script, runtime, *extra, script_args=(LINUX_IP, str(PORT), "/blob")):
    proc = ns.run(run_argv(script, runtime, *extra, script_args=script_args), check=False,
                  timeout=RUN_TIMEOUT_S, env=child_env(), cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_socket_client(ns, server, runtime):
    srv = server()
    rc, out, err = run_in(ns, HTTP_GET, runtime, "--stats")
    srv.thread.join(20)
    assert len(srv.results) == 1, (out, err)
    check_transfer(rc, out, err, srv.results[0], from_stack=True)
    assert re.search(r"^counters .*tcp_established=1", err, re.M), err  # --stats: the stack's own
    assert err.splitlines()[-1].strip() == "tcbs", err  # closed cleanly: nothing left


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_usocket_select_client(ns, server, runtime):
    """`import usocket as socket` (umqtt.simple, urequests), uselect.poll and utime.sleep_ms."""
    srv = server()
    rc, out, err = run_in(ns, USOCKET_GET, runtime)
    srv.thread.join(20)
    assert len(srv.results) == 1, (out, err)
    got = check_transfer(rc, out, err, srv.results[0], from_stack=True)
    assert got["module"] == "tcpip.socket", out


def test_run_asyncio_client_on_micropython(ns, server):
    srv = server()
    rc, out, err = run_in(ns, ASYNC_GET, "micropython")
    srv.thread.join(20)
    assert len(srv.results) == 1, (out, err)
    got = check_transfer(rc, out, err, srv.results[0], from_stack=True)
    assert got["eof"] == "0", out


@pytest.mark.parametrize("runtime, how", [("micropython", "time"), ("micropython", "asyncio"),
                                          ("cpython", "time")])
def test_run_stack_answers_while_the_script_sleeps(ns, runtime, how):
    """time.sleep and asyncio.sleep (select.poll) service the stack: Linux's pings are answered."""
    proc = ns.popen(run_argv(SLEEPER, runtime, script_args=(how, "4")), env=child_env(), cwd=ROOT,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc.stdout, time.monotonic() + 20) == "sleeping", proc.stderr.read()
        ping = ns.run(["ping", "-c", "4", "-i", "0.3", "-W", "1", STACK_IP], check=False, timeout=20)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert " 4 received" in ping.stdout, ping.stdout
    assert proc.returncode == 0 and out.decode().strip() == "woke", err.decode()


def test_run_script_errors_and_exit_status(ns, tmp_path):
    """The script's own exit status; a traceback and 1 when it raises; ENETUNREACH says why."""
    script = tmp_path / "fails.py"
    script.write_text("import socket, sys\n"
                      "if sys.argv[1] == 'exit':\n    sys.exit(3)\n"
                      "s = socket.socket()\n"
                      "s.connect(('198.51.100.1', 80))\n")
    for runtime in RUNTIMES:
        proc = ns.run([sys.executable, "-m", "host_tools", "run", str(script), "--tap", "tap0", "--addr",
                       STACK_ADDR, "--runtime", runtime, "--", "exit"], check=False, timeout=RUN_TIMEOUT_S,
                      env=child_env(), cwd=ROOT)
        assert proc.returncode == 3, (runtime, proc.stderr)
        proc = ns.run([sys.executable, "-m", "host_tools", "run", str(script), "--tap", "tap0", "--addr",
                       STACK_ADDR, "--runtime", runtime, "--", "connect"], check=False,
                      timeout=RUN_TIMEOUT_S, env=child_env(), cwd=ROOT)
        assert proc.returncode == 1, (runtime, proc.stderr)
        assert "Traceback" in proc.stderr and "101" in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            "ENETUNREACH: without a gateway only 192.0.2.0/24 is reachable: add --gateway IP (a router "
            "on 192.0.2.0/24), or connect to a host on 192.0.2.0/24"), (runtime, proc.stderr)


def test_run_timeout_ends_the_script(ns):
    for runtime in RUNTIMES:
        t0 = time.monotonic()
        proc = ns.run([sys.executable, "-m", "host_tools", "run", SLEEPER, "--tap", "tap0", "--addr",
                       STACK_ADDR, "--runtime", runtime, "--timeout", "1", "--", "time", "60"],
                      check=False, timeout=RUN_TIMEOUT_S, env=child_env(), cwd=ROOT)
        assert time.monotonic() - t0 < 20
        assert proc.returncode == 1 and "did not finish within 1 s" in proc.stderr, (runtime, proc.stderr)


# -- --netns: the command makes the namespace, the Linux peer and the server -------------------------
def netns_names(err):
    return re.findall(r"^run: namespace (\S+):", err, re.M)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_netns_with_http_server(tmp_path, runtime):
    www = tmp_path / "www"
    www.mkdir()
    body = bytes(random.Random(11).getrandbits(8) for _ in range(20000))
    (www / "blob").write_bytes(body)
    proc = subprocess.run([sys.executable, "-m", "host_tools", "run", USOCKET_GET, "--netns", "--http",
                           str(www), "--runtime", runtime, "--timeout", "60", "--", LINUX_IP, "8080",
                           "/blob"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    got = parse(proc.stdout)
    assert got["module"] == "tcpip.socket" and got["status"] == "HTTP/1.0 200 OK", proc.stdout
    assert got["sha256"] == hashlib.sha256(body).hexdigest(), proc.stdout
    names = netns_names(proc.stderr)
    assert len(names) == 1 and "HTTP on 192.0.2.1:8080" in proc.stderr, proc.stderr
    assert not namespace_exists(names[0])


def test_run_netns_cleans_up_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "host_tools", "run", SLEEPER, "--netns", "--", "asyncio",
                             "60"], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert read_line(proc.stdout, time.monotonic() + 30) == "sleeping", proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    err = err.decode()
    names = netns_names(err)
    assert proc.returncode == run_cmd.EXIT_INTERRUPTED, err
    assert len(names) == 1 and not namespace_exists(names[0]), err
    assert b"woke" not in out


# -- MICROPYPATH ------------------------------------------------------------------------------
def test_micropypath_keeps_frozen_and_the_users_path():
    lib = os.path.join(ROOT, "lib")
    assert run_cmd.micropypath({}) == lib + ":.frozen:~/.micropython/lib:/usr/lib/micropython"
    assert run_cmd.micropypath({"MICROPYPATH": "/my/libs"}) == lib + ":/my/libs:.frozen"
    assert run_cmd.micropypath({"MICROPYPATH": ".frozen:/my/libs"}) == lib + ":.frozen:/my/libs"
