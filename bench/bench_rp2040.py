"""The RP2040 row of `make bench`: the stack on an emulated W5500-EVB-Pico, with the real MicroPython
firmware, the project's own .mpy bundle and the Linux TCP stack at the far end. Not a CI gate.

    .venv/bin/python bench/bench_rp2040.py [--kit DIR] [--bauds 24000000,12000000]
        [--bytes 262144,1048576] [--detail] [--json]

The kit is an RP2040 emulator kit (bench/README.md, "bench_rp2040.py"): `--kit DIR` or the
environment variable RP2EMU=DIR names it. Without one the script prints that the row was skipped
and why, and exits 0. With one, per SPI clock and transfer size it runs the kit's
`bench.sh PROJECT DOWN=n UP=n BAUD=b` (which builds this checkout's bundle, deploys it at / of the
emulated board and downloads, then uploads, n bytes byte-exact through tcpip.socket against a
Linux server) and prints one table; `--detail` adds bench/rp2040/heap_probe.py (the import and
bring_up heap split per module, the qstr pool, the heap in use after bring_up),
bench/rp2040/board_probe.py (call depth, heap per segment, both directions),
bench/rp2040/rings_probe.py (16 KB rings, connect after close x20) and bench/rp2040/stack_bench.py
(the stack's own cycles per operation, no chip) on the same emulated board. Exit 1 when a
transfer failed.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ("SPI", "rings", "dir", "bytes", "kB/s", "cycles/B", "cycles/seg", "import heap B",
           "in use after bring_up B", "heap B/seg")


def find_kit(arg):
    """The kit folder, or (None, why not)."""
    kit = arg or os.environ.get("RP2EMU")
    if not kit:
        return None, "no emulator kit: pass --kit DIR or set RP2EMU=DIR (bench/README.md)"
    for f in ("bench.sh", "netrun.sh", "run_on_rp2040.sh"):
        if not os.path.isfile(os.path.join(kit, f)):
            return None, "%s is not an emulator kit (no %s)" % (kit, f)
    return os.path.abspath(kit), None


def parse_bench(text):
    """The kit's bench.sh output -> rows (dicts with COLUMNS keys) and the heap figures."""
    heap = {}
    m = re.search(r"heap free: (\d+) B at script start, (\d+) B after importing[^,]*, after bring_up (\d+) B",
                  text)
    if m:
        start, imported, up = (int(x) for x in m.groups())
        heap = {"import": start - imported, "in_use_after_bring_up": start - up}
    rows = []
    for line in text.splitlines():
        f = line.split()
        # board  SPI  rings  dir  bytes  emu-s  kB/s  cycles/B  cycles/seg  import-heap  heap/seg
        if len(f) == 11 and f[3] in ("down", "up") and f[1].endswith("MHz"):
            rows.append({"SPI": f[1], "rings": f[2], "dir": f[3], "bytes": int(f[4]),
                         "kB/s": float(f[6]), "cycles/B": int(f[7]), "cycles/seg": int(f[8]),
                         "import heap B": int(f[9]),
                         "in use after bring_up B": heap.get("in_use_after_bring_up", "-"),
                         "heap B/seg": f[10]})
    return rows, heap


def table(rows):
    cells = [list(COLUMNS)] + [[str(r[c]) for c in COLUMNS] for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c[i].ljust(w[i]) for i in range(len(COLUMNS))).rstrip() for c in cells)


def run_bench(kit, baud, n, timeout):
    cmd = [os.path.join(kit, "bench.sh"), ROOT, "DOWN=%d" % n, "UP=%d" % n, "BAUD=%d" % baud]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    rows, _ = parse_bench(p.stdout)
    ok = p.returncode == 0 and len(rows) == 2
    return rows, ok, p.stdout + p.stderr


def run_detail(kit, timeout):
    """The probes under bench/rp2040 on the emulated board: their output lines."""
    out = []
    tmp = tempfile.mkdtemp(prefix="bench-rp2040-")
    try:
        bundle = os.path.join(tmp, "bundle")
        subprocess.run([sys.executable, "-m", "host_tools", "build", "--board", "w5500_evb_pico",
                        "--out", bundle], cwd=ROOT, check=True, capture_output=True, timeout=300)
        for probe in ("heap_probe.py", "board_probe.py", "rings_probe.py"):
            p = subprocess.run([os.path.join(kit, "netrun.sh"), "--out", os.path.join(tmp, probe), "--",
                                "--put", bundle + ":/", os.path.join(ROOT, "bench", "rp2040", probe)],
                               capture_output=True, text=True, timeout=timeout)
            out += [l for l in p.stdout.splitlines()
                    if l.startswith(("BOARD ", "HEAP ", "qstr pool", "    File"))]
            if p.returncode:
                out.append("%s: exit %d" % (probe, p.returncode))
        p = subprocess.run([os.path.join(kit, "run_on_rp2040.sh"), "--put", bundle + ":/",
                            os.path.join(ROOT, "bench", "rp2040", "stack_bench.py")],
                           capture_output=True, text=True, timeout=timeout)
        out += [l for l in p.stdout.splitlines() if not l.startswith("[rp2emu]")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def commit():
    try:
        c = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "lib"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        return c + (" + uncommitted changes in lib/" if dirty else "")
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kit", help="the emulator kit's folder (default: $RP2EMU)")
    ap.add_argument("--bauds", default="24000000,12000000", help="SPI clocks asked for (rp2 divides 48 MHz)")
    ap.add_argument("--bytes", default="262144,1048576", help="transfer sizes, each way")
    ap.add_argument("--detail", action="store_true", help="also the depth, heap and ring probes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per kit run")
    a = ap.parse_args(argv)
    kit, why = find_kit(a.kit)
    if kit is None:
        print("rp2040: skipped (%s)" % why)
        return 0
    rows = []
    failed = []
    for baud in [int(x) for x in a.bauds.split(",") if x]:
        for n in [int(x) for x in a.bytes.split(",") if x]:
            try:
                got, ok, log = run_bench(kit, baud, n, a.timeout)
            except subprocess.TimeoutExpired:
                got, ok, log = [], False, "timed out after %d s" % a.timeout
            rows += got
            if not ok:
                failed.append("BAUD=%d bytes=%d: %s" % (baud, n, log.strip().splitlines()[-1:] or "no output"))
    detail = run_detail(kit, a.timeout) if a.detail else []
    if a.json:
        print(json.dumps({"commit": commit(), "rows": rows, "failed": failed, "detail": detail}, indent=1))
    else:
        print("tcpip on the emulated W5500-EVB-Pico (MicroPython firmware, .mpy bundle), %s; kit %s" % (
            commit(), kit))
        print(table(rows))
        for f in failed:
            print("FAILED: %s" % f)
        if detail:
            print()
            print("\n".join(detail))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
