"""python -m host_tools deploy --board NAME [--port PORT] [--static A.B.C.D/N [--gateway IP]]
    [--dns IP ...] [--hostname NAME] [--no-autostart] [--out DIR] [--dry-run]
python -m host_tools repl [--port PORT] [--dry-run]

deploy builds the .mpy bundle for the board (host_tools/build.py), writes /tcpip_config.py (the
board, static address or DHCP, DNS, hostname) and copies everything with mpremote:

    mpremote connect PORT run DIR/cleanup.py          # old bundle files out (so no stale .py shadows an .mpy)
    mpremote connect PORT fs cp -r DIR/lib DIR/boot.py DIR/main.py DIR/tcpip_config.py :.
    mpremote connect PORT soft-reset exec "import main"  # fresh interpreter, main.py brings the network up

The last step shows the bring-up (address from DHCP, or what to check) and leaves the board at its
REPL with `net` ready: `python -m host_tools repl` (= mpremote connect PORT repl) gets there.
PORT is what mpremote takes: a device (/dev/ttyACM0, COM3), a shortcut (a0, u0) or auto (default).
--dry-run prints the commands without running them. Exit status: 0 done, 1 build or mpremote
failure, 2 usage error.

Paths on the board are relative to its working directory, which is / after the soft reset that
mpremote does before its first command.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from host_tools import build  # noqa: E402

CONFIG_NAME = "tcpip_config.py"
CLEANUP_NAME = "cleanup.py"
DEVICE_ITEMS = ("lib", "boot.py", "main.py", CONFIG_NAME)
MPREMOTE_TIMEOUT_S = 600    # copying ~100 KB over USB CDC takes seconds; this bounds a stuck board
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

# Removes what an earlier deploy or mip install left (bundle files only; user files stay).
CLEANUP = '''# tcpip deploy: remove the files of an earlier bundle or mip install
import os


def rm(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for n in os.listdir(p):
            rm(p + "/" + n)
        os.rmdir(p)
    else:
        os.remove(p)


for p in %r:
    rm(p)
print("cleanup: done")
'''


def old_paths(result):
    """Board paths the bundle replaces: lib/tcpip whole, each other file as .py and .mpy."""
    out = ["lib/tcpip"]
    for dest, _, _ in result["rows"]:
        if dest.startswith("lib/tcpip/") or not dest.startswith("lib/"):
            continue
        stem = dest[:-4] if dest.endswith(".mpy") else dest[:-3]
        for ext in (".py", ".mpy"):
            if stem + ext not in out:
                out.append(stem + ext)
    return out


def config_text(board, addr=None, gateway=None, dns=None, hostname=None, autostart=True):
    """/tcpip_config.py: read by firmware/net.py (net.up, net.boot)."""
    return (
        "# /tcpip_config.py: written by `python -m host_tools deploy`. Edit it, then press Ctrl-D\n"
        "# (soft reset) at the REPL, or call net.up() again. See docs/BOARDS.md.\n"
        "BOARD = %r  # boards/<BOARD>.py (in /lib/boards)\n"
        "ADDR = %r  # 'a.b.c.d/n' for a static address; None: DHCP\n"
        "GATEWAY = %r  # with ADDR: the default gateway\n"
        "DNS = %r  # ['a.b.c.d', ...]; None: the DHCP server's\n"
        "HOSTNAME = %r  # sent to the DHCP server (option 12)\n"
        "AUTOSTART = %r  # main.py brings the network up at boot\n"
    ) % (board, addr, gateway, list(dns) if dns else None, hostname, bool(autostart))


def mpremote_tool():
    from host_tools.netns import venv_tool

    return venv_tool("mpremote")


def deploy_commands(out, port="auto", mpremote="mpremote"):
    """The mpremote invocations of a deploy from bundle directory `out` (lists of arguments)."""
    conn = [mpremote, "connect", port]
    return [
        conn + ["run", os.path.join(out, CLEANUP_NAME)],
        conn + ["fs", "cp", "-r"] + [os.path.join(out, item) for item in DEVICE_ITEMS] + [":."],
        conn + ["soft-reset", "exec", "import main"],
    ]


def repl_command(port="auto", mpremote="mpremote"):
    return [mpremote, "connect", port, "repl"]


def _cidr(text):
    from tcpip.route import Route

    if "/" not in text:
        raise argparse.ArgumentTypeError("--static needs a prefix length: A.B.C.D/N")
    try:
        Route().configure(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("bad --static %r: %s" % (text, exc))
    return text


def _ipv4(text):
    from tcpip.wire import ipv4

    try:
        ipv4.aton(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def _hostname(text):
    ok = 0 < len(text) <= 63 and all(c.isalnum() or c == "-" for c in text) and text[0] != "-"
    if not ok:
        raise argparse.ArgumentTypeError("a hostname is 1..63 letters, digits and '-'")
    return text


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m host_tools deploy",
        description="Build the armv6m bundle for a board, write /tcpip_config.py and copy both to the "
                    "board with mpremote, then soft-reset it and run main.py (the network comes up).",
        epilog="Example: python -m host_tools deploy --board w5500_evb_pico --port /dev/ttyACM0")
    p.add_argument("--board", required=True, metavar="NAME",
                   help="board file boards/NAME.py: %s" % ", ".join(build.board_names()))
    p.add_argument("--port", default="auto", metavar="PORT",
                   help="mpremote's device: /dev/ttyACM0, COM3, a0, ... (default auto)")
    p.add_argument("--static", type=_cidr, metavar="A.B.C.D/N",
                   help="static address and prefix instead of DHCP")
    p.add_argument("--gateway", type=_ipv4, metavar="IP", help="default gateway (with --static)")
    p.add_argument("--dns", type=_ipv4, action="append", metavar="IP",
                   help="DNS server (repeat for more); default: the DHCP server's")
    p.add_argument("--hostname", type=_hostname, metavar="NAME", help="hostname sent to the DHCP server")
    p.add_argument("--no-autostart", action="store_true",
                   help="main.py leaves the network down (net.up() at the REPL brings it up)")
    p.add_argument("--out", metavar="DIR",
                   help="bundle directory, kept (default: a temporary one, removed after a real run)")
    p.add_argument("--budget", type=int, metavar="KB", default=build.BUDGET_BYTES // 1024,
                   help="bundle budget as for build (default %d)" % (build.BUDGET_BYTES // 1024))
    p.add_argument("--lines", action="store_true",
                   help="keep the line-number tables, as for build (real line numbers in tracebacks)")
    p.add_argument("--dry-run", action="store_true", help="build, then print the mpremote commands only")
    return p


def port_hint(command, rc):
    """The one line after a failed mpremote (a board that is not there, or held by another program)."""
    return ("%s: mpremote failed (exit %s). Is the board connected and named by --port (mpremote "
            "connect list shows the ports)? Is another program (Thonny, a serial monitor) holding "
            "it?" % (command, rc))


def _run(cmds, runner):
    for cmd in cmds:
        print("$ " + shlex.join(cmd), flush=True)
        rc = runner(cmd)
        if rc != 0:
            print(port_hint("deploy", rc), file=sys.stderr)
            return EXIT_FAIL
    return EXIT_OK


def _subprocess_runner(cmd):
    try:
        return subprocess.run(cmd, timeout=MPREMOTE_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        print("deploy: %s did not finish within %d s" % (cmd[0], MPREMOTE_TIMEOUT_S), file=sys.stderr)
        return "timeout"


def main(argv=None, runner=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.board not in build.board_names():
        parser.error("unknown board %r; boards/ has: %s" % (args.board, ", ".join(build.board_names())))
    if args.gateway is not None and args.static is None:
        parser.error("--gateway goes with --static (DHCP gives the gateway)")
    if args.static is not None and args.gateway is not None:
        from tcpip.route import Route

        try:
            Route().configure(args.static, 24, args.gateway)
        except ValueError as exc:
            parser.error("--gateway: %s" % exc)
    out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="tcpip-deploy-")
    try:
        return _deploy(args, out, runner)
    finally:
        if not args.out and not args.dry_run:
            shutil.rmtree(out, ignore_errors=True)  # our temporary bundle (--dry-run prints its paths)


def _deploy(args, out, runner):
    try:
        result = build.build_bundle(out, args.board, args.budget * 1024, lines=args.lines)
    except build.BuildError as exc:
        print("deploy: %s" % exc, file=sys.stderr)
        return EXIT_USAGE if "not touching" in str(exc) else EXIT_FAIL
    if not result["ok"]:
        print("deploy: the bundle (%d bytes) exceeds the budget of %d bytes" % (
            result["total"], result["budget"]), file=sys.stderr)
        return EXIT_FAIL
    with open(os.path.join(out, CONFIG_NAME), "w") as f:
        f.write(config_text(args.board, args.static, args.gateway, args.dns, args.hostname,
                            not args.no_autostart))
    with open(os.path.join(out, CLEANUP_NAME), "w") as f:
        f.write(CLEANUP % (old_paths(result),))
    print("bundle in %s (with %s)" % (out, CONFIG_NAME))
    try:
        mpremote = "mpremote" if args.dry_run else mpremote_tool()
    except RuntimeError as exc:  # not installed
        print("deploy: %s (or pip install mpremote)" % exc, file=sys.stderr)
        return EXIT_FAIL
    cmds = deploy_commands(out, args.port, mpremote)
    if args.dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        return EXIT_OK
    return _run(cmds, runner if runner is not None else _subprocess_runner)


def repl_parser():
    p = argparse.ArgumentParser(prog="python -m host_tools repl",
                                description="Open the board's REPL (mpremote connect PORT repl); "
                                            "Ctrl-] leaves it.")
    p.add_argument("--port", default="auto", metavar="PORT",
                   help="mpremote's device: /dev/ttyACM0, COM3, a0, ... (default auto)")
    p.add_argument("--dry-run", action="store_true", help="print the mpremote command only")
    return p


def repl_main(argv=None, runner=None):
    """runner(cmd) -> exit status runs mpremote (default: subprocess.call, interactive)."""
    args = repl_parser().parse_args(argv)
    if args.dry_run:
        print(shlex.join(repl_command(args.port)))
        return EXIT_OK
    try:
        cmd = repl_command(args.port, mpremote_tool())
    except RuntimeError as exc:
        print("repl: %s (or pip install mpremote)" % exc, file=sys.stderr)
        return EXIT_FAIL
    try:
        # interactive: no timeout, the user leaves with Ctrl-]
        rc = (runner if runner is not None else subprocess.call)(cmd)
    except KeyboardInterrupt:
        return 130
    if rc != 0:
        print(port_hint("repl", rc), file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
