"""Linux network namespaces for real-peer tests: TestNamespace, Tcpdump, sweep_stale_namespaces.

A TestNamespace holds one TAP (tap0) whose Linux side has 192.0.2.1/24: Linux is the peer, the
stack under test is the far end of the TAP (192.0.2.2 by convention). Needs root.

Two ways to run code inside the namespace:
  * PREFERRED: a child process, `ns.popen([...])` / `ns.run([...])` (`ip netns exec NS ...`);
    `ns.python_argv("-m", "host_tools.bridge", ...)` and `child_env()` help start Python children.
  * In-process: `ns.call(fn, *args)` runs fn in a short-lived thread that joined the namespace
    (setns is per thread), e.g. `dev = ns.call(TapDevice, "tap0")`; sockets and fds opened there
    stay in the namespace and work from any thread. `with ns.enter():` moves the *calling* thread
    in and back out again.
Names are "<prefix>-<pid>-<random>"; sweep_stale_namespaces() deletes those whose pid is gone.
"""
import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

from host_tools.pcap import parse_pcap
from host_tools.tap import parse_mac

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
DEFAULT_PREFIX = "tcpip"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND_TIMEOUT_S = 30

_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def _ip(args, timeout=COMMAND_TIMEOUT_S, check=True):
    proc = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError("ip %s failed (%d): %s" % (" ".join(args), proc.returncode,
                                                      proc.stderr.strip()))
    return proc


def list_namespaces():
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def namespace_exists(name):
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_namespaces(prefix=DEFAULT_PREFIX):
    """Delete "<prefix>-<pid>-*" namespaces whose creating process is gone; returns their names.

    Namespaces of live processes (other test runs on this machine) are left alone.
    """
    removed = []
    for name in list_namespaces():
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != prefix or not parts[1].isdigit():
            continue
        if _pid_alive(int(parts[1])):
            continue
        if _ip(["netns", "del", name], check=False).returncode == 0:
            removed.append(name)
    return removed


