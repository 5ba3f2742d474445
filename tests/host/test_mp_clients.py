"""Unmodified MicroPython-style socket clients (tests/host/clients/) over tcpip, against Linux.

Each test makes its own network namespace (TestNamespace: tap0, Linux 192.0.2.1/24, the stack at
192.0.2.2) with a real HTTP/1.0 server (a Python socket server made in the namespace) that sends
a 48 KiB body, half-closes, and then waits for the client's FIN. The clients import `socket`,
never tcpip: tests/host/clients/launch.py runs them on the MicroPython unix port with
tcpip.socket installed as the `socket` module, over the UDP frame bridge (host_tools.bridge, run
here in a thread) to the TAP. Checked: the body's SHA-256, the request the server got, that the
connection came from our stack, and that the server saw our FIN (recv -> b"", not a reset).
The same clients also run on MicroPython's own sockets (a control: they are genuine standard
socket clients), and the HTTP client runs on CPython in-process over a TapDevice.
Needs root, /dev/net/tun and iproute2; every wait has a deadline.
"""
import builtins
import contextlib
import hashlib
import io
import os
import random
import socket
import subprocess
import sys
import threading
import time

import pytest

from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary
from realpeer import require_environment
from host_tools.tap import TapDevice
from tcpip import errors
from tcpip import socket as tsocket
from tcpip import tcp
from tcpip.poller import POLLIN, POLLOUT, poll
from tcpip.stack import Stack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "host", "clients")
LAUNCH = os.path.join(CLIENTS, "launch.py")
HTTP_GET = os.path.join(CLIENTS, "http_get.py")
ASYNC_GET = os.path.join(CLIENTS, "async_get.py")
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
PORT = 8080
PATH = "/blob"
BODY = bytes(random.Random(20260705).getrandbits(8) for _ in range(48 * 1024))
CHILD_TIMEOUT_S = 90


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("client tests", tools=(), micropython=True)


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


class HttpServer:
    """HTTP/1.0 on LINUX_IP:PORT in ns, one connection at a time, up to `connections`.

    Per connection it reads the request head, sends the response (BODY), shuts down its sending
    side, then reads until the client's FIN. results: one dict per connection with peer,
    request (bytes), fin (True when recv returned b""), error (text or None)."""

    def __init__(self, ns, connections=1, limit_s=60.0):
        self.results = []
        self.sock = ns.call(socket.create_server, (LINUX_IP, PORT))
        self.sock.settimeout(0.5)
        self.connections = connections
        self.deadline = time.monotonic() + limit_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for _ in range(self.connections):
            conn = None
            while conn is None and time.monotonic() < self.deadline:
                try:
                    conn, peer = self.sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return  # closed
            if conn is None:
                return
            with conn:
                self.results.append(self._serve(conn, peer))

    def _serve(self, conn, peer):
        r = {"peer": peer, "request": b"", "fin": False, "error": None}
        conn.settimeout(15)
        try:
            req = b""
            for _ in range(64):
                if b"\r\n\r\n" in req:
                    break
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
            r["request"] = req
            head = ("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Length: %d\r\nX-Served-By: linux\r\n\r\n" % len(BODY)).encode()
            conn.sendall(head + BODY)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(64):
                extra = conn.recv(4096)
                if not extra:
                    r["fin"] = True
                    break
        except OSError as exc:  # ConnectionResetError: the client reset instead of closing
            r["error"] = repr(exc)
        return r

    def close(self):
        self.sock.close()
        self.thread.join(20)


@pytest.fixture
def server(ns):
    servers = []

    def make(connections=1):
        s = HttpServer(ns, connections)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@contextlib.contextmanager
def frame_bridge(ns):
    """host_tools.bridge relaying the namespace's TAP <-> UDP 127.0.0.1 (in the namespace)."""
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 300},
                             daemon=True)
    relay.start()
    try:
        yield bridge
    finally:
        stop.set()
        relay.join(5)
        bridge.close()


