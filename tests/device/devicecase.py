"""What the device tests share: the host side of tests/device/board_script.py's scenarios (an echo
server, a closed port, the ping), reading its MARK lines, and the checks every board must pass."""
import json
import os
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BOARD_SCRIPT = os.path.join(HERE, "board_script.py")
MARK = "TCPIP-DEVICE "
PAYLOAD = "hello from the board\n"
ECHO_PREFIX = "echo:"


class EchoServer:
    """Accepts one connection on (ip, port) (port 0: any), reads len(PAYLOAD) bytes, answers
    ECHO_PREFIX + them and closes. sock_factory makes the listening socket (ns.call for a
    namespace). accepted: the peer address once one connected."""

    def __init__(self, ip, port=0, sock_factory=None, limit_s=60.0):
        make = sock_factory if sock_factory is not None else (lambda *a, **k: socket.create_server(*a, **k))
        self.sock = make((ip, port))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.accepted = None
        self.errors = []
        self.limit_s = limit_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + self.limit_s
        try:
            while time.monotonic() < deadline:
                try:
                    conn, peer = self.sock.accept()
                except socket.timeout:
                    continue
                self.accepted = peer
                with conn:
                    conn.settimeout(max(0.1, deadline - time.monotonic()))
                    data = b""
                    while len(data) < len(PAYLOAD):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(ECHO_PREFIX.encode() + data)
                return
        except OSError as exc:
            self.errors.append(exc)

    def close(self):
        self.sock.close()
        self.thread.join(5)


def closed_port(ip, sock_factory=None):
    """A TCP port on ip that nothing listens on (bound for a moment to find one, then closed)."""
    make = sock_factory if sock_factory is not None else (lambda *a, **k: socket.create_server(*a, **k))
    s = make((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


HTTP_PORT = 8080
HTTP_SIZE = 8192


def scenario_config(host, echo_port, refused_port, addr=None, gateway=None, serve_s=10.0, pings=3,
                    timeout_s=10.0, http_requests=2):
    return {"addr": addr, "gateway": gateway, "host": host, "echo_port": echo_port,
            "refused_port": refused_port, "payload": PAYLOAD, "serve_s": serve_s, "pings": pings,
            "timeout_s": timeout_s, "http_port": HTTP_PORT, "http_requests": http_requests,
            "http_size": HTTP_SIZE}


def http_body(n=HTTP_SIZE):
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n))


def curl_board(argv_prefix, ip, count=2, timeout=30):
    """The host's HTTP clients for the board's server scenario: curl, count times; a list of
    (exit status, body bytes, stderr text)."""
    out = []
    for i in range(count):
        r = subprocess.run(list(argv_prefix) + ["curl", "-s", "-S", "--max-time", str(timeout), "-o", "-",
                                                "http://%s:%d/req%d" % (ip, HTTP_PORT, i)],
                           capture_output=True, timeout=timeout + 10)
        out.append((r.returncode, r.stdout, r.stderr.decode(errors="replace")))
    return out


def board_program(cfg, board_file):
    """board_script.py with CONFIG and BOARD_SRC in front and the call to main() after: the text
    `mpremote run` sends to a board."""
    with open(board_file) as f:
        board_src = f.read()
    with open(BOARD_SCRIPT) as f:
        script = f.read()
    head = "CONFIG = json.loads(%r)\nBOARD_SRC = %r\n" % (json.dumps(cfg), board_src)
    return script + "\n" + head + "STACK = main(CONFIG, board_from_source(BOARD_SRC))\n"


def drive(proc, on_serving, deadline, last_step="done", on_listening=None):
    """Read proc's stdout (binary pipe) until last_step, EOF or the deadline: MARK lines become
    steps (dict by step name; "log" steps are listed). on_serving(steps) runs at the "serving"
    step (the host pings the board then), on_listening(steps) at "listening" (the host's HTTP
    clients; its result is steps["http_clients"]). Returns (steps, all output lines)."""
    steps = {"log": []}
    lines = []
    fd = proc.stdout.fileno()
    buf = b""
    import select

    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            if proc.poll() is not None and not buf:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        done = False
        while b"\n" in buf:
            raw, _, buf = buf.partition(b"\n")
            line = raw.decode(errors="replace").rstrip("\r")
            lines.append(line)
            at = line.find(MARK)
            if at < 0:
                continue
            try:
                msg = json.loads(line[at + len(MARK):])
            except ValueError:
                continue
            step = msg.get("step")
            if step == "log":
                steps["log"].append(msg.get("text"))
                continue
            steps[step] = msg
            if step == "serving":
                steps["ping"] = on_serving(steps)
            if step == "listening" and on_listening is not None:
                steps["http_clients"] = on_listening(steps)
            if step == last_step or step == "error":
                done = True
        if done:
            break
    return steps, lines


def ping(argv_prefix, ip, count=3, timeout=30):
    """ping -c count ip (argv_prefix: e.g. `ip netns exec NS`) -> CompletedProcess."""
    return subprocess.run(list(argv_prefix) + ["ping", "-c", str(count), "-W", "1", "-i", "0.2", ip],
                          capture_output=True, text=True, timeout=timeout)


def check_scenarios(steps, lines, echo_server, pings=3):
    """What every board (virtual or real) must have done."""
    text = "\n".join(lines[-60:])
    assert "error" not in steps, "bring-up failed: %s\n%s" % (steps["error"], text)
    assert "up" in steps, "the board never came up\n" + text
    p = steps.get("ping")
    assert p is not None and p.returncode == 0 and ("%d received" % pings) in p.stdout, (
        "ping of %s failed: %s\n%s" % (steps["up"].get("ip"), p and (p.stdout + p.stderr), text))
    assert steps.get("served", {}).get("echo_replies", 0) >= pings, text
    echo = steps.get("echo")
    assert echo is not None and echo["result"] == "connected", "echo: %r\n%s" % (echo, text)
    assert echo["received"] == ECHO_PREFIX + PAYLOAD, "echo: %r\n%s" % (echo, text)
    assert echo_server.accepted is not None and "%s:%d" % echo_server.accepted == echo["local"], (
        echo_server.accepted, echo)
    assert steps.get("refused", {}).get("result") == "ECONNREFUSED", "refused: %r\n%s" % (
        steps.get("refused"), text)
    http = steps.get("http")
    assert http is not None and "error" not in http and http["served"] == 2, "http: %r\n%s" % (http, text)
    assert http["requests"] == ["GET /req0 HTTP/1.1", "GET /req1 HTTP/1.1"], http
    clients = steps.get("http_clients")
    assert clients is not None and len(clients) == 2, "no HTTP clients ran\n" + text
    for rc, body, err in clients:
        assert rc == 0 and body == http_body(), "curl %d, %d bytes: %s\n%s" % (rc, len(body), err, text)
    assert "done" in steps, text