def child_env(extra=None):
    """Environment for Python/MicroPython children: repo root and lib/ importable."""
    env = dict(os.environ)
    paths = [ROOT, os.path.join(ROOT, "lib")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["MICROPYPATH"] = ":".join([os.path.join(ROOT, "lib"), os.path.join(ROOT, "host_tools", "mp"),
                                   ".frozen"])
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def venv_tool(name):
    """A tool installed beside this interpreter (the venv's bin/), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.path.exists(here) else shutil.which(name)
    if not found:
        raise RuntimeError("%s not found: run scripts/setup.sh" % name)
    return found


def micropython_binary():
    """The unix-port micropython beside this interpreter (the venv's), else the one on PATH."""
    return venv_tool("micropython")


class TestNamespace:
    """TestNamespace(name_prefix="tcpip", tap="tap0", linux_addr="192.0.2.1/24", routes=(),
    ip_forward=True, ipv6=False, linux_mac=None, sweep=True)

    On enter: a fresh netns with lo up, a persistent TAP `tap` (mode tap, up, carrier once a
    device attaches), `linux_addr` on it, each route of `routes` ("blackhole 198.51.100.1/32",
    "unreachable 198.51.100.2/32", "prohibit ...", "198.51.100.0/24 via 192.0.2.2", ...),
    net.ipv4.ip_forward=1, IPv6 off (no stray RS/MLD/DAD frames) unless ipv6=True.
    On exit (always, also on exceptions): children started with popen() are ended and the netns is
    deleted. Attributes: name, tap, linux_addr, linux_ip, prefix_len, linux_mac (bytes).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name_prefix=DEFAULT_PREFIX, tap="tap0", linux_addr="192.0.2.1/24", routes=(),
                 ip_forward=True, ipv6=False, linux_mac=None, sweep=True):
        self.name_prefix = name_prefix
        self.name = "%s-%d-%s" % (name_prefix, os.getpid(), os.urandom(3).hex())
        self.tap = tap
        self.linux_addr = linux_addr
        self.linux_ip, _, plen = linux_addr.partition("/")
        self.prefix_len = int(plen or 32)
        self.routes = list(routes)
        self.ip_forward = ip_forward
        self.ipv6 = ipv6
        self.linux_mac = parse_mac(linux_mac) if isinstance(linux_mac, str) else linux_mac
        self.sweep = sweep
        self._children = []
        self.created = False

    # -- lifecycle --
    def __enter__(self):
        self.create()
        return self

    def __exit__(self, *exc):
        self.close()

    def create(self):
        if self.sweep:
            sweep_stale_namespaces(self.name_prefix)
        _ip(["netns", "add", self.name])
        self.created = True
        try:
            self._configure()
        except BaseException:
            self.close()
            raise

    def _configure(self):
        n = ["-n", self.name]
        _ip(n + ["link", "set", "lo", "up"])
        if not self.ipv6:
            self.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
            self.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
        self.sysctl("net.ipv4.ip_forward", 1 if self.ip_forward else 0)
        _ip(n + ["tuntap", "add", "dev", self.tap, "mode", "tap"])
        if self.linux_mac is not None:
            _ip(n + ["link", "set", "dev", self.tap, "address", ":".join("%02x" % b for b in self.linux_mac)])
        _ip(n + ["addr", "add", self.linux_addr, "dev", self.tap])
        _ip(n + ["link", "set", "dev", self.tap, "up"])
        for route in self.routes:
            self.add_route(route)
        info = json.loads(_ip(n + ["-j", "link", "show", "dev", self.tap]).stdout)
        self.linux_mac = parse_mac(info[0]["address"])

    def close(self):
        """End our children (by pid) and delete the namespace. Safe to call twice."""
        children, self._children = self._children, []
        for proc in children:
            _end_process(proc)
        if self.created:
            self.created = False
            proc = _ip(["netns", "del", self.name], check=False)
            if proc.returncode != 0 and namespace_exists(self.name):
                raise RuntimeError("could not delete netns %s: %s" % (self.name, proc.stderr.strip()))

    # -- configuration --
    def add_route(self, route):
        """`route` as text ("blackhole 198.51.100.1/32") or a list of `ip route add` arguments."""
        args = route.split() if isinstance(route, str) else list(route)
        _ip(["-n", self.name, "route", "add"] + args)

    def sysctl(self, key, value):
        """Set a per-namespace sysctl (net.*) by writing /proc/sys from a thread inside the netns."""
        path = "/proc/sys/" + key.replace(".", "/")

        def write():
            with open(path, "w") as f:
                f.write("%s\n" % value)

        self.call(write)

    def ip(self, *args, check=True):
        """`ip -n NS args...` -> CompletedProcess (text)."""
        return _ip(["-n", self.name] + list(args), check=check)

    # -- child processes (preferred) --
    @property
    def exec_prefix(self):
        return ["ip", "netns", "exec", self.name]

    def run(self, args, check=True, timeout=COMMAND_TIMEOUT_S, capture_output=True, text=True, **kw):
        """subprocess.run(args) inside the namespace."""
        return subprocess.run(self.exec_prefix + list(args), check=check, timeout=timeout,
                              capture_output=capture_output, text=text, **kw)

    def popen(self, args, **kw):
        """subprocess.Popen(args) inside the namespace; ended (SIGTERM, then SIGKILL) by close()."""
        proc = subprocess.Popen(self.exec_prefix + list(args), **kw)
        self._children.append(proc)
        return proc

    def python_argv(self, *args):
        """[sys.executable, *args]: for run()/popen() together with env=child_env()."""
        return [sys.executable] + list(args)

    # -- in-process --
    @contextlib.contextmanager
    def enter(self):
        """Move the calling thread into the namespace for the with-block, then back."""
        with open("/proc/thread-self/ns/net", "rb") as home:
            with open(os.path.join(NETNS_DIR, self.name), "rb") as target:
                _setns(target.fileno())
            try:
                yield self
            finally:
                _setns(home.fileno())

    def call(self, fn, *args, timeout=COMMAND_TIMEOUT_S, **kwargs):
        """fn(*args, **kwargs) in a helper thread inside the namespace; returns its result or raises."""
        result = {}

        def body():
            try:
                with open(os.path.join(NETNS_DIR, self.name), "rb") as target:
                    _setns(target.fileno())
                result["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller
                result["error"] = exc

        thread = threading.Thread(target=body, name="netns-" + self.name, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("%r did not finish within %s s in %s" % (fn, timeout, self.name))
        if "error" in result:
            raise result["error"]
        return result.get("value")


def _end_process(proc, timeout=5.0):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def read_line(stream, deadline):
    """One line from a pipe (binary or text) before `deadline` (time.monotonic()); None at timeout/EOF."""
    fd = stream.fileno()
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        b = os.read(fd, 1)
        if not b:
            break
        if b == b"\n":
            return b"".join(chunks).decode(errors="replace")
        chunks.append(b)
    return None


class Tcpdump:
    """Tcpdump(ns, iface="tap0", bpf=None, path=None, snaplen=65535, max_duration_s=600)

    tcpdump -U --immediate-mode -w - inside `ns`; start() returns once tcpdump says it is
    "listening on" the interface (its capture socket is open, so nothing later is missed).
    packets() / wait_for(count, timeout_s) / stop() give [(timestamp, frame_bytes)]; stop() also
    writes the capture to `path` if one was given. Also a context manager (start/stop).
    """

    def __init__(self, ns, iface="tap0", bpf=None, path=None, snaplen=65535, max_duration_s=600):
        self.ns = ns
        self.iface = iface
        self.bpf = bpf
        self.path = path
        self.snaplen = snaplen
        self.max_duration_s = max_duration_s
        self.stderr_lines = []
        self._proc = None
        self._data = bytearray()
        self._lock = threading.Lock()
        self._reader = None
        self._packets = []

    def start(self, timeout_s=10.0):
        args = ["tcpdump", "-U", "--immediate-mode", "-n", "-s", str(self.snaplen), "-i", self.iface,
                "-w", "-"]
        if self.bpf:
            args += self.bpf.split() if isinstance(self.bpf, str) else list(self.bpf)
        self._proc = self.ns.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        for _ in range(100):  # tcpdump prints one or two lines before "listening on"
            line = read_line(self._proc.stderr, deadline)
            if line is None:
                break
            self.stderr_lines.append(line)
            if "listening on" in line:
                self._reader = threading.Thread(target=self._read_stdout, daemon=True)
                self._reader.start()
                return self
        _end_process(self._proc)
        raise RuntimeError("tcpdump did not start listening on %s in %s: %s" % (
            self.iface, self.ns.name, " | ".join(self.stderr_lines + [self._proc.stderr.read().decode(errors="replace")])))

    def _read_stdout(self):
        proc = self._proc  # stop() clears self._proc while this thread may still run
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.max_duration_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    ready = [fd]  # drain what is left, then see EOF
                else:
                    continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self._lock:
                self._data += chunk
        _end_process(proc)

    def packets(self):
        """Complete packets captured so far."""
        with self._lock:
            data = bytes(self._data)
        return parse_pcap(data, partial_ok=True)[2]

    def wait_for(self, count, timeout_s=5.0, predicate=None):
        """Poll (bounded) until `count` packets (matching predicate(frame), if given) have arrived.

        Returns the matching packets, fewer if the timeout passed.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            pkts = self.packets()
            if predicate is not None:
                pkts = [p for p in pkts if predicate(p[1])]
            if len(pkts) >= count or time.monotonic() >= deadline:
                return pkts
            time.sleep(0.01)

    def stop(self, timeout_s=5.0):
        """SIGINT tcpdump, collect everything it wrote, return [(timestamp, frame_bytes)]."""
        if self._proc is None:
            return self._packets
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if self._reader is not None:
            self._reader.join(timeout_s)
        try:
            rest = proc.stderr.read().decode(errors="replace")
            self.stderr_lines.extend(rest.splitlines())
        finally:
            proc.stdout.close()
            proc.stderr.close()
        with self._lock:
            data = bytes(self._data)
        self._packets = parse_pcap(data, partial_ok=True)[2]
        if self.path is not None:
            with open(self.path, "wb") as f:
                f.write(data)
        return self._packets

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
