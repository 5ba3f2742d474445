"""Run every benchmark and print their tables (`make bench`). Not a CI gate.

    python bench/run.py                      # all
    python bench/run.py checksum heap        # some of: checksum, heap, throughput, spi, rp2040

heap's second table and throughput need root (a private network namespace with TAP devices);
without root, heap prints its first table only and throughput is skipped with a note.
PyTCP (the throughput peer) comes from bench/requirements-bench.txt: `make bench-setup`.
rp2040 runs only with an emulator kit named by RP2EMU=DIR (developer tooling: bench/README.md);
without one its row says it was skipped.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from host_tools.netns import micropython_binary  # noqa: E402

NAMES = ("checksum", "heap", "throughput", "spi", "rp2040")


def run(title, argv, env=None, timeout=900):
    print("== %s" % title, flush=True)
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, timeout=timeout)
        if proc.returncode:
            print("(exit %d)" % proc.returncode)
    except subprocess.TimeoutExpired:
        print("(stopped after %d s)" % timeout)
    print(flush=True)


def main(names):
    for n in names:
        if n not in NAMES:
            print("unknown benchmark %r (have: %s)" % (n, ", ".join(NAMES)), file=sys.stderr)
            return 2
    mp = micropython_binary()
    mp_env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "tests", "host"))
    root = os.geteuid() == 0
    if not names or "checksum" in names:
        run("checksum, MicroPython unix port", [mp, "bench/bench_checksum.py"], mp_env)
        run("checksum, CPython", [sys.executable, "bench/bench_checksum.py"])
    if not names or "heap" in names:
        run("heap: per frame (scripted) and one connection's peak (MicroPython unix port)",
            [sys.executable, "bench/bench_heap.py"] + ([] if root else ["--no-peak"]))
    if not names or "throughput" in names:
        if root:
            run("throughput: tcpip (CPython, MicroPython), PyTCP 2.7.6, Linux loopback",
                [sys.executable, "bench/bench_throughput.py"])
        else:
            print("== throughput: skipped (needs root for the network namespace and TAP devices)\n")
    if not names or "spi" in names:
        run("spi: SPI bytes and transactions per frame, drivers on the chip models; RP2040 estimate",
            [sys.executable, "bench/bench_spi.py"])
    if not names or "rp2040" in names:
        run("rp2040: the emulated W5500-EVB-Pico, real firmware and bundle (RP2EMU kit; optional)",
            [sys.executable, "bench/bench_rp2040.py"], timeout=3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
