"""TLS over tcpip sockets against Linux servers (issue 9, item 4).

A private namespace (tap0, Linux 192.0.2.1/24, the stack 192.0.2.2) holds an HTTPS server and a
small MQTT broker on TLS (CPython's ssl, OpenSSL, in threads of this process); a CA and the
servers' certificate (name tls.test) are made for the test with the `openssl` command, and a
second, unrelated CA stands for the wrong one. The clients are plain `socket` + `ssl` scripts
(tests/host/clients/https_get.py, mqtt_tls.py) that verify the server's certificate and name:
- on the MicroPython unix port, with tcpip.socket installed as `socket` (launch.py, over the UDP
  frame bridge) and MicroPython's own ssl (mbedTLS) wrapping the tcpip socket;
- on CPython in-process over a TapDevice, with `ssl` answered by host_tools.tls (ssl.MemoryBIO +
  SSLObject over the tcpip socket: CPython's ssl cannot wrap a socket without a descriptor).
The HTTPS client makes four connections in one process: the right CA (the body's SHA-256), the
wrong CA (an SSL error, at once), the right CA with a wrong name (an SSL error), the right CA
again (the stack is still usable). The MQTT session connects, subscribes, publishes at QoS 0 and
1 and gets both back, pings and disconnects; the broker checks what it got.
Needs root, /dev/net/tun, iproute2 and openssl (scripts/setup.sh installs it).
"""
import builtins
import contextlib
import io
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import pytest

from host_tools import tls as host_tls
from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary
from host_tools.tap import TapDevice
from realpeer import payload, require_environment, sha
from tcpip import socket as tsocket
from tcpip import tcp
from tcpip.stack import Stack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "host", "clients")
LAUNCH = os.path.join(CLIENTS, "launch.py")
HTTPS_GET = os.path.join(CLIENTS, "https_get.py")
MQTT_TLS = os.path.join(CLIENTS, "mqtt_tls.py")
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
HTTPS_PORT = 8443
MQTT_PORT = 8883
NAME = "tls.test"
BODY = payload(48 * 1024, 11)
CHILD_TIMEOUT_S = 120


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("the TLS tests", tools=("ip",), micropython=True)
    if not shutil.which("openssl"):
        pytest.fail("the TLS tests cannot run: 'openssl' is not installed (Debian package openssl; "
                    "scripts/setup.sh installs it)", pytrace=False)


