"""Servers on tcpip against real Linux clients (issue 9, items 1 and 5).

Unmodified MicroPython-style servers (tests/host/servers/: a plain socket HTTP/1.0 server and one
on asyncio.start_server) run on the MicroPython unix port with tcpip.socket as their `socket`
module (tests/host/clients/launch.py, over the UDP frame bridge to the TAP), and the plain one on
CPython in-process over a TapDevice. Linux clients in the namespace hit them: curl, and Python
socket clients, several at once and more than the backlog holds (their dropped SYNs are
retransmitted by Linux and served later). Checked: every body byte-exact, the server saw every
request, no client got a reset. Needs root, /dev/net/tun, iproute2 and curl; every wait has a
deadline.
"""
import contextlib
import hashlib
import io
import os
import socket
import subprocess
import threading
import time

import pytest

from host_tools.netns import TestNamespace, child_env, micropython_binary, read_line
from host_tools.tap import TapDevice
from realpeer import require_environment
from tcpip import socket as tsocket
from tcpip.stack import Stack
from test_mp_clients import LAUNCH, exec_client, frame_bridge

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = os.path.join(ROOT, "tests", "host", "servers")
HTTP_SERVER = os.path.join(SERVERS, "http_server.py")
ASYNC_SERVER = os.path.join(SERVERS, "async_server.py")
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
PORT = 8080
SIZE = 20000


def expected_body(size=SIZE):
    b = bytearray(size)
    for i in range(size):
        b[i] = (i * 7 + (i >> 8)) & 0xFF
    return bytes(b)


BODY = expected_body()


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("server tests", tools=("ip", "curl"), micropython=True)


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


def http_get(path="/"):
    """A Linux Python client (run inside the namespace): the whole answer, or the error's text."""
    try:
        with socket.create_connection((STACK_IP, PORT), timeout=30) as c:
            c.sendall(b"GET %s HTTP/1.0\r\nHost: board\r\n\r\n" % path.encode())
            data = bytearray()
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return bytes(data)
                data += chunk
    except OSError as e:
        return "error: %r" % (e,)


def concurrent_gets(n):
    """n clients at once (threads made inside the namespace are in it); their answers by path."""
    out = {}

    def one(i):
        out[i] = http_get("/c%d" % i)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def check_answer(answer, what):
    assert isinstance(answer, bytes), "%s: %s" % (what, answer)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n"), (what, head)
    assert b"Content-Length: %d" % SIZE in head, (what, head)
    assert hashlib.sha256(body).digest() == hashlib.sha256(BODY).digest(), (what, len(body))


def curl(ns, path):
    r = ns.run(["curl", "-s", "-S", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}",
                "http://%s:%d%s" % (STACK_IP, PORT, path)], check=False, text=False, timeout=40)
    body, _, code = r.stdout.rpartition(b"\n")
    return r.returncode, code, body, r.stderr


@contextlib.contextmanager
def micropython_server(ns, script, *args):
    """The server script on the MicroPython unix port over tcpip; yields the process once it
    listens; on exit waits for it (it ends by itself after its connections) and checks it."""
    with frame_bridge(ns) as bridge:
        proc = ns.popen([micropython_binary(), LAUNCH, str(bridge.port), STACK_ADDR, LINUX_IP, script]
                        + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=child_env(), cwd=ROOT)
        line = read_line(proc.stdout, time.monotonic() + 30)
        assert line is not None and line.startswith("listening"), (line, proc.stderr.read1(4096))
        yield proc
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("the server did not end\n%s\n%s" % (out.decode(), err.decode()))
        proc.result = (proc.returncode, out.decode(), err.decode())


def counters(out):
    for line in out.splitlines():
        if line.startswith("counters"):
            return dict((k, int(v)) for k, _, v in (w.partition("=") for w in line.split()[1:]))
    raise AssertionError("no counters line in\n" + out)


def served(out):
    return [line.split(" ", 2)[1:] for line in out.splitlines() if line.startswith("served ")]


def test_curl_and_python_clients_on_a_micropython_http_server(ns):
    with micropython_server(ns, HTTP_SERVER, PORT, 3, SIZE, 2) as proc:
        rc, code, body, err = curl(ns, "/curl")
        assert rc == 0 and code == b"200", (rc, code, err)
        assert hashlib.sha256(body).digest() == hashlib.sha256(BODY).digest()
        check_answer(ns.call(http_get, "/one", timeout=60), "python client")
        check_answer(ns.call(http_get, "/two", timeout=60), "python client")
    rc, out, err = proc.result
    assert rc == 0, (out, err)
    assert served(out) == [[LINUX_IP, "GET /curl HTTP/1.1"], [LINUX_IP, "GET /one HTTP/1.0"],
                           [LINUX_IP, "GET /two HTTP/1.0"]], out
    assert out.splitlines()[-1].strip().startswith("tcbs"), out


def test_more_clients_at_once_than_the_backlog_holds(ns):
    # backlog 2 and a server that takes one connection at a time: Linux's SYNs beyond the queue
    # are dropped and retransmitted (1 s, 3 s, ...) until the server gets to them; all six succeed
    n = 6
    with micropython_server(ns, HTTP_SERVER, PORT, n, SIZE, 2) as proc:
        answers = ns.call(concurrent_gets, n, timeout=90)
    rc, out, err = proc.result
    assert rc == 0, (out, err)
    for i in range(n):
        check_answer(answers.get(i), "client %d" % i)
    assert sorted(r[1] for r in served(out)) == sorted("GET /c%d HTTP/1.0" % i for i in range(n)), out
    c = counters(out)
    assert c.get("tcp_listen_overflow", 0) > 0, c  # the queue did overflow
    assert c["tcp_passive_open"] == n, c


