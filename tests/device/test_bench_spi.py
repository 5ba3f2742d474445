"""bench/bench_spi.py still runs and its figures hang together (never a gate on the figures)."""
import json
import os
import subprocess
import sys

import devicecase


def test_bench_spi_measures_both_boards_at_every_size():
    proc = subprocess.run([sys.executable, os.path.join("bench", "bench_spi.py"), "--frames", "2", "--json"],
                          cwd=devicecase.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(proc.stdout)
    boards = {r["board"]: r for r in res["results"]}
    assert sorted(boards) == ["pico_enc28j60", "w5500_evb_pico"], proc.stdout
    for name, r in boards.items():
        assert "error" not in r, r
        assert r["wiring_errors"] == 0 and r["tx_delivered"], r
        assert r["bring_up"] == "tcpip.board.bring_up", r
        seen = set()
        for row in r["rows"]:
            seen.add((row["size"], row["dir"]))
            # every frame byte crosses the bus once, plus the chip's framing
            assert row["spi_bytes"] > row["size"] and row["per_byte"] > 1.0, row
            assert row["transactions"] >= 1 and row["calls"] >= row["transactions"], row
            assert row["us"] > row["transactions"] * res["t_txn_us"], row
        assert seen == {(s, d) for s in (60, 590, 1514) for d in ("rx", "tx")}, seen
        assert r["idle"]["transactions"] >= 1, r
    assert boards["w5500_evb_pico"]["spi_hz"] == 24000000
    assert boards["pico_enc28j60"]["spi_hz"] == 12000000  # 16 MHz asked: rp2 makes 12
