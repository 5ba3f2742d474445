"""Frame bridge: relays Ethernet frames between a TAP device and UDP on 127.0.0.1.

The MicroPython unix port has no ffi, so it cannot open /dev/net/tun; it talks to this CPython
process instead, through host_tools/mp/udp_device.py (UdpFrameDevice). The protocol is described
at the top of that file: the device says HELLO (with its slot size), the bridge answers READY and
from then on sends every TAP frame as one slot-sized datagram; each datagram from the device is
one frame for the TAP. A new HELLO from another address re-points the bridge (a restarted device).

Run it from the repository root inside the namespace that holds the TAP (whose lo must be up, as
TestNamespace does), with lib/ on the path (host_tools.faultlink uses tcpip's clock):
    ip netns exec NS env PYTHONPATH=lib python -m host_tools.bridge --tap tap0 --port 0
prints the UDP port it listens on as the first line of stdout, then relays until --duration
passes or SIGTERM/SIGINT. `python -m host_tools run SCRIPT.py` and `connect --runtime micropython`
start it themselves (in a thread) and the unix port with it.
"""
import argparse
import select
import signal
import socket
import sys
import threading
import time

from host_tools.faultlink import FaultLink
from host_tools.pcap import PcapWriter
from host_tools.tap import TapDevice

HELLO = b"HELLO"
READY = b"READY"
ETH_HEADER_LEN = 14
TRAILER_LEN = 2
MAX_DURATION_S = 24 * 3600  # hard cap on any bridge run
POLL_MS = 100
BURST = 64  # frames moved per direction per poll round