def test_asyncio_start_server_on_micropython(ns):
    n = 3
    with micropython_server(ns, ASYNC_SERVER, PORT, n, SIZE) as proc:
        answers = ns.call(concurrent_gets, n, timeout=90)
    rc, out, err = proc.result
    assert rc == 0, (out, err)
    for i in range(n):
        check_answer(answers.get(i), "client %d" % i)
    assert len(served(out)) == n, out


def test_http_server_on_cpython_over_tap(ns):
    listening = threading.Event()
    result = {}

    class Out(io.StringIO):
        def write(self, s):
            if s.startswith("listening"):
                listening.set()
            return io.StringIO.write(self, s)

    def serve():
        out = Out()
        try:
            with TapDevice(ns.tap) as dev:
                stack = Stack(dev, addr=STACK_ADDR, gateway=LINUX_IP)
                tsocket.set_default_stack(stack)
                try:
                    with contextlib.redirect_stdout(out):
                        exec_client(HTTP_SERVER, [HTTP_SERVER, str(PORT), "3", str(SIZE), "2"])
                    stack.run_until(lambda: not stack.tcp.tcbs, 3000)
                finally:
                    tsocket.set_default_stack(None)
        except BaseException as e:  # handed to the test
            result["error"] = e
        result["out"] = out.getvalue()

    t = threading.Thread(target=lambda: ns.call(serve, timeout=120), daemon=True)
    t.start()
    assert listening.wait(30), result
    rc, code, body, err = curl(ns, "/curl")
    assert rc == 0 and code == b"200", (rc, code, err)
    assert hashlib.sha256(body).digest() == hashlib.sha256(BODY).digest()
    answers = ns.call(concurrent_gets, 2, timeout=90)
    t.join(60)
    assert "error" not in result, result
    for i in range(2):
        check_answer(answers.get(i), "client %d" % i)
    assert len(served(result["out"])) == 3, result["out"]


def _syn_frames(dst_mac, src_mac, n, seed=1):
    """n Ethernet frames of TCP SYNs to STACK_IP:PORT from spoofed sources behind the gateway
    (198.51.100.0/24), random ports and ISNs; checksums right."""
    import random
    import struct

    rnd = random.Random(seed)
    dst = socket.inet_aton(STACK_IP)

    def csum(data):
        if len(data) % 2:
            data += b"\0"
        s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    out = []
    for _ in range(n):
        src = bytes((198, 51, 100, rnd.randint(1, 250)))
        tcp = bytearray(struct.pack("!HHIIBBHHH", rnd.randint(1024, 65535), PORT, rnd.getrandbits(32), 0,
                                    6 << 4, 0x02, 64240, 0, 0) + b"\x02\x04\x05\xb4")
        struct.pack_into("!H", tcp, 16, csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + bytes(tcp)))
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rnd.getrandbits(16), 0x4000, 64, 6, 0,
                                   src, dst))
        struct.pack_into("!H", ip, 10, csum(bytes(ip)))
        out.append(dst_mac + src_mac + b"\x08\x00" + bytes(ip) + bytes(tcp))
    return out


def test_a_syn_flood_over_the_tap_while_curl_connects(ns):
    # 10,000 spoofed SYNs written onto the namespace's side of the TAP (AF_PACKET) while curl
    # fetches from the server: the half-open records stay bounded (SYN cookies past 8) and curl
    # is served
    with micropython_server(ns, HTTP_SERVER, PORT, 1, SIZE, 2) as proc:
        r = ns.run(["ping", "-c", "1", "-W", "2", STACK_IP], check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        neigh = ns.run(["ip", "neigh", "show", STACK_IP]).stdout.split()
        mac = bytes(int(x, 16) for x in neigh[neigh.index("lladdr") + 1].split(":"))
        own = ns.run(["cat", "/sys/class/net/%s/address" % ns.tap]).stdout.strip()
        frames = _syn_frames(mac, bytes(int(x, 16) for x in own.split(":")), 10000)
        sent = {"n": 0}

        def flood():
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
                raw.bind((ns.tap, 0))
                for f in frames:
                    try:
                        raw.send(f)
                        sent["n"] += 1
                    except OSError:  # a full queue: the flood is lossy anyway
                        pass

        flooder = threading.Thread(target=lambda: ns.call(flood, timeout=120), daemon=True)
        flooder.start()
        rc, code, body, err = curl(ns, "/during-flood")
        flooder.join(120)
    assert rc == 0 and code == b"200", (rc, code, err)
    assert hashlib.sha256(body).digest() == hashlib.sha256(BODY).digest()
    rc, out, err = proc.result
    assert rc == 0, (out, err)
    c = counters(out)
    assert sent["n"] > 5000, sent
    assert c.get("tcp_syncookies_sent", 0) > 0, c
    assert c["tcp_passive_open"] == 1 and c.get("eth_drop_exception", 0) == 0, c
    print("\nSYN flood over the TAP: %d frames written, counters %r" % (sent["n"], c))
