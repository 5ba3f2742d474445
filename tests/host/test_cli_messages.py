"""The CLI's error messages (issue 10, item 4): one line each, saying what to do.

Not root (no CAP_NET_ADMIN), an interface that is not a TAP, a usage error in a subcommand (that
subcommand's usage), --help (every subcommand), a connect the route rules refuse (ENETUNREACH:
which rule), repl with a port where no board is (deploy's hint). The namespace tests need root,
/dev/net/tun and iproute2; they make their own namespace. Every wait has a deadline.
"""
import ctypes
import errno
import json
import os
import subprocess
import sys

import pytest

from host_tools import cli, deploy
from host_tools.mp.netunreach import reason
from host_tools.netns import TestNamespace, child_env
from tcpip.route import Route
from tcpip.wire import ipv4

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 60
PRIVILEGE = "run as root or with CAP_NET_ADMIN"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun"), reason="needs root and /dev/net/tun")


def host_tools(*args, ns=None, preexec_fn=None):
    argv = [sys.executable, "-m", "host_tools"] + list(args)
    if ns is not None:
        argv = ns.exec_prefix + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT,
                          env=child_env(), stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)


def one_error_line(p):
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


# -- not root / no CAP_NET_ADMIN -----------------------------------------------------------------
def test_has_net_admin_reads_the_effective_capabilities(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n")
    assert cli.has_net_admin(str(status))
    status.write_text("Name:\tpython\nCapEff:\t000001ffffffefff\n")  # everything but bit 12
    assert not cli.has_net_admin(str(status))


@pytest.mark.parametrize("code", [errno.EPERM, errno.EACCES])
def test_tap_refused_says_run_as_root(code):
    msg = cli.tap_error("tap0", OSError(code, os.strerror(code)), privileged=False)
    assert PRIVILEGE in msg and "Create" not in msg and "\n" not in msg


def test_missing_tap_without_privilege_says_run_as_root_not_create_it():
    missing = OSError(errno.ENODEV, "no TAP device")
    assert PRIVILEGE in cli.tap_error("tap0", missing, privileged=False)
    with_privilege = cli.tap_error("tap0", missing, privileged=True)
    assert PRIVILEGE not in with_privilege and "ip tuntap add dev tap0 mode tap" in with_privilege
    assert "\n" not in with_privilege


def _drop_net_admin():
    """preexec_fn: take CAP_NET_ADMIN out of the bounding set (root keeps its other capabilities,
    so `ip netns exec` still works, but what it runs has no CAP_NET_ADMIN)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, cli.CAP_NET_ADMIN, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


# Attaching to an existing TAP needs CAP_NET_ADMIN only when the TAP has an owner that is not us
# (the kernel's tun_not_capable), and /dev/net/tun's permissions; making one always needs it.
OWNED_TAP = "tap5"  # owned by uid 12345


@needs_root
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_connect_without_cap_net_admin(ns, runtime):
    ns.ip("tuntap", "add", "dev", OWNED_TAP, "mode", "tap", "user", "12345")
    for tap, what in ((OWNED_TAP, "attaching to TAP 'tap5' was refused (EPERM)"),
                      ("tap9", "no TAP 'tap9' here (ENODEV)")):
        p = host_tools("connect", "192.0.2.1", "80", "--tap", tap, "--addr", "192.0.2.2/24", "--runtime",
                       runtime, ns=ns, preexec_fn=_drop_net_admin)
        assert p.returncode == cli.EXIT_USAGE, p.stderr
        line = one_error_line(p)
        assert what in line and PRIVILEGE in line, line


# The interpreter lives under /root here (not readable by others): start as root, import what the
# command needs, then become nobody and run it.
AS_NOBODY = ("import os, sys; import host_tools.cli as cli, host_tools.tap, host_tools.pcap; "
             "os.setgroups([]); os.setgid(65534); os.setuid(65534); sys.exit(cli.main(sys.argv[1:]))")


@needs_root
def test_serve_as_a_user_who_is_not_root(ns):
    ns.ip("tuntap", "add", "dev", OWNED_TAP, "mode", "tap", "user", "12345")
    p = subprocess.run(ns.exec_prefix + [sys.executable, "-c", AS_NOBODY, "serve", "--tap", OWNED_TAP,
                                         "--addr", "192.0.2.2/24", "--seconds", "1"],
                       capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT, env=child_env(),
                       stdin=subprocess.DEVNULL)
    assert p.returncode == cli.EXIT_USAGE, p.stderr
    line = one_error_line(p)
    assert "attaching to TAP 'tap5' was refused" in line and PRIVILEGE in line, line


# -- not a TAP -------------------------------------------------------------------------------
@needs_root
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_tap_lo_is_not_a_tap(ns, runtime):
    p = host_tools("connect", "192.0.2.1", "80", "--tap", "lo", "--addr", "192.0.2.2/24", "--runtime",
                   runtime, ns=ns)
    assert p.returncode == cli.EXIT_USAGE
    line = one_error_line(p)
    assert line.startswith("error: 'lo' is not a TAP device") and "ip tuntap add dev tap0 mode tap" in line


@needs_root
def test_a_tun_is_not_a_tap_either(ns, tmp_path):
    ns.ip("tuntap", "add", "dev", "tun7", "mode", "tun")
    script = tmp_path / "noop.py"
    script.write_text("print('never')\n")
    for args in (["serve", "--tap", "tun7", "--addr", "192.0.2.2/24", "--seconds", "1", "--json"],
                 ["run", str(script), "--tap", "tun7", "--addr", "192.0.2.2/24"]):
        p = host_tools(*args, ns=ns)
        assert p.returncode == cli.EXIT_USAGE and "never" not in p.stdout
        assert one_error_line(p).startswith("error: 'tun7' is not a TAP device")
    assert json.loads(host_tools("serve", "--tap", "tun7", "--addr", "192.0.2.2/24", "--json",
                                 ns=ns).stdout)["error"].startswith("'tun7' is not a TAP device")


@needs_root
def test_missing_tap_is_one_line_with_the_commands(ns):
    p = host_tools("connect", "192.0.2.1", "80", "--tap", "tap9", "--addr", "192.0.2.2/24", ns=ns)
    assert p.returncode == cli.EXIT_USAGE
    line = one_error_line(p)
    assert "no interface 'tap9'" in line and "ip tuntap add dev tap9 mode tap" in line


def test_too_long_interface_name_is_a_usage_error_not_a_traceback():
    args = cli.build_parser().parse_args(["connect", "192.0.2.1", "9", "--tap", "x" * 20, "--addr",
                                          "192.0.2.2/24"])
    with pytest.raises(SystemExit) as exit_info:
        cli._open_tap_or_exit(args, lambda: cli_tap("x" * 20))
    assert exit_info.value.code == cli.EXIT_USAGE


def cli_tap(name):
    from host_tools.tap import TapDevice

    return TapDevice(name)


# -- usage -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, usage, message", [
    (["connect", "192.0.2.1", "80", "--tap", "tap0", "--addr", "192.0.2.2/24", "--gateway", "10.0.0.1"],
     "connect", "--gateway: gateway 10.0.0.1 is not on the interface's network"),
    (["connect", "192.0.2.1", "80", "--tap", "tap0", "--addr", "192.0.2.2/24", "--send", "x",
      "--send-file", "/etc/hostname"], "connect", "--send and --send-file exclude each other"),
    (["serve", "--tap", "tap0", "--addr", "192.0.2.2/24", "--gateway", "10.0.0.1"], "serve", "--gateway"),
    (["connect", "192.0.2.1", "80", "--tap", "tap0", "--addr", "192.0.2.2"], "connect", "prefix length"),
    (["run", "tests/host/clients/http_get.py", "--addr", "192.0.2.2/24"], "run", "--tap is required"),
    (["run", "tests/host/clients/http_get.py"], "run", "--tap and --addr are required"),
    (["run", "no/such/script.py", "--tap", "tap0", "--addr", "192.0.2.2/24"], "run", "no readable script"),
    (["run", "tests/host/clients/http_get.py", "--tap", "tap0", "--addr", "192.0.2.2/24", "--http", "/tmp"],
     "run", "--http goes with --netns"),
])
def test_subcommand_errors_print_its_usage(args, usage, message):
    p = host_tools(*args)
    assert p.returncode == cli.EXIT_USAGE
    assert p.stderr.startswith("usage: python -m host_tools %s " % usage), p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("python -m host_tools %s: error: " % usage)
    assert message in p.stderr, p.stderr


def test_help_lists_every_subcommand():
    p = host_tools("--help")
    assert p.returncode == 0
    listed = [line.split()[0] for line in p.stdout.split("commands:")[1].splitlines()[2:] if
              line.startswith("    ") and not line.startswith("      ")]
    assert listed == ["connect", "serve", "run", "demo", "build", "deploy", "repl"], p.stdout
    # the board commands still parse their own arguments
    assert host_tools("deploy", "--help").stdout.startswith("usage: python -m host_tools deploy")
    assert cli.main(["repl", "--dry-run", "--port", "/dev/ttyX"]) == 0


# -- ENETUNREACH: which rule refused ---------------------------------------------------------------
def _route(gateway=None):
    r = Route()
    r.configure("192.0.2.2/24", 24, gateway)
    return r


@pytest.mark.parametrize("dst, gateway, text", [
    ("198.51.100.1", None, "ENETUNREACH: 198.51.100.1 is not on 192.0.2.0/24 and there is no gateway: "
                           "add --gateway IP"),
    ("192.0.2.255", "192.0.2.1", "ENETUNREACH: 192.0.2.255 is a broadcast address (of 192.0.2.0/24)"),
    ("255.255.255.255", "192.0.2.1", "ENETUNREACH: 255.255.255.255 is a broadcast address (of every network)"),
    ("224.0.0.1", "192.0.2.1", "ENETUNREACH: 224.0.0.1 is a multicast address"),
    ("192.0.2.2", None, "ENETUNREACH: 192.0.2.2 is the stack's own address"),
    ("127.0.0.1", "192.0.2.1", "ENETUNREACH: 127.0.0.1 is a loopback address"),
    ("0.0.0.0", "192.0.2.1", "ENETUNREACH: 0.0.0.0 names no host"),
])
def test_unreach_reason_names_the_rule(dst, gateway, text):
    route = _route(gateway)
    with pytest.raises(OSError) as refused:
        route.next_hop(ipv4.aton(dst))  # the stack's own rule refuses it ...
    assert refused.value.args[0] == errno.ENETUNREACH
    got = reason(route, ipv4.aton(dst))  # ... and the message says which
    assert got.startswith(text) and "\n" not in got, got


def test_unreach_reason_none_when_the_route_accepts():
    assert reason(_route(), ipv4.aton("192.0.2.1")) is None
    assert reason(_route("192.0.2.1"), ipv4.aton("198.51.100.1")) is None
    assert reason(_route(), None).startswith("ENETUNREACH: without a gateway only 192.0.2.0/24")


@needs_root
def test_connect_enetunreach_says_which_rule(ns):
    p = host_tools("connect", "198.51.100.1", "80", "--tap", "tap0", "--addr", "192.0.2.2/24", ns=ns)
    assert p.returncode == cli.EXIT_FAIL
    assert ("ENETUNREACH: 198.51.100.1 is not on 192.0.2.0/24 and there is no gateway: add --gateway IP"
            in p.stdout), p.stdout
    p = host_tools("connect", "192.0.2.255", "80", "--tap", "tap0", "--addr", "192.0.2.2/24", "--json",
                   "--runtime", "micropython", ns=ns)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["result"] == "ENETUNREACH" and out["reason"].startswith(
        "ENETUNREACH: 192.0.2.255 is a broadcast address (of 192.0.2.0/24)"), out


# -- repl: deploy's hint -----------------------------------------------------------------------
def test_repl_failure_gives_deploys_hint(capsys):
    seen = []

    def runner(cmd):
        seen.append(cmd)
        return 1

    assert deploy.repl_main(["--port", "/dev/ttyNOPE"], runner=runner) == deploy.EXIT_FAIL
    assert seen[0][1:] == ["connect", "/dev/ttyNOPE", "repl"]
    err = capsys.readouterr().err.strip()
    assert err == deploy.port_hint("repl", 1)
    assert "Is the board connected and named by --port" in err


def test_repl_with_a_port_where_no_board_is():
    try:
        deploy.mpremote_tool()
    except RuntimeError:
        pytest.skip("mpremote not installed")
    p = host_tools("repl", "--port", "/dev/tcpip-no-such-port")
    assert p.returncode == deploy.EXIT_FAIL
    assert p.stderr.strip().splitlines()[-1] == deploy.port_hint("repl", 1), p.stderr
