# Launcher (not a client): runs an unmodified socket client over tcpip on the MicroPython unix
# port, for the tests. host_tools/mp/run_main.py does the work (what `python -m host_tools run`
# runs): a Stack over the UDP frame bridge (host_tools/mp/udp_device.py; the bridge holds the
# TAP), tcpip.socket installed as `socket` and `usocket`, the client's source run as __main__
# with the client's own argv, then the stack serviced until the connections it closed are done
# (or 3 s pass), and "counters name=value ..." (the nonzero ones) and "tcbs <state names>" of
# what is left printed on stdout. Without run's select/time shims: the tests see the stack as the
# client alone drives it.
#     MICROPYPATH=lib:host_tools/mp:.frozen micropython tests/host/clients/launch.py \
#         BRIDGE_PORT ADDR/N GATEWAY CLIENT.py [client args...]
# Exit status 0 when the client returned, 1 when it raised (its traceback on stderr).
import sys

from udp_device import UdpFrameDevice  # imports the runtime's own socket module first

import run_main


def main():
    args = sys.argv[1:]
    bridge_port, addr, gateway, client = int(args[0]), args[1], args[2], args[3]
    stack = run_main.build_stack(UdpFrameDevice(bridge_port), {"addr": addr, "gateway": gateway})
    return run_main.run(stack, client, args[4:], shims=False, report=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
