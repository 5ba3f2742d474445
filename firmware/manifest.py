# Freeze tcpip, the REPL helpers and the board files into a custom MicroPython firmware. Frozen
# bytecode runs from flash, so the ~100 KB the .mpy bundle takes from the heap stay free.
#
#   make firmware MPY_DIR=/path/to/micropython MPY_BOARD=RPI_PICO      (from this repository), or
#   make -C /path/to/micropython/ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=$PWD/firmware/manifest.py
#
# boot.py, main.py and /tcpip_config.py still go onto the filesystem (MicroPython runs boot.py and
# main.py from there only): docs/BOARDS.md, "The bundle, its size, and a frozen firmware". Paths
# are relative to this file.
include("$(PORT_DIR)/boards/manifest.py")  # what the port freezes anyway (rp2: _boot, rp2, ...)
metadata(description="tcpip: a lean TCP/IP client stack", version="0.1.0")
package("tcpip", base_path="../lib")  # lib/tcpip/** (drivers, wire, DHCP, DNS included)
module("net.py")  # the REPL helpers (firmware/net.py)
module("connect_main.py", base_path="../host_tools/mp")  # the CLI's Session, used by net.connect
package("boards", base_path="..")  # boards/*.py as the `boards` package (load_board imports them)
