# Freeze tcpip into a custom MicroPython firmware:
#   make -C ports/rp2 BOARD=W5500_EVB_PICO FROZEN_MANIFEST=/path/to/tcpip/firmware/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
metadata(description="tcpip: a lean TCP/IP client stack", version="0.1.0")
package("tcpip", base_path="../lib")
