metadata(
    description="tcpip: a lean TCP/IP stack in Python (Ethernet, ARP, IPv4, ICMP, UDP, TCP, sockets)",
    version="0.1.0",
)

# The base package: the stack and everything the socket module's API reaches. The server side
# (listener.py, tcp_listen.py), datagram sockets (dgram.py), socket options (sockopt.py) and rare
# events (cold.py) are imported only when used, so they cost flash, not heap, until then; they stay
# here because they implement tcpip.socket's own API (listen/accept, SOCK_DGRAM, setsockopt).
# The other components extend this namespace: tcpip-dhcp, tcpip-dns, tcpip-board, and the chip
# drivers tcpip-w5500 and tcpip-enc28j60 (tcpip/drivers/).
package(
    "tcpip",
    files=(
        "__init__.py",
        "_host.py",
        "_pure.py",
        "_viper.py",
        "arp.py",
        "checksum.py",
        "clock.py",
        "cold.py",
        "counter_names.py",
        "counters.py",
        "dgram.py",
        "errors.py",
        "fastpath.py",
        "isn.py",
        "listener.py",
        "mem.py",
        "poller.py",
        "ports.py",
        "route.py",
        "socket.py",
        "sockopt.py",
        "stack.py",
        "tcp.py",
        "tcp_core.py",
        "tcp_in.py",
        "tcp_listen.py",
        "tcp_out.py",
        "tcp_timer.py",
        "udp.py",
        "drivers/__init__.py",
        "wire/__init__.py",
        "wire/ipv4.py",
        "wire/tcp.py",
        "wire/udp.py",
    ),
    base_path="../../lib",
)
