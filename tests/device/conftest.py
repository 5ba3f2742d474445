import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(ROOT, "tests", "host"), os.path.join(ROOT, "lib"), ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)
MP = os.path.join(ROOT, "host_tools", "mp")  # machine_shim, virtual_board, udp_device: top-level names
if MP not in sys.path:
    sys.path.append(MP)
