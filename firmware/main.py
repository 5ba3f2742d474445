# main.py: bring the network up from /tcpip_config.py (board, static address or DHCP, DNS) and
# return to the REPL with the helpers in `net` ready: net.status(), net.connect(host, port, send).
# Nothing here blocks after bring-up, and a failure is printed, never raised (docs/BOARDS.md).
try:
    import net

    net.boot()
except ImportError as exc:  # the bundle is not installed (python -m host_tools deploy)
    print("tcpip: %s: install the bundle with `python -m host_tools deploy --board NAME`" % (exc,))