def openssl(*args, cwd):
    proc = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """ca.pem / ca.der (the CA), server.pem / server.key (tls.test, signed by it), other-ca.der."""
    d = str(tmp_path_factory.mktemp("tls"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca, cn in (("ca", "tcpip test CA"), ("other-ca", "some other CA")):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "30",
                "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        # the clients load DER (the unix port's mbedTLS is built without its PEM parser)
        openssl("x509", "-in", ca + ".pem", "-outform", "der", "-out", ca + ".der", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=" + NAME, cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n" % NAME)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "30", "-extfile", "server.ext", cwd=d)
    return d


class TlsServers:
    """The HTTPS server (HTTPS_PORT: GET -> 200 with BODY, then close_notify and FIN) and the MQTT
    broker (MQTT_PORT) on LINUX_IP in ns, each accepting connections in a thread until close().
    handshakes: ("https" | "mqtt", None or the handshake error); mqtt: what the broker saw."""

    def __init__(self, ns, certdir):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(certdir, "server.pem"), os.path.join(certdir, "server.key"))
        self.handshakes = []
        self.mqtt = []
        self.stop = threading.Event()
        self.threads = []
        for port, serve in ((HTTPS_PORT, self._https), (MQTT_PORT, self._mqtt)):
            lsock = ns.call(socket.create_server, (LINUX_IP, port))
            lsock.settimeout(0.2)
            t = threading.Thread(target=self._accept, args=(lsock, serve), daemon=True)
            t.start()
            self.threads.append((t, lsock))

    def _accept(self, lsock, serve):
        deadline = time.monotonic() + 4 * CHILD_TIMEOUT_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(20)
            kind = "https" if serve == self._https else "mqtt"
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:  # the client refused our certificate
                self.handshakes.append((kind, repr(exc)))
                conn.close()
                continue
            self.handshakes.append((kind, None))
            threading.Thread(target=self._session, args=(tls, serve), daemon=True).start()

    def _session(self, tls, serve):
        try:
            serve(tls)
        except (ssl.SSLError, OSError, AssertionError) as exc:
            self.mqtt.append(("error", repr(exc)))
        finally:
            tls.close()

    def _https(self, tls):
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 4096:
            chunk = tls.recv(4096)
            if not chunk:
                return
            req += chunk
        tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        tls.unwrap()  # close_notify: the client's read() ends there

    def _mqtt(self, tls):
        def read_exact(n):
            out = b""
            while len(out) < n:
                chunk = tls.recv(n - len(out))
                assert chunk, "the client closed"
                out += chunk
            return out

        def read_packet():
            kind = read_exact(1)[0]
            n, shift = 0, 0
            while True:
                b = read_exact(1)[0]
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            return kind, read_exact(n) if n else b""

        def send(kind, body):
            tls.sendall(bytes([kind, len(body)]) + body)

        subs = {}
        next_id = 100
        for _ in range(16):
            kind, body = read_packet()
            t = kind & 0xF0
            if t == 0x10:  # CONNECT
                assert body[:6] == b"\x00\x04MQTT" and body[6] == 4, body
                cid_len = struct.unpack(">H", body[10:12])[0]
                self.mqtt.append(("connect", body[12:12 + cid_len].decode()))
                send(0x20, b"\x00\x00")
            elif t == 0x80:  # SUBSCRIBE
                pid = body[:2]
                tlen = struct.unpack(">H", body[2:4])[0]
                topic, qos = body[4:4 + tlen], body[4 + tlen]
                subs[topic] = qos
                self.mqtt.append(("subscribe", topic.decode(), qos))
                send(0x90, pid + bytes([qos]))
            elif t == 0x30:  # PUBLISH: acknowledge QoS 1, deliver to the subscription
                qos = (kind >> 1) & 3
                tlen = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + tlen]
                rest = body[2 + tlen:]
                if qos:
                    pid, rest = rest[:2], rest[2:]
                    send(0x40, pid)
                self.mqtt.append(("publish", qos, topic.decode(), rest.decode()))
                if topic in subs:
                    q = min(qos, subs[topic])
                    head = struct.pack(">H", tlen) + topic
                    if q:
                        next_id += 1
                        head += struct.pack(">H", next_id)
                    send(0x30 | q << 1, head + rest)
            elif t == 0x40:  # PUBACK of our QoS 1 delivery
                self.mqtt.append(("puback", struct.unpack(">H", body)[0]))
            elif t == 0xC0:
                self.mqtt.append(("ping",))
                send(0xD0, b"")
            elif t == 0xE0:
                self.mqtt.append(("disconnect",))
                return
            else:
                raise AssertionError("unexpected MQTT packet %#x" % kind)

    def close(self):
        self.stop.set()
        for t, lsock in self.threads:
            t.join(5)
            lsock.close()


@pytest.fixture
def servers(certs):
    with TestNamespace() as ns:
        s = TlsServers(ns, certs)
        try:
            yield ns, s
        finally:
            s.close()


def https_attempts(certs):
    good = os.path.join(certs, "ca.der")
    bad = os.path.join(certs, "other-ca.der")
    return [good + "," + NAME, bad + "," + NAME, good + ",other.test", good + "," + NAME]


def check_https(out, servers, runtime):
    lines = [l for l in out.splitlines() if l.startswith(("ok ", "fail "))]
    assert len(lines) == 4 and "done" in out.splitlines(), out
    ok = "ok HTTP/1.0 200 OK %d %s" % (len(BODY), sha(BODY))
    assert lines[0] == ok and lines[3] == ok, out
    for line in lines[1:3]:  # the wrong CA, the wrong name: the client's own SSL error
        kind, _, msg = line[5:].partition(" ")
        if runtime == "micropython":
            # mbedTLS (extmod/modtls_mbedtls.c): a failed verification is a ValueError with
            # mbedtls_x509_crt_verify_info's text
            assert kind == "ValueError" and "certificate" in msg.lower(), line
        else:
            assert kind == "SSLCertVerificationError" and "certificate verify failed" in msg, line
    hs = [e for k, e in servers.handshakes if k == "https"]
    assert len(hs) == 4 and hs[0] is None and hs[3] is None, servers.handshakes
    # the client broke them off with a TLS alert that says why, not by vanishing
    assert "UNKNOWN_CA" in hs[1] and "BAD_CERTIFICATE" in hs[2], servers.handshakes


