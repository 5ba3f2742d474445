# Heap bytes allocated (gc.mem_alloc deltas) per received frame once warmed up, and for one
# connect(). Run on the MicroPython unix port:
#   MICROPYPATH=lib:tests/host micropython bench/bench_heap.py
# Prints a table; targets: 0 B per frame for ARP reply, ping reply and an in-window TCP segment.
import gc
import sys

from segment import ACK, PEER_IP, PSH, Harness
from test_stack import PreloadedDevice, echo_request

FRAMES = 50


def per_frame(h, frames):
    dev = PreloadedDevice(frames)
    h.stack.device = dev
    h.stack.poll()  # warm-up frame
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(len(frames) - 1):
        h.stack.poll()
    after = gc.mem_alloc()
    gc.enable()
    return (after - before) / (len(frames) - 1), dev.sent


def main():
    rows = []
    h = Harness()
    rows.append(("ARP request -> reply",) + per_frame(h, [h.arp_request_from_peer() for _ in range(FRAMES)]))
    h = Harness()
    rows.append(("ping request -> reply (56 B)",) + per_frame(h, [echo_request(1, i, b"x" * 56) for i in range(FRAMES)]))
    h = Harness(rx_buffer=65535)
    tcb = h.establish(irs=5000)
    segs = []
    seq = 5001
    for _ in range(FRAMES):
        segs.append(h.segment(tcb, ACK | PSH, seq, tcb.iss + 1, payload=b"d" * 1000))
        seq += 1000
    rows.append(("in-window TCP segment (1000 B) -> ACK",) + per_frame(h, segs))
    h = Harness()
    h.stack.tcp.connect(None, 0, PEER_IP, 81)  # warm up imports/caches
    gc.collect()
    before = gc.mem_alloc()
    h.stack.tcp.connect(None, 0, PEER_IP, 80)
    connect_bytes = gc.mem_alloc() - before
    print("heap allocated per received frame (%s, gc.mem_alloc deltas over %d frames)" % (sys.implementation.name, FRAMES - 1))
    print("%-40s %10s %8s" % ("frame", "B/frame", "replies"))
    for name, b, sent in rows:
        print("%-40s %10.1f %8d" % (name, b, sent))
    print("%-40s %10d" % ("one connect() (Tcb, 2x2 KB rings, SYN)", connect_bytes))


main()
