# Runs a board program (devicecase.board_program: tests/device/board_script.py with its CONFIG and
# the board file's text, exactly what test_real_board.py sends to a board with `mpremote run`) on
# the virtual board: the unix port with the machine shim and the chip model for that board file,
# the model's wire side a UdpFrameDevice to the test's frame bridge.
#   MICROPYPATH=lib:host_tools/mp:tests/device micropython tests/device/virtual_runner.py
# stdin's first line: {"program": path, "board_file": path, "bridge_port": port}.
# Ends with one more line: MARK + {"step": "spi", ...} (the shim's bus counters, model, driver).
import json
import sys

import board_script
from udp_device import UdpFrameDevice
from virtual_board import VirtualBoard

cfg = json.loads(sys.stdin.readline())
with open(cfg["board_file"]) as f:
    board = board_script.board_from_source(f.read())
with open(cfg["program"]) as f:
    program = f.read()
link = UdpFrameDevice(cfg["bridge_port"])
try:
    vb = VirtualBoard(board, link)  # the chip model wired to the shim's pins; `import machine` = shim
    g = {"__name__": "__main__"}
    exec(program, g)
    stack = g.get("STACK")
    vb.driver = stack.device if stack is not None else None
    spi = vb.spi_counters()
    spi["step"] = "spi"
    board_script.report(spi)
finally:
    link.close()
