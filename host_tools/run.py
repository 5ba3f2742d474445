"""`python -m host_tools run SCRIPT.py`: an unmodified MicroPython script over the tcpip stack.

    python -m host_tools run SCRIPT.py --tap IFNAME --addr A.B.C.D/N [--gateway IP] [--dns IP]
        [--runtime micropython|cpython] [--timeout S] [--pcap FILE] [--stats] [-- ARGS...]
    python -m host_tools run SCRIPT.py --netns [--http DIR [--http-port N]] [...]

The script sees tcpip's `socket` and `usocket` (and `select`/`time` whose waits service the stack):
host_tools/mp/run_main.py installs them and runs it as __main__, on either runtime.

--runtime micropython (default): this process opens the TAP and relays its frames over UDP on
127.0.0.1 (host_tools.bridge, in a thread), and starts the unix port on run_main.py with
MICROPYPATH = lib + the user's MICROPYPATH or the port's default (`.frozen` kept, so the frozen
asyncio, ssl and requests stay importable). --runtime cpython runs the script in this process
over a TapDevice. Both need the namespace that holds the TAP, as connect does.

--netns makes that namespace (host_tools.netns.TestNamespace: tap0, Linux at 192.0.2.1/24,
IP forwarding, no IPv6), optionally starts `python -m http.server` there (--http DIR), runs this
command again inside it (`ip netns exec`) with --tap tap0 --addr 192.0.2.2/24 --gateway 192.0.2.1
unless given, and deletes everything at the end, also on Ctrl-C. The namespace's name is printed
first, so other commands can join it (`ip netns exec NAME ...`).

Exit status: the script's (0 when it returned, its sys.exit code, 1 when it raised, 130 on
Ctrl-C); 1 when --timeout ended it or the runtime failed; 2 usage error.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
RUN_MAIN = os.path.join(ROOT, "host_tools", "mp", "run_main.py")
MP_DEFAULT_PATH = ".frozen:~/.micropython/lib:/usr/lib/micropython"  # the unix port's own default
MP_HEAP = "4M"
NETNS_TAP = "tap0"
NETNS_LINUX = "192.0.2.1"
NETNS_ADDR = "192.0.2.2/24"
LISTEN_DEADLINE_S = 10.0
CTRL_C_WAIT_S = 5.0  # Ctrl-C reached the child too: how long it may take to finish on its own
END_GRACE_S = 10.0   # after we signalled the child: how long it may take before SIGKILL
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(sub, cidr, ipv4_text, port, positive_float):
    r = sub.add_parser(
        "run", help="run an unmodified MicroPython script over the stack (socket/usocket are tcpip's)",
        description="Run SCRIPT.py with tcpip's socket module as `socket` and `usocket` (and `select` "
                    "and `time` whose waits service the stack), on the MicroPython unix port "
                    "(default) or CPython, over a TAP: unmodified MicroPython network code runs "
                    "as it is. Arguments for the script go after `--`.",
        epilog="Examples:\n"
               "  python -m host_tools run client.py --netns --http ./www -- http://192.0.2.1:8080/\n"
               "  ip netns exec NS python -m host_tools run client.py --tap tap0 --addr 192.0.2.2/24 "
               "--gateway 192.0.2.1\n"
               "Exit status: the script's (1 when it raised, 130 on Ctrl-C); 1 on --timeout; 2 usage "
               "error. See docs/CLI.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("script", metavar="SCRIPT.py", help="the script to run as __main__")
    r.add_argument("script_args", nargs="*", metavar="ARG",
                   help="its arguments (put them after `--` when one starts with '-')")
    r.add_argument("--tap", metavar="IFNAME",
                   help="existing TAP interface in this namespace (with --netns: %s)" % NETNS_TAP)
    r.add_argument("--addr", type=cidr, metavar="A.B.C.D/N",
                   help="the stack's address and prefix (with --netns: %s)" % NETNS_ADDR)
    r.add_argument("--gateway", type=ipv4_text, metavar="IP",
                   help="default gateway, on the --addr network (with --netns: %s)" % NETNS_LINUX)
    r.add_argument("--dns", type=ipv4_text, action="append", metavar="IP",
                   help="DNS server for getaddrinfo (tcpip.dns; repeat for more); default: none, "
                        "numeric addresses only")
    r.add_argument("--runtime", choices=("micropython", "cpython"), default="micropython",
                   help="the MicroPython unix port through the frame bridge (default), or this "
                        "CPython process")
    r.add_argument("--netns", action="store_true",
                   help="make a private namespace with %s and Linux at %s/24 for the run, and "
                        "delete it afterwards (needs root)" % (NETNS_TAP, NETNS_LINUX))
    r.add_argument("--http", metavar="DIR",
                   help="with --netns: serve DIR with python -m http.server on %s (--http-port)"
                        % NETNS_LINUX)
    r.add_argument("--http-port", type=port, default=8080, metavar="N", help="default 8080")
    r.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="end the script (as Ctrl-C would) after SECONDS; exit status 1")
    r.add_argument("--pcap", metavar="FILE", help="record every frame to this pcap file")
    r.add_argument("--stats", action="store_true",
                   help="at the end, print the stack's nonzero counters and the connections left "
                        "(stderr)")
    return r


def split_script_args(argv):
    """argv of `run` -> (argv before `--`, the arguments after it)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def check_args(parser, args):
    """Usage errors, reported with run's own usage (parser: the run subparser)."""
    if not os.path.isfile(args.script) or not os.access(args.script, os.R_OK):
        parser.error("no readable script %r" % args.script)
    args.script = os.path.abspath(args.script)
    if args.netns:
        if os.geteuid() != 0:
            parser.error("--netns makes a network namespace and a TAP: run as root")
        args.tap = args.tap or NETNS_TAP
        args.addr = args.addr or NETNS_ADDR
        if args.gateway is None:
            args.gateway = NETNS_LINUX
        from tcpip.route import Route

        r = Route()
        r.configure(args.addr)
        linux = Route()
        linux.configure(NETNS_LINUX + "/24")
        if not linux.on_link(r.addr, 0) or r.is_local(linux.addr, 0):
            parser.error("--addr %s: with --netns the stack needs an address on 192.0.2.0/24 other "
                         "than Linux's %s" % (args.addr, NETNS_LINUX))
        if args.http is not None and not os.path.isdir(args.http):
            parser.error("--http: no directory %r" % args.http)
    else:
        missing = [o for o, v in (("--tap", args.tap), ("--addr", args.addr)) if v is None]
        if missing:
            parser.error("%s required (or --netns: a private namespace with a TAP and Linux at %s)"
                         % (" and ".join(missing) + (" are" if len(missing) > 1 else " is"), NETNS_LINUX))
        if args.http is not None:
            parser.error("--http goes with --netns (it starts the server in that namespace)")
    if args.pcap is not None:
        args.pcap = os.path.abspath(args.pcap)


