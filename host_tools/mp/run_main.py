# Runs an unmodified MicroPython script over the tcpip stack: what `python -m host_tools run` does
# on both runtimes, and what tests/host/clients/launch.py does for the tests.
#
# install() makes tcpip's modules the ones the script imports: tcpip.socket as `socket` AND
# `usocket` (umqtt.simple, urequests and older code `import usocket` first; with only `socket`
# replaced they would silently use the runtime's own sockets), and, with shims, run_select as
# `select`/`uselect` and run_time as `time`/`utime`: select.poll (so asyncio) and time.sleep
# service the stack while they wait. Blocking socket calls service it anyway. A script that
# busy-loops without calling any of these leaves the stack unserviced meanwhile.
# run() runs the script as __main__ (sys.argv = [script, args...], the script's folder first on
# sys.path), then services the stack until the connections it closed are done (FINISH_MS) and
# returns an exit status: the script's SystemExit code, 0 when it returned, 1 when it raised (the
# traceback on stderr, and for ENETUNREACH the route rule that refused: netunreach.py), 130 on
# Ctrl-C.
#
# On the MicroPython unix port (which cannot open a TAP) the host tools start the frame bridge
# (host_tools.bridge) and then
#     TCPIP_RUN='{"bridge_port": P, "addr": "192.0.2.2/24", "gateway": ..., "dns": [...]}' \
#     MICROPYPATH=lib:.frozen:... micropython host_tools/mp/run_main.py SCRIPT [ARGS...]
# (the configuration travels in the environment: this unix port dies on a command-line argument
# of 256 characters or more). Optional keys: "mtu", "report" ("stdout"/"stderr": print the
# nonzero counters and what is left of the connections at the end), "shims" (default true).
# MicroPython-compatible.
import sys

from tcpip import socket as tsocket
from tcpip import tcp
from tcpip.stack import Stack

FINISH_MS = 3000
ENETUNREACH = 101
EXIT_INTERRUPTED = 130
SHIM_MODULES = (("select", "run_select"), ("uselect", "run_select"), ("time", "run_time"),
                ("utime", "run_time"))


def _shim(name):
    try:
        return __import__("host_tools.mp." + name, None, None, [name])  # CPython (the package)
    except ImportError:
        return __import__(name)  # MicroPython: host_tools/mp is on the path


def install(stack, shims=True):
    """tcpip.socket (on stack) as socket and usocket; with shims, the select and time shims too."""
    tsocket.set_default_stack(stack)
    sys.modules["socket"] = tsocket
    sys.modules["usocket"] = tsocket
    if shims:
        for name, shim in SHIM_MODULES:
            mod = _shim(shim)
            mod.attach(stack)
            sys.modules[name] = mod


def settled(stack):
    for t in stack.tcp.tcbs:
        if t.state != tcp.TIME_WAIT:
            return False
    return True


def _dirname(path):
    head = path.rpartition("/")[0]
    return head if head else "."


def _print_exception(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e, sys.stderr)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as both runtimes do
    return 1


def run_script(script, args):
    """Run script's source as __main__ with sys.argv = [script] + args, its folder on sys.path."""
    with open(script) as f:
        source = f.read()
    del sys.argv[:]
    sys.argv.append(script)
    sys.argv.extend(args)
    folder = _dirname(script)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    exec(compile(source, script, "exec"), {"__name__": "__main__", "__file__": script})


def run(stack, script, args, shims=True, report=None, finish_ms=FINISH_MS):
    """install() and run_script(), then let the connections finish; returns the exit status.
    report: None, or a stream for "counters name=value ..." and "tcbs <states>" at the end."""
    install(stack, shims)
    status = 0
    try:
        run_script(script, args)
    except SystemExit as e:
        status = _exit_code(e.args[0] if e.args else None)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except Exception as e:
        status = 1
        _print_exception(e)
        if isinstance(e, OSError) and e.args and e.args[0] == ENETUNREACH:
            try:
                from host_tools.mp.netunreach import reason
            except ImportError:
                from netunreach import reason
            print(reason(stack.route), file=sys.stderr)
    try:
        stack.run_until(lambda: settled(stack), finish_ms)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    if report is not None:
        nz = stack.counters.nonzero()
        print("counters", " ".join("%s=%d" % (k, nz[k]) for k in sorted(nz)), file=report)
        print("tcbs", " ".join(t.state_name() for t in stack.tcp.tcbs), file=report)
    return status


def build_stack(device, cfg):
    """Stack over device for a run configuration (addr, gateway, dns: a list of servers or None)."""
    stack = Stack(device, addr=cfg["addr"], gateway=cfg.get("gateway"))
    if cfg.get("dns"):
        from tcpip.dns import Resolver

        Resolver(stack, cfg["dns"]).install()
    return stack


def main():
    import os

    try:
        import json
    except ImportError:  # pragma: no cover
        import ujson as json
    from udp_device import UdpFrameDevice  # imports the runtime's own socket module first

    if len(sys.argv) < 2 or not os.getenv("TCPIP_RUN"):
        print("usage: TCPIP_RUN='<json>' micropython run_main.py SCRIPT [ARGS...]  "
              "(python -m host_tools run does this)", file=sys.stderr)
        return 2
    cfg = json.loads(os.getenv("TCPIP_RUN"))
    script = sys.argv[1]
    args = sys.argv[2:]
    report = {"stdout": sys.stdout, "stderr": sys.stderr}.get(cfg.get("report"))
    dev = UdpFrameDevice(cfg["bridge_port"], mtu=cfg.get("mtu", 1500))
    try:
        return run(build_stack(dev, cfg), script, args, cfg.get("shims", True), report)
    finally:
        dev.close()


if __name__ == "__main__":
    sys.exit(main())
