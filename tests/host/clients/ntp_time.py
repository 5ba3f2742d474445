# An NTP client written the way micropython-lib's ntptime.time() is: getaddrinfo(host, 123),
# socket(AF_INET, SOCK_DGRAM), settimeout, sendto of a 48-byte query, recv(48), close, the
# transmit timestamp's seconds from bytes 40..43. It knows nothing of tcpip;
# tests/host/test_dgram_real_peer.py runs it unmodified over tcpip (installed as `socket`) against
# a Linux NTP-style server, and over the runtime's own sockets as a control.
#     micropython ntp_time.py HOST
# Prints: "ntp <seconds since 1900>" and "unix <seconds since 1970>".
import sys
import socket
import struct

host = sys.argv[1]
timeout = 2


def time():
    NTP_QUERY = bytearray(48)
    NTP_QUERY[0] = 0x23  # LI 0, version 4, mode 3 (client)
    addr = socket.getaddrinfo(host, 123)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(NTP_QUERY, addr)
        msg = s.recv(48)
    finally:
        s.close()
    return struct.unpack("!I", msg[40:44])[0]


seconds = time()
print("ntp", seconds)
print("unix", seconds - 2208988800)