def micropypath(environ=None):
    """lib, then the user's MICROPYPATH (or the unix port's default), with .frozen kept."""
    environ = os.environ if environ is None else environ
    rest = environ.get("MICROPYPATH") or MP_DEFAULT_PATH
    parts = [LIB] + [p for p in rest.split(":") if p and p != LIB]
    if ".frozen" not in parts:
        parts.append(".frozen")
    return ":".join(parts)


_terminated = []  # SIGTERM came (to us alone, not to the process group as Ctrl-C's SIGINT does)


def run_command(args, script_args, open_tap_or_exit):
    """The run subcommand after argument checks; returns the exit status."""
    def on_term(signum, frame):
        _terminated.append(signum)
        raise KeyboardInterrupt  # cleans up as Ctrl-C does

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        if args.netns:
            return _run_in_new_namespace(args, script_args)
        if args.runtime == "cpython":
            return _run_cpython(args, script_args, open_tap_or_exit)
        return _run_micropython(args, script_args, open_tap_or_exit)
    finally:
        signal.signal(signal.SIGTERM, old)


def _interrupted_wait():
    """How long a child may take alone after our KeyboardInterrupt: Ctrl-C signalled it as well;
    a SIGTERM to us did not."""
    return 0.5 if _terminated else CTRL_C_WAIT_S


