"""`python -m host_tools` with one more runtime, virtual-fifo: the virtual board with the tiny FIFO
chip of tests/device/fifo_chip.py (board file tests/device/fifo_board.py). Tests the virtual
board's plumbing (shim, wiring, board file, bridge, CLI JSON) apart from the real chip models.

    python tests/device/fifo_cli.py connect HOST PORT --tap tap0 --addr ... --runtime virtual-fifo
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from host_tools import cli  # noqa: E402

cli.VIRTUAL_BOARDS["virtual-fifo"] = "fifo_board"
cli.VB_EXTRA_PATHS.append(HERE)

if __name__ == "__main__":
    sys.exit(cli.main())
