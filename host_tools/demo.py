"""`python -m host_tools demo` (what `make demo` runs): fetch a page from Linux with the tcpip stack.

1. Makes a private network namespace with a TAP, tap0, whose Linux side is 192.0.2.1/24
   (host_tools.netns.TestNamespace); the stack will be 192.0.2.2 at the far end of the TAP.
2. Starts a real HTTP server in it (python -m http.server --bind 192.0.2.1 8080, serving a
   temporary folder with a small index.html) and waits, with a deadline, until `ss -ltn` in the
   namespace shows it listening.
3. Runs `python -m host_tools connect 192.0.2.1 8080 --send "GET / HTTP/1.0\\r\\n\\r\\n"` inside
   the namespace on CPython, then on the MicroPython unix port (through the UDP frame bridge),
   printing both timelines and the HTTP response, and a tcpdump summary of each capture.
4. Tears everything down (server, namespace, temporary files) always, also on Ctrl-C.
Exit status 0 only if both runtimes fetched the page.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from host_tools.netns import TestNamespace, child_env, read_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
HTTP_PORT = 8080
REQUEST = "GET / HTTP/1.0\\r\\n\\r\\n"  # the CLI interprets the escapes
MARKER = "Hello from Linux, through tcpip"
INDEX_HTML = ("<!doctype html>\n<html><head><title>tcpip demo</title></head>\n"
              "<body><p>%s.</p></body></html>\n" % MARKER)
LISTEN_DEADLINE_S = 10.0
CLI_DEADLINE_S = 60.0
RUNTIMES = ("cpython", "micropython")


def _say(text=""):
    print(text, flush=True)


def _wait_listening(ns, server):
    """Poll `ss -ltn` in the namespace until the server listens (bounded)."""
    deadline = time.monotonic() + LISTEN_DEADLINE_S
    want = "%s:%d" % (LINUX_IP, HTTP_PORT)
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the HTTP server exited (status %s)" % server.returncode)
        out = ns.run(["ss", "-ltnH"], check=False).stdout
        if any(want in line.split() for line in out.splitlines()):
            return
        time.sleep(0.05)
    raise RuntimeError("the HTTP server did not listen on %s within %.0f s" % (want, LISTEN_DEADLINE_S))


def _run_cli(ns, runtime, pcap):
    """Run the CLI in the namespace, echoing its output as it comes; returns (exit code, output)."""
    argv = ns.python_argv("-m", "host_tools", "connect", LINUX_IP, str(HTTP_PORT), "--tap", ns.tap,
                          "--addr", STACK_ADDR, "--gateway", LINUX_IP, "--send", REQUEST,
                          "--timeout", "10", "--runtime", runtime, "--pcap", pcap)
    proc = ns.popen(argv, env=child_env(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT)
    lines = []
    deadline = time.monotonic() + CLI_DEADLINE_S
    for _ in range(100000):
        line = read_line(proc.stdout, deadline)
        if line is None:
            break
        lines.append(line)
        _say("  " + line)
    try:
        proc.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        lines.append("(the CLI did not finish within %.0f s)" % CLI_DEADLINE_S)
    proc.stdout.close()
    return proc.returncode, "\n".join(lines)


def _pcap_summary(ns, pcap):
    if not shutil.which("tcpdump") or not os.path.exists(pcap):
        return
    out = subprocess.run(["tcpdump", "-n", "-r", pcap], capture_output=True, text=True, timeout=30)
    lines = out.stdout.splitlines()
    _say("  on the wire (%d frames, tcpdump -n -r):" % len(lines))
    for line in lines[:40]:
        _say("    " + line)
    if len(lines) > 40:
        _say("    ... %d more" % (len(lines) - 40))


def _check_prerequisites():
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (it makes a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        problems.append("/dev/net/tun is missing")
    for tool in ("ip", "ss"):
        if not shutil.which(tool):
            problems.append("'%s' is not installed (scripts/setup.sh)" % tool)
    return problems


def _teardown(ns, tmp):
    """End the HTTP server, delete the namespace and the temp dir; a second Ctrl-C or a SIGTERM
    meanwhile is ignored (it would leave the namespace and the folder behind)."""
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        ns.close()  # ends the HTTP server and deletes the namespace
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_demo():
    problems = _check_prerequisites()
    if problems:
        _say("demo: cannot run: " + "; ".join(problems))
        return 1
    results = {}
    tmp = tempfile.mkdtemp(prefix="tcpip-demo-")
    ns = TestNamespace()
    try:
        www = os.path.join(tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(INDEX_HTML)
        ns.create()
        _say("demo: namespace %s: %s has %s/24, the stack will be %s at the far end of the TAP"
             % (ns.name, ns.tap, LINUX_IP, STACK_ADDR))
        log = open(os.path.join(tmp, "http.log"), "w")
        try:
            server = ns.popen([sys.executable, "-m", "http.server", "--bind", LINUX_IP, "--directory", www,
                               str(HTTP_PORT)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        _wait_listening(ns, server)
        _say("demo: HTTP server listening on %s:%d (python -m http.server in the namespace)"
             % (LINUX_IP, HTTP_PORT))
        for runtime in RUNTIMES:
            _say()
            _say("=== %s: python -m host_tools connect %s %d --send \"%s\" --runtime %s ==="
                 % (runtime, LINUX_IP, HTTP_PORT, REQUEST, runtime))
            pcap = os.path.join(tmp, runtime + ".pcap")
            rc, output = _run_cli(ns, runtime, pcap)
            ok = rc == 0 and "HTTP/1.0 200" in output and MARKER in output
            results[runtime] = ok
            _pcap_summary(ns, pcap)
            _say("=== %s: %s (exit %s) ===" % (runtime, "page fetched" if ok else "FAILED", rc))
    except KeyboardInterrupt:
        _say("demo: interrupted, cleaning up")
        results["interrupted"] = False
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _say("demo: error: %s" % exc)
        results["error"] = False
    finally:
        _teardown(ns, tmp)
    _say()
    summary = ", ".join("%s %s" % (rt, "OK" if results.get(rt) else "FAILED") for rt in RUNTIMES)
    ok = all(results.get(rt) for rt in RUNTIMES) and len(results) == len(RUNTIMES)
    _say("demo: %s -> %s" % (summary, "success" if ok else "failure"))
    return 0 if ok else 1


def main():
    def on_term(signum, frame):
        raise KeyboardInterrupt  # SIGTERM tears down like Ctrl-C

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        return run_demo()
    finally:
        signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
