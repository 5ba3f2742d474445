metadata(description="tcpip driver: WIZnet W5500 in MACRAW mode, with RP2040 DMA", version="0.1.0")

require("tcpip")

# w5500_init.py: reset and configuration, loaded for bring-up only; rp2dma.py: SPI by DMA on an
# RP2040 (rp2.DMA), used when present.
package(
    "tcpip",
    files=("drivers/w5500.py", "drivers/w5500_init.py", "drivers/rp2dma.py"),
    base_path="../../lib",
)
