# Launcher (not a client): runs an unmodified socket client over tcpip on the MicroPython unix
# port. It builds a Stack over the UDP frame bridge (host_tools/mp/udp_device.py; the bridge
# holds the TAP), installs tcpip.socket as the `socket` module, runs the client's source as
# __main__ with the client's own argv, then services the stack until the connections it closed
# are done (or 3 s pass) and prints "counters name=value ..." (the nonzero ones) and "tcbs <state
# names>" of what is left.
#     MICROPYPATH=lib:host_tools/mp micropython tests/host/clients/launch.py \
#         BRIDGE_PORT ADDR/N GATEWAY CLIENT.py [client args...]
# Exit status 0 when the client returned, 1 when it raised (its traceback on stderr).
import sys

from udp_device import UdpFrameDevice  # imports the runtime's own socket module first

from tcpip import socket as tsocket
from tcpip import tcp
from tcpip.stack import Stack

FINISH_MS = 3000


def settled(stack):
    for t in stack.tcp.tcbs:
        if t.state != tcp.TIME_WAIT:
            return False
    return True


def main():
    args = sys.argv[1:]
    bridge_port, addr, gateway, client = int(args[0]), args[1], args[2], args[3]
    stack = Stack(UdpFrameDevice(bridge_port), addr=addr, gateway=gateway)
    tsocket.set_default_stack(stack)
    sys.modules["socket"] = tsocket
    sys.modules["usocket"] = tsocket
    with open(client) as f:
        source = f.read()
    del sys.argv[:]
    sys.argv.extend(args[3:])
    ok = True
    try:
        exec(compile(source, client, "exec"), {"__name__": "__main__", "__file__": client})
    except Exception as e:
        ok = False
        if hasattr(sys, "print_exception"):
            sys.print_exception(e, sys.stderr)
        else:
            import traceback
            traceback.print_exc()
    stack.run_until(lambda: settled(stack), FINISH_MS)
    nz = stack.counters.nonzero()
    print("counters", " ".join("%s=%d" % (k, nz[k]) for k in sorted(nz)))
    print("tcbs", " ".join(t.state_name() for t in stack.tcp.tcbs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
