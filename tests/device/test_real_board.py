"""The device scenarios on a real board through mpremote, when one is named.

    TCPIP_DEVICE_PORT=/dev/ttyACM0 TCPIP_DEVICE_BOARD=w5500_evb_pico TCPIP_DEVICE_HOST_IP=192.168.1.20 \\
        .venv/bin/python -m pytest -q tests/device/test_real_board.py

TCPIP_DEVICE_PORT    the board's serial port (mpremote connect PORT)
TCPIP_DEVICE_BOARD   its board file, boards/<name>.py (w5500_evb_pico, pico_enc28j60, ...)
TCPIP_DEVICE_HOST_IP this machine's IPv4 address on the board's network: the test's echo server
                     listens there, and the board connects to it
TCPIP_DEVICE_ADDR    optional: a static A.B.C.D/N for the board (default: DHCP)
TCPIP_DEVICE_GATEWAY optional, with TCPIP_DEVICE_ADDR

tcpip must be on the board already (`python -m host_tools deploy --board NAME --port PORT`). The
test sends tests/device/board_script.py with `mpremote run` (the repository's board file goes
with it as text): the board brings the chip and the stack up, answers this machine's ping, connects
to the echo server here and exchanges data, and connects to a closed port here (ECONNREFUSED:
a host firewall that drops instead of refusing makes that step fail). Without TCPIP_DEVICE_PORT the
test is skipped, saying which variables to set; with it but without the others it fails.
test_virtual_board.py runs the same script on the virtual boards in CI.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import devicecase
from devicecase import EchoServer, board_program, check_scenarios, closed_port, drive, scenario_config

ENV_PORT = "TCPIP_DEVICE_PORT"
ENV_BOARD = "TCPIP_DEVICE_BOARD"
ENV_HOST = "TCPIP_DEVICE_HOST_IP"
ENV_ADDR = "TCPIP_DEVICE_ADDR"
ENV_GATEWAY = "TCPIP_DEVICE_GATEWAY"
RUN_LIMIT_S = 90  # bring-up with DHCP (15 s at most), ping window, two connects, mpremote start-up


def device_settings():
    port = os.environ.get(ENV_PORT)
    if not port:
        pytest.skip("no real board named: set %s (serial port, e.g. /dev/ttyACM0), %s (e.g. "
                    "w5500_evb_pico) and %s (this machine's address on the board's network); "
                    "optional %s=A.B.C.D/N and %s for a static address. See tests/device/README.md"
                    % (ENV_PORT, ENV_BOARD, ENV_HOST, ENV_ADDR, ENV_GATEWAY))
    board = os.environ.get(ENV_BOARD)
    host = os.environ.get(ENV_HOST)
    missing = [k for k, v in ((ENV_BOARD, board), (ENV_HOST, host)) if not v]
    if missing:
        pytest.fail("%s=%s names a board, but %s %s not set (tests/device/README.md)" % (
            ENV_PORT, port, " and ".join(missing), "is" if len(missing) == 1 else "are"), pytrace=False)
    board_file = os.path.join(devicecase.ROOT, "boards", board + ".py")
    if not os.path.isfile(board_file):
        pytest.fail("%s=%s: no board file %s" % (ENV_BOARD, board, board_file), pytrace=False)
    if not os.path.exists(port):
        pytest.fail("%s=%s: no such device" % (ENV_PORT, port), pytrace=False)
    for tool in ("ping",):
        if not shutil.which(tool):
            pytest.fail("the real-board test needs %s" % tool, pytrace=False)
    return {"port": port, "board": board, "board_file": board_file, "host": host,
            "addr": os.environ.get(ENV_ADDR) or None, "gateway": os.environ.get(ENV_GATEWAY) or None}


def mpremote():
    from host_tools.netns import venv_tool

    try:
        return venv_tool("mpremote")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_board_comes_up_answers_ping_exchanges_data_and_gets_refused():
    s = device_settings()
    tool = mpremote()
    server = EchoServer(s["host"], 0)
    cfg = scenario_config(s["host"], server.port, closed_port(s["host"]), addr=s["addr"],
                          gateway=s["gateway"])
    fd, path = tempfile.mkstemp(prefix="tcpip-device-", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(board_program(cfg, s["board_file"]))
    proc = subprocess.Popen([tool, "connect", s["port"], "run", path], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        steps, lines = drive(proc, lambda st: devicecase.ping([], st["up"]["ip"]),
                             time.monotonic() + RUN_LIMIT_S,
                             on_listening=lambda st: devicecase.curl_board([], st["up"]["ip"]))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        server.close()
        os.unlink(path)
    if "up" not in steps and any("ImportError" in line or "no module named" in line.lower() for line in lines):
        pytest.fail("tcpip is not on the board: python -m host_tools deploy --board %s --port %s\n%s" % (
            s["board"], s["port"], "\n".join(lines[-30:])), pytrace=False)
    check_scenarios(steps, lines, server)
    if s["addr"]:
        assert steps["up"]["addr"] == s["addr"], steps["up"]