def _say(text):
    print("run: " + text, file=sys.stderr, flush=True)


def _config(args):
    return {"addr": args.addr, "gateway": args.gateway, "dns": args.dns or None,
            "report": "stderr" if args.stats else None}


# -- CPython: the script in this process -----------------------------------------------------------
def _run_cpython(args, script_args, open_tap_or_exit):
    from host_tools.mp import run_main
    from host_tools.pcap import PcapTap, PcapWriter
    from host_tools.tap import TapDevice

    tap = open_tap_or_exit(args, lambda: TapDevice(args.tap))
    writer = None
    saved_modules = {n: sys.modules.get(n) for n in ("socket", "usocket", "select", "uselect", "time",
                                                     "utime")}
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    timed_out = []

    def on_alarm(signum, frame):
        timed_out.append(True)
        raise KeyboardInterrupt

    old_alarm = None
    try:
        dev = tap
        if args.pcap:
            writer = PcapWriter(args.pcap)
            dev = PcapTap(tap, writer)
        stack = run_main.build_stack(dev, _config(args))
        if args.timeout:
            old_alarm = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
        report = sys.stderr if args.stats else None
        status = run_main.run(stack, args.script, script_args, report=report)
    finally:
        if old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_alarm)
        for name, mod in saved_modules.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
        sys.argv[:], sys.path[:] = saved_argv, saved_path
        if writer is not None:
            writer.close()
        tap.close()
    if timed_out:
        _say("%s did not finish within %g s: ended" % (args.script, args.timeout))
        return EXIT_FAIL
    return status


# -- MicroPython: the frame bridge here, the script in a unix-port child ----------------------------
def _lo_is_up():
    from host_tools.tap import IFF_UP, interface_flags

    try:
        return bool(interface_flags("lo") & IFF_UP)
    except OSError:
        return False


def _run_micropython(args, script_args, open_tap_or_exit):
    from host_tools.bridge import FrameBridge
    from host_tools.netns import micropython_binary

    try:
        mp = micropython_binary()
    except RuntimeError as exc:
        _say(str(exc))
        return EXIT_FAIL
    if not _lo_is_up():
        _say("lo is down in this network namespace, and the frame bridge talks to micropython over "
             "127.0.0.1: ip link set lo up")
        return EXIT_USAGE
    bridge = open_tap_or_exit(args, lambda: FrameBridge(args.tap, pcap=args.pcap))
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, name="frame-bridge", kwargs={"stop_event": stop},
                             daemon=True)
    relay.start()
    cfg = _config(args)
    cfg["bridge_port"] = bridge.port
    env = dict(os.environ)
    env["TCPIP_RUN"] = json.dumps(cfg)
    env["MICROPYPATH"] = micropypath()
    child = None
    status = EXIT_FAIL
    try:
        child = subprocess.Popen([mp, "-X", "heapsize=" + MP_HEAP, RUN_MAIN, args.script] + script_args,
                                 env=env)
        try:
            status = child.wait(args.timeout)
        except subprocess.TimeoutExpired:
            _say("%s did not finish within %g s: ended" % (args.script, args.timeout))
            _end_child(child, signal.SIGINT, 0)
            status = EXIT_FAIL
        except KeyboardInterrupt:
            # Ctrl-C reached the child too (same process group); SIGTERM to us: pass it on as SIGINT
            _end_child(child, signal.SIGINT, _interrupted_wait())
            status = EXIT_INTERRUPTED
    finally:
        ignored = _ignore_stop_signals()
        try:
            if child is not None and child.poll() is None:
                child.kill()
                child.wait(5)
            stop.set()
            relay.join(5)
            bridge.close()
        finally:
            _restore(ignored)
    return status


