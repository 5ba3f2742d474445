# Why a connect failed with ENETUNREACH before any SYN went out: which rule of
# tcpip.route.Route.next_hop refused the destination, as one line with the fix. The stack itself
# raises a bare OSError(ENETUNREACH) (as Linux's tcp_v4_connect); the host tools print this line
# beside it (`connect`'s timeline and JSON "reason", `run` after a script's traceback).
# MicroPython-compatible (`run` imports it on the unix port too).
from tcpip.route import netmask
from tcpip.wire import ipv4


def network_text(route):
    """'192.0.2.0/24' for the route's interface address."""
    m = netmask(route.prefix_len)
    net = bytes([route.addr[i] & m[i] for i in range(4)])
    return "%s/%d" % (ipv4.ntoa(net), route.prefix_len)


def reason(route, dst=None, gateway_option="--gateway"):
    """The rule that refuses a connect to dst (4 bytes; None: the destination is unknown), one line
    starting "ENETUNREACH: "; None when next_hop would accept dst."""
    if not route.configured():
        return "ENETUNREACH: the stack has no address yet: configure one (or wait for the DHCP lease)"
    ours = ipv4.ntoa(route.addr)
    net = network_text(route)
    if dst is None:
        if route.gateway is None:
            return ("ENETUNREACH: without a gateway only %s is reachable: add %s IP (a router on %s), "
                    "or connect to a host on %s" % (net, gateway_option, net, net))
        return ("ENETUNREACH: the destination is refused by the route rules (broadcast, multicast, "
                "0.0.0.0, loopback, or the stack's own address %s): connect to a host's unicast "
                "address" % ours)
    text = ipv4.ntoa(dst)
    if ipv4.is_multicast(dst, 0):
        return "ENETUNREACH: %s is a multicast address: TCP connects to one host's unicast address" % text
    if route.is_broadcast(dst, 0):
        return ("ENETUNREACH: %s is a broadcast address (of %s): TCP connects to one host's unicast "
                "address" % (text, "every network" if ipv4.is_limited_broadcast(dst, 0) else net))
    if ipv4.is_zero(dst, 0):
        return "ENETUNREACH: 0.0.0.0 names no host: connect to the peer's address"
    if ipv4.is_loopback(dst, 0):
        return ("ENETUNREACH: %s is a loopback address and the stack has no loopback interface: "
                "connect to the peer's address on %s (Linux's end of the TAP)" % (text, net))
    if route.is_local(dst, 0):
        return ("ENETUNREACH: %s is the stack's own address and it has no loopback interface: "
                "connect to another host" % text)
    if route.on_link(dst, 0) or route.gateway is not None:
        return None
    return ("ENETUNREACH: %s is not on %s and there is no gateway: add %s IP (a router on %s, e.g. "
            "Linux's end of the TAP)" % (text, net, gateway_option, net))