class FrameBridge:
    """FrameBridge(tap, udp_port=0, peer_port=None, host="127.0.0.1", pcap=None, mtu=1500, faults=None)

    tap: an interface name (attached with TapDevice) or any device object with the NIC contract.
    peer_port: send frames to host:peer_port from the start (else wait for the device's HELLO).
    pcap: a path or PcapWriter recording every frame relayed (both directions).
    faults: None, or FaultLink keyword arguments (seed, drop, ... ; host_tools/faultlink.py): the
    TAP is wrapped in a FaultLink ("rx" = frames from the TAP to the device, "tx" = the other way),
    and the pcap records the device's side of it (what the device really got and sent).
    Attributes: port (the UDP port bound), peer, counters (dict), link (the FaultLink or None).
    """

    def __init__(self, tap, udp_port=0, peer_port=None, host="127.0.0.1", pcap=None, mtu=1500,
                 faults=None):
        self._own_tap = isinstance(tap, str)
        self.raw_tap = TapDevice(tap, mtu=mtu) if self._own_tap else tap
        self.link = FaultLink(self.raw_tap, **faults) if faults else None
        self.tap = self.link if self.link is not None else self.raw_tap
        self._own_pcap = pcap is not None and not isinstance(pcap, PcapWriter)
        self.pcap = PcapWriter(pcap) if self._own_pcap else pcap
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, udp_port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.peer = (host, peer_port) if peer_port else None
        self.slot = mtu + ETH_HEADER_LEN + TRAILER_LEN
        self._out = bytearray(65536 + TRAILER_LEN)
        self._in = bytearray(65536)
        self.counters = {"to_peer": 0, "from_peer": 0, "hello": 0, "dropped_no_peer": 0,
                         "dropped_too_big": 0, "dropped_stranger": 0, "tap_errors": 0,
                         "udp_errors": 0}
        self._poll = select.poll()
        self._poll.register(self.raw_tap.fileno(), select.POLLIN)
        self._poll.register(self.sock.fileno(), select.POLLIN)
        self._poll_udp = select.poll()  # while the link's rx queue is full the TAP stays readable
        self._poll_udp.register(self.sock.fileno(), select.POLLIN)

    def step(self, timeout_ms=POLL_MS):
        """Wait up to timeout_ms (less when a delayed frame falls due), then move up to BURST
        frames each way."""
        link = self.link
        poll = self._poll
        if link is not None:
            timeout_ms = link.next_event_ms(timeout_ms)
            if len(link.rx.queue) >= link.queue_limit:
                poll = self._poll_udp
        poll.poll(timeout_ms)
        if link is not None:
            link.service()
        self._tap_to_udp()
        self._udp_to_tap()

    def _tap_to_udp(self):
        out = memoryview(self._out)
        for _ in range(BURST):
            limit = self.slot - TRAILER_LEN
            n = self.tap.recv_into(out[:len(self._out) - TRAILER_LEN])
            if n == 0:
                return
            if self.pcap is not None:
                self.pcap.write(out[:n])
            if self.peer is None:
                self.counters["dropped_no_peer"] += 1
                continue
            if n > limit:
                self.counters["dropped_too_big"] += 1
                continue
            self._out[self.slot - 2] = n >> 8
            self._out[self.slot - 1] = n & 0xFF
            try:
                self.sock.sendto(out[:self.slot], self.peer)
                self.counters["to_peer"] += 1
            except OSError:
                self.counters["udp_errors"] += 1

    def _udp_to_tap(self):
        for _ in range(BURST):
            try:
                n, addr = self.sock.recvfrom_into(self._in)
            except BlockingIOError:
                return
            except OSError:
                self.counters["udp_errors"] += 1
                continue
            if n < ETH_HEADER_LEN:
                self._control(self._in[:n], addr)
                continue
            if addr != self.peer:
                self.counters["dropped_stranger"] += 1
                continue
            if self.pcap is not None:
                self.pcap.write(memoryview(self._in)[:n])
            try:
                self.tap.send(self._in, n)
                self.counters["from_peer"] += 1
            except OSError:
                self.counters["tap_errors"] += 1

    def _control(self, msg, addr):
        if bytes(msg[:5]) != HELLO:
            return
        if len(msg) >= 7:
            slot = (msg[5] << 8) | msg[6]
            if ETH_HEADER_LEN + TRAILER_LEN < slot <= 65535:
                self.slot = slot
        self.peer = addr
        self.counters["hello"] += 1
        ready = bytearray(self.slot)
        ready[:len(READY)] = READY
        try:
            self.sock.sendto(ready, addr)
        except OSError:
            self.counters["udp_errors"] += 1

    def serve(self, stop_event=None, duration=None):
        """Relay until stop_event is set or `duration` seconds pass (capped at MAX_DURATION_S)."""
        limit = MAX_DURATION_S if duration is None else min(duration, MAX_DURATION_S)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if stop_event is not None and stop_event.is_set():
                break
            self.step(POLL_MS)
        return self.counters

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._own_tap:
            self.raw_tap.close()
        if self._own_pcap:
            self.pcap.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_bridge(ifname, udp_port=0, peer_port=None, stop_event=None, duration=None, pcap=None,
               host="127.0.0.1", mtu=1500, on_ready=None, faults=None):
    """Open TAP `ifname`, relay until stop_event/duration, close; returns the counters.

    on_ready(port) is called once the UDP socket is bound (udp_port=0 picks a free port).
    faults: FaultLink keyword arguments, or None (see FrameBridge).
    Must run in the namespace that holds the TAP (a child via `ip netns exec`, or TestNamespace.call).
    """
    with FrameBridge(ifname, udp_port=udp_port, peer_port=peer_port, host=host, pcap=pcap,
                     mtu=mtu, faults=faults) as bridge:
        if on_ready is not None:
            on_ready(bridge.port)
        return bridge.serve(stop_event=stop_event, duration=duration)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host_tools.bridge", description=__doc__.split("\n")[0])
    p.add_argument("--tap", required=True, help="existing TAP interface (e.g. tap0)")
    p.add_argument("--port", type=int, default=0, help="UDP port to listen on (0: any free one)")
    p.add_argument("--peer-port", type=int, default=None, help="device port, if known in advance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds to run (default 3600)")
    p.add_argument("--pcap", default=None, help="record relayed frames to this pcap file")
    args = p.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_ready(port):
        print(port, flush=True)

    counters = run_bridge(args.tap, udp_port=args.port, peer_port=args.peer_port, stop_event=stop,
                          duration=args.duration, pcap=args.pcap, host=args.host, mtu=args.mtu,
                          on_ready=on_ready)
    print("bridge stopped: " + " ".join("%s=%d" % kv for kv in sorted(counters.items())),
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
