"""read() to the end of a stream needs the body once in heap, not twice (issue 9, item 3).

micropython-lib's `requests` (frozen into the unix port) fetches a 1 MiB body as `r.content`
(requests reads it with the socket's read()) from a Linux HTTP/1.0 server in a private namespace,
on the MicroPython unix port with a heap of HEAP bytes: once over tcpip (tests/host/clients/
launch.py over the UDP frame bridge) and once over the runtime's own sockets (the control: the
built-in stream read reads into one buffer and returns it as the bytes object). The client prints
what its heap held before the GET; the test checks that twice the body would not have fitted in
what was free, and that both runs got every byte. Before this was fixed, tcpip's read() gathered
the body in chunks, joined them and copied the result (three times the body at its peak) and the
tcpip run ended in MemoryError at this heap size.
Needs root, /dev/net/tun and iproute2; every wait has a deadline.
"""
import os
import socket
import threading
import time

import pytest

from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary
from realpeer import payload, require_environment, sha

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "host", "clients")
LAUNCH = os.path.join(CLIENTS, "launch.py")
CLIENT = os.path.join(CLIENTS, "requests_content.py")
LINUX_IP = "192.0.2.1"
PORT = 8080
BODY = payload(1024 * 1024, 9)
HEAP = 1800 * 1024  # the body fits once (with the stack and the client), not twice
CHILD_TIMEOUT_S = 120


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("the read() memory test", tools=("ip",), micropython=True)


class BodyServer:
    """HTTP/1.0 on LINUX_IP:PORT: answers each GET with BODY, closes (the body ends at EOF)."""

    def __init__(self, ns, connections):
        self.served = []
        self.sock = ns.call(socket.create_server, (LINUX_IP, PORT))
        self.sock.settimeout(0.5)
        self.deadline = time.monotonic() + 3 * CHILD_TIMEOUT_S
        self.thread = threading.Thread(target=self._run, args=(connections,), daemon=True)
        self.thread.start()

    def _run(self, connections):
        while len(self.served) < connections and time.monotonic() < self.deadline:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    req = b""
                    while b"\r\n\r\n" not in req and len(req) < 4096:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        req += chunk
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
                    self.served.append((peer, None))
                except OSError as exc:
                    self.served.append((peer, repr(exc)))

    def close(self):
        self.sock.close()
        self.thread.join(10)


def parse(out):
    got = {}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        got[key] = rest
    return got


def run_client(ns, over_tcpip):
    url = "http://%s:%d/blob" % (LINUX_IP, PORT)
    argv = [micropython_binary(), "-X", "heapsize=%d" % HEAP]
    if not over_tcpip:
        proc = ns.run(argv + [CLIENT, url], check=False, timeout=CHILD_TIMEOUT_S, env=child_env(), cwd=ROOT)
        return proc.returncode, proc.stdout, proc.stderr
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 300}, daemon=True)
    relay.start()
    try:
        proc = ns.run(argv + [LAUNCH, str(bridge.port), "192.0.2.2/24", LINUX_IP, CLIENT, url],
                      check=False, timeout=CHILD_TIMEOUT_S, env=child_env(), cwd=ROOT)
    finally:
        stop.set()
        relay.join(5)
        bridge.close()
    return proc.returncode, proc.stdout, proc.stderr


def check(rc, out, err):
    diag = "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (rc, out, err)
    got = parse(out)
    assert rc == 0 and "done" in got, diag
    assert got["length"] == str(len(BODY)) and got["sha256"] == sha(BODY), diag
    assert got["type"] == "bytes", diag
    used, free = (int(x) for x in got["heap"].split())
    assert free < 2 * len(BODY), "the heap is too big to prove anything: %s" % diag
    return used, free


def test_requests_content_of_1_mib_fits_in_a_heap_that_holds_it_once():
    with TestNamespace() as ns:
        server = BodyServer(ns, connections=2)
        try:
            native = run_client(ns, over_tcpip=False)
            over_tcpip = run_client(ns, over_tcpip=True)
        finally:
            server.close()
        check(*native)
        used, free = check(*over_tcpip)
        assert [e for _, e in server.served] == [None, None]
        assert server.served[1][0][0] == "192.0.2.2"  # the second GET came from our stack