def run_micropython(ns, argv):
    proc = ns.run([micropython_binary()] + argv, check=False, timeout=CHILD_TIMEOUT_S,
                  env=child_env(), cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def run_over_tcpip(ns, client):
    with frame_bridge(ns) as bridge:
        return run_micropython(ns, [LAUNCH, str(bridge.port), STACK_ADDR, LINUX_IP, client,
                                    LINUX_IP, str(PORT), PATH])


def parse(stdout):
    out = {"headers": {}}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key == "header":
            name, _, value = rest.partition(": ")
            out["headers"][name] = value
        else:
            out[key] = rest
    return out


def check_transfer(rc, stdout, stderr, server_result, from_stack):
    diag = "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- server ---\n%r" % (
        rc, stdout, stderr, server_result)
    assert rc == 0, diag
    got = parse(stdout)
    assert "done" in got, diag
    assert got["status"] == "HTTP/1.0 200 OK", diag
    assert got["headers"].get("content-length") == str(len(BODY)), diag
    assert got["length"] == str(len(BODY)), diag
    assert got["sha256"] == hashlib.sha256(BODY).hexdigest(), diag
    assert server_result["request"].startswith(b"GET /blob HTTP/1.0\r\n"), diag
    assert server_result["error"] is None and server_result["fin"], diag
    if from_stack:
        assert server_result["peer"][0] == STACK_IP, diag
    return got


def test_http_client_on_micropython_over_tcpip(ns, server):
    srv = server()
    rc, out, err = run_over_tcpip(ns, HTTP_GET)
    srv.thread.join(20)
    assert len(srv.results) == 1, (out, err)
    check_transfer(rc, out, err, srv.results[0], from_stack=True)
    assert out.splitlines()[-1].strip() == "tcbs", out  # our side closed cleanly: nothing left


def test_asyncio_client_on_micropython_over_tcpip(ns, server):
    srv = server()
    rc, out, err = run_over_tcpip(ns, ASYNC_GET)
    srv.thread.join(20)
    assert len(srv.results) == 1, (out, err)
    got = check_transfer(rc, out, err, srv.results[0], from_stack=True)
    assert got["eof"] == "0", out
    assert out.splitlines()[-1].strip() == "tcbs", out


def test_clients_are_plain_socket_clients_on_micropython_sockets(ns, server):
    # control: the same two scripts on MicroPython's own sockets (Linux's stack, over lo)
    srv = server(connections=2)
    for client in (HTTP_GET, ASYNC_GET):
        rc, out, err = run_micropython(ns, [client, LINUX_IP, str(PORT), PATH])
        deadline = time.monotonic() + 20
        while len(srv.results) < (1 if client == HTTP_GET else 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        check_transfer(rc, out, err, srv.results[-1], from_stack=False)


def exec_client(path, argv):
    """Run a client script as __main__ with `import socket` answered by tcpip.socket."""
    real_import = builtins.__import__

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "socket" and level == 0:
            return tsocket
        return real_import(name, globals, locals, fromlist, level)

    names = dict(vars(builtins))
    names["__import__"] = importer
    with open(path) as f:
        code = compile(f.read(), path, "exec")
    saved = sys.argv
    sys.argv = list(argv)
    try:
        exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": names})
    finally:
        sys.argv = saved


def test_http_client_on_cpython_over_tcpip_in_process(ns, server):
    srv = server()

    def body():
        out = io.StringIO()
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev, addr=STACK_ADDR, gateway=LINUX_IP)
            tsocket.set_default_stack(stack)
            try:
                with contextlib.redirect_stdout(out):
                    exec_client(HTTP_GET, [HTTP_GET, LINUX_IP, str(PORT), PATH])
                stack.run_until(lambda: all(t.state == tcp.TIME_WAIT for t in stack.tcp.tcbs), 3000)
                left = [t.state_name() for t in stack.tcp.tcbs]
            finally:
                tsocket.set_default_stack(None)
        return out.getvalue(), left

    out, left = ns.call(body, timeout=60)
    srv.thread.join(20)
    assert len(srv.results) == 1, out
    check_transfer(0, out, "", srv.results[0], from_stack=True)
    assert left == [], left


def test_poller_loop_on_cpython_over_tap(ns, server):
    # docs/SOCKETS.md's polling loop for CPython: a non-blocking socket and tcpip.poller
    srv = server()

    def body():
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev, addr=STACK_ADDR, gateway=LINUX_IP)
            s = tsocket.Socket(stack)
            s.setblocking(False)
            try:
                s.connect((LINUX_IP, PORT))
            except OSError as e:
                assert e.errno == errors.EINPROGRESS
            p = poll()
            p.register(s, POLLOUT)
            assert p.poll(5000) == [(s, POLLOUT)]
            request = b"GET /blob HTTP/1.0\r\n\r\n"
            assert s.write(request) == len(request)
            p.modify(s, POLLIN)
            data = bytearray()
            eof = False
            deadline = time.monotonic() + 20
            while not eof and time.monotonic() < deadline:
                for obj, events in p.poll(1000):
                    chunk = obj.read()  # non-blocking: what is there; b"" at EOF
                    if chunk == b"":
                        eof = True
                    elif chunk is not None:
                        data += chunk
            s.close()
            stack.run_until(lambda: all(t.state == tcp.TIME_WAIT for t in stack.tcp.tcbs), 3000)
            return bytes(data), eof, [t.state_name() for t in stack.tcp.tcbs]

    data, eof, left = ns.call(body, timeout=60)
    srv.thread.join(20)
    assert eof and left == []
    head, _, body_bytes = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert hashlib.sha256(body_bytes).hexdigest() == hashlib.sha256(BODY).hexdigest()
    assert len(srv.results) == 1 and srv.results[0]["fin"] and srv.results[0]["error"] is None
    assert srv.results[0]["peer"][0] == STACK_IP
