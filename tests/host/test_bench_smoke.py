"""Smoke runs of the benchmarks with tiny sizes: each prints its table with the expected columns.

The numbers are not checked (benchmarks are tables, never CI gates): only that every row is there
and consistent (bytes moved == bytes asked, a positive rate). Needs root like test_real_peer.py
(a private network namespace with a TAP); PyTCP's rows are left out (its start-up alone takes
3-6 s and it is installed only by `make bench-setup`). Takes a few seconds.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_throughput  # noqa: E402

TIMEOUT_S = 60


def need_root():
    if os.geteuid() != 0:
        pytest.fail("the benchmark smoke runs need root (network namespace and TAP)", pytrace=False)


def run(argv):
    proc = subprocess.run([sys.executable] + argv, cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.splitlines()


def table_after(lines, first_column):
    """The header row that starts with first_column, split, and the rows under it (until a blank
    line or a line that is not a row)."""
    for i, line in enumerate(lines):
        if line.split()[:1] == [first_column]:
            rows = []
            for row in lines[i + 1:]:
                if not row.strip() or row.startswith(("code B", "bulk", "peak", "heap", "targets")):
                    break
                rows.append(row)
            return line.split(), rows
    raise AssertionError("no table starting with %r in:\n%s" % (first_column, "\n".join(lines)))


def test_throughput_table_has_every_row_and_column():
    need_root()
    n = 16384
    lines = run(["bench/bench_throughput.py", "--bytes", str(n), "--rings", "2048,8192",
                 "--stacks", "tcpip-cpython,tcpip-micropython,kernel", "--repeat", "1"])
    header, rows = table_after(lines, "stack")
    assert header == ["stack", "runtime", "direction", "rx/tx", "buf", "bytes", "seconds", "MB/s",
                      "x", "PyTCP", "rexmit"]
    seen = set()
    for row in rows:
        assert "FAILED" not in row, row
        f = row.split()
        # stack, runtime (2 words), direction, buffers, bytes, seconds, MB/s, x PyTCP, rexmit
        assert len(f) == 10, row
        stack, runtime, direction, buf, nbytes, mbs = f[0], f[1], f[3], f[4], int(f[5]), float(f[7])
        assert nbytes == n, row
        assert mbs > 0, row
        assert f[8] == "-", row  # no PyTCP row to compare with
        seen.add((stack, runtime, direction, buf))
    want = set()
    for d in ("down", "up"):
        for buf in ("2K/2K", "8K/8K"):
            want.add(("tcpip", "CPython", d, buf))
            want.add(("tcpip", "MicroPython", d, buf))
        want.add(("Linux", "kernel", d, "kernel"))
    assert seen == want


def test_throughput_ratio_is_against_pytcp_in_the_same_direction():
    rows = [
        {"stack": "tcpip", "runtime": "CPython 3.11.7", "direction": "down", "ring": 2048,
         "bytes": 1000000, "us": 100000, "ok": True, "rexmit": 0},
        {"stack": "tcpip", "runtime": "CPython 3.11.7", "direction": "up", "ring": 2048,
         "bytes": 1000000, "us": 200000, "ok": True, "rexmit": 3},
        {"stack": "PyTCP", "runtime": "CPython 3.11.7", "direction": "down", "ring": None,
         "bytes": 1000000, "us": 2000000, "ok": True},
        {"stack": "PyTCP", "runtime": "CPython 3.11.7", "direction": "up", "ring": None,
         "bytes": 1000000, "us": 1000000, "ok": True},
        {"stack": "tcpip", "runtime": "MicroPython", "direction": "up", "ring": 8192,
         "bytes": 0, "us": 0, "ok": False, "error": "timeout"},
    ]
    lines = bench_throughput.format_table(rows).splitlines()
    f = [line.split() for line in lines[1:]]
    assert f[0][:5] == ["tcpip", "CPython", "3.11.7", "down", "2K/2K"]
    assert (f[0][7], f[0][8], f[0][9]) == ("10.00", "20.0", "0")  # 10 MB/s vs PyTCP's 0.5
    assert (f[1][7], f[1][8], f[1][9]) == ("5.00", "5.0", "3")    # 5 MB/s vs PyTCP's 1.0
    assert (f[2][8], f[3][8]) == ("1.0", "1.0")
    assert "FAILED: timeout" in lines[5]
    targets = bench_throughput.format_targets(rows).splitlines()
    assert "down" in targets[0] and "20.0x met (target >= 10x)" in targets[0], targets
    assert "up" in targets[1] and "5.0x met (target >= 5x)" in targets[1], targets
    assert "8K rings: FAILED run" in targets[2], targets


def test_heap_tables_have_their_rows_and_columns():
    need_root()
    lines = run(["bench/bench_heap.py", "--echo-bytes", "4096"])
    header, rows = table_after(lines, "frame")
    assert header == ["frame", "B/frame", "sent"]
    names = [r.rsplit(None, 2)[0].strip() for r in rows[:4]]
    assert names == ["ARP request -> reply", "ping request (56 B) -> reply",
                     "data segment received (1460 B) + recv_into",
                     "data segment sent (1460 B) + its ACK"]
    for r in rows[:4]:
        b, sent = r.rsplit(None, 2)[1:]
        assert float(b) >= 0 and int(sent) > 0, r
    assert rows[4].startswith("one connect()") and int(rows[4].split()[-1]) > 0, rows[4]

    header, rows = table_after(lines, "run")
    assert header == ["run", "code", "B", "free", "B", "stack", "B", "peak", "B", "fits", "result"]
    assert [r.split("  ")[0] for r in rows] == ["-X heapsize=64K", "-X heapsize=1M, 64 KB left for data",
                                               "-X heapsize=1M"]
    for r in rows[1:]:
        assert r.rstrip().endswith(("ok (CLOSED)", "ok (TIME-WAIT)")), r  # who closed first varies
        code, free, stack, peak = (int(x) for x in r.split()[-7:-3])
        assert code > 0 and stack > 0 and peak >= stack, r


# -- bench_rp2040.py: the RP2040 row (an emulator kit is optional developer tooling) ---------------
KIT_OUTPUT = """\
heap free: 232512 B at script start, 157104 B after importing tcpip.board/tcp/socket, after bring_up 132848 B; SPI 24MHz
board           SPI    rings rx/tx  dir   bytes   emu s  kB/s   cycles/B  cycles/seg  import heap B  heap B/seg
W5500-EVB-Pico  24MHz  12288/12288  down  262144  0.327  801.6  156       220963      75408          0.0
W5500-EVB-Pico  24MHz  12288/12288  up    262144  0.411  637.8  196       240071      75408          -
logs in /tmp/x
rp2040 w5500 24MHz: down 801.6 kB/s, up 637.8 kB/s, import heap 75408 B, 156 cycles/B
"""


def test_rp2040_row_without_a_kit_says_it_was_skipped():
    env = {k: v for k, v in os.environ.items() if k != "RP2EMU"}
    p = subprocess.run([sys.executable, "bench/bench_rp2040.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=TIMEOUT_S, env=env)
    assert p.returncode == 0 and p.stdout.startswith("rp2040: skipped (no emulator kit"), p.stdout
    p = subprocess.run([sys.executable, "bench/bench_rp2040.py", "--kit", ROOT], cwd=ROOT,
                       capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert p.returncode == 0 and "is not an emulator kit (no bench.sh)" in p.stdout, p.stdout


def test_rp2040_row_reads_the_kits_table():
    import bench_rp2040
    rows, heap = bench_rp2040.parse_bench(KIT_OUTPUT)
    assert heap == {"import": 232512 - 157104, "in_use_after_bring_up": 232512 - 132848}
    assert [(r["dir"], r["bytes"], r["kB/s"], r["cycles/B"], r["cycles/seg"]) for r in rows] == [
        ("down", 262144, 801.6, 156, 220963), ("up", 262144, 637.8, 196, 240071)]
    assert rows[0]["in use after bring_up B"] == 99664 and rows[0]["heap B/seg"] == "0.0"
    lines = bench_rp2040.table(rows).splitlines()
    assert lines[0].split()[:3] == ["SPI", "rings", "dir"] and len(lines) == 3