def _end_child(child, sig, first_wait_s):
    """Give the child first_wait_s to end, then ask it with sig, then SIGKILL after END_GRACE_S."""
    try:
        child.wait(first_wait_s)
        return
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    if child.poll() is None:
        child.send_signal(sig)
    try:
        child.wait(END_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        child.kill()
        child.wait(5)


def _ignore_stop_signals():
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
    return old


def _restore(old):
    for sig, handler in old.items():
        signal.signal(sig, handler)


# -- --netns: make the namespace, run this command again inside it ----------------------------------
def _wait_listening(ns, server, ip, port):
    """Poll `ss -ltn` in the namespace until the server listens on ip:port (bounded)."""
    deadline = time.monotonic() + LISTEN_DEADLINE_S
    want = "%s:%d" % (ip, port)
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the HTTP server exited (status %s)" % server.returncode)
        out = ns.run(["ss", "-ltnH"], check=False).stdout
        if any(want in line.split() for line in out.splitlines()):
            return
        time.sleep(0.05)
    raise RuntimeError("the HTTP server did not listen on %s within %.0f s" % (want, LISTEN_DEADLINE_S))


def inner_argv(args, script_args):
    """The run command the namespace runs: the same, with the namespace's device settings."""
    argv = ["-m", "host_tools", "run", args.script, "--tap", args.tap, "--addr", args.addr,
            "--gateway", args.gateway, "--runtime", args.runtime]
    for server in args.dns or ():
        argv += ["--dns", server]
    if args.timeout:
        argv += ["--timeout", repr(args.timeout)]
    if args.pcap:
        argv += ["--pcap", args.pcap]
    if args.stats:
        argv.append("--stats")
    return argv + ["--"] + list(script_args)


def _run_in_new_namespace(args, script_args):
    from host_tools.netns import TestNamespace, child_env

    ns = TestNamespace(tap=args.tap, linux_addr=NETNS_LINUX + "/24")
    child = None
    status = EXIT_FAIL
    try:
        try:
            ns.create()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            _say("could not make the namespace: %s" % exc)
            return EXIT_FAIL
        text = "namespace %s: %s with Linux at %s/24, the stack at %s" % (
            ns.name, ns.tap, NETNS_LINUX, args.addr)
        if args.http is not None:
            server = ns.popen([sys.executable, "-m", "http.server", "--bind", NETNS_LINUX, "--directory",
                               os.path.abspath(args.http), str(args.http_port)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_listening(ns, server, NETNS_LINUX, args.http_port)
            except RuntimeError as exc:
                _say(str(exc))
                return EXIT_FAIL
            text += "; HTTP on %s:%d serving %s" % (NETNS_LINUX, args.http_port, args.http)
        _say(text)
        env = child_env()
        if "MICROPYPATH" in os.environ:  # the user's, not child_env's: the inner run builds its own
            env["MICROPYPATH"] = os.environ["MICROPYPATH"]
        else:
            env.pop("MICROPYPATH", None)
        child = ns.popen(ns.python_argv(*inner_argv(args, script_args)), env=env)
        limit = args.timeout + 2 * END_GRACE_S + 10 if args.timeout else None
        try:
            status = child.wait(limit)
        except subprocess.TimeoutExpired:
            _say("the run in the namespace did not end within %g s" % limit)
            _end_child(child, signal.SIGTERM, 0)
        except KeyboardInterrupt:
            _end_child(child, signal.SIGTERM, _interrupted_wait() + 1)
            status = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    finally:
        ignored = _ignore_stop_signals()
        try:
            ns.close()  # ends the server and the child (if still there), deletes the namespace
        finally:
            _restore(ignored)
    return status