def check_mqtt(out, servers, client_id):
    lines = out.splitlines()
    want = ["connack 0", "suback 1 1", "got 0 tcpip/test qos0 from " + client_id, "puback 2",
            "got 1 tcpip/test qos1 from " + client_id, "pingresp", "done"]
    assert [l for l in lines if l.split(" ")[0] in ("connack", "suback", "got", "puback", "pingresp", "done")] == want, out
    deadline = time.monotonic() + 10
    while ("disconnect",) not in servers.mqtt and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers.mqtt == [("connect", client_id), ("subscribe", "tcpip/test", 1),
                            ("publish", 0, "tcpip/test", "qos0 from " + client_id),
                            ("publish", 1, "tcpip/test", "qos1 from " + client_id),
                            ("puback", 101), ("ping",), ("disconnect",)], servers.mqtt
    assert [k for k, e in servers.handshakes if k == "mqtt" and e is None] == ["mqtt"]


# -- MicroPython unix port: its ssl over tcpip -------------------------------------------------------
def run_micropython(ns, script, args):
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 300}, daemon=True)
    relay.start()
    try:
        proc = ns.run([micropython_binary(), LAUNCH, str(bridge.port), STACK_ADDR, LINUX_IP, script] + args,
                      check=False, timeout=CHILD_TIMEOUT_S, env=child_env(), cwd=ROOT)
    finally:
        stop.set()
        relay.join(5)
        bridge.close()
    return proc.returncode, proc.stdout, proc.stderr


def test_https_get_on_micropython_ssl_over_tcpip(servers, certs):
    ns, srv = servers
    rc, out, err = run_micropython(ns, HTTPS_GET, [LINUX_IP, str(HTTPS_PORT), "/blob"] + https_attempts(certs))
    assert rc == 0, out + err
    check_https(out, srv, "micropython")
    assert out.splitlines()[-1].strip().startswith("tcbs"), out


def test_mqtt_over_tls_on_micropython_ssl_over_tcpip(servers, certs):
    ns, srv = servers
    rc, out, err = run_micropython(ns, MQTT_TLS, [LINUX_IP, str(MQTT_PORT), os.path.join(certs, "ca.der"),
                                                  NAME, "mp-client"])
    assert rc == 0, out + err
    check_mqtt(out, srv, "mp-client")


# -- CPython: host_tools.tls (MemoryBIO + SSLObject) over tcpip, in-process over a TAP ---------------
def exec_client(path, argv):
    """Run a client script as __main__ with `import socket` answered by tcpip.socket and
    `import ssl` by host_tools.tls."""
    real_import = builtins.__import__
    swap = {"socket": tsocket, "ssl": host_tls}

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name in swap and level == 0:
            return swap[name]
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


def run_cpython(ns, script, args):
    def body():
        out = io.StringIO()
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev, addr=STACK_ADDR, gateway=LINUX_IP)
            tsocket.set_default_stack(stack)
            try:
                with contextlib.redirect_stdout(out):
                    exec_client(script, [script] + args)
                stack.run_until(lambda: all(t.state == tcp.TIME_WAIT for t in stack.tcp.tcbs), 3000)
                left = [t.state_name() for t in stack.tcp.tcbs]
            finally:
                tsocket.set_default_stack(None)
        return out.getvalue(), left

    return ns.call(body, timeout=CHILD_TIMEOUT_S)


def test_https_get_on_cpython_over_tcpip(servers, certs):
    ns, srv = servers
    out, left = run_cpython(ns, HTTPS_GET, [LINUX_IP, str(HTTPS_PORT), "/blob"] + https_attempts(certs))
    check_https(out, srv, "cpython")
    assert left == [], left


def test_mqtt_over_tls_on_cpython_over_tcpip(servers, certs):
    ns, srv = servers
    out, left = run_cpython(ns, MQTT_TLS, [LINUX_IP, str(MQTT_PORT), os.path.join(certs, "ca.der"), NAME,
                                           "cpython-client"])
    check_mqtt(out, srv, "cpython-client")
    assert left == [], left
