# A client that uses MicroPython's own `requests` (micropython-lib, frozen into the unix port) to
# fetch a body as `r.content`, as urequests users do; it knows nothing of tcpip.
# tests/host/test_read_memory_real.py runs it on the unix port with a small heap, over tcpip
# (launch.py installs tcpip.socket as `socket`) and over the runtime's own sockets.
#     micropython -X heapsize=N requests_content.py URL
# Prints "heap <bytes in use before the GET> <bytes free before>", "length <n>",
# "sha256 <hex digest of the body>", "done"; a MemoryError ends it with its traceback.
import gc
import sys

import binascii
import hashlib
import requests

gc.collect()
print("heap", gc.mem_alloc(), gc.mem_free())
r = requests.get(sys.argv[1])
body = r.content
print("length", len(body))
print("sha256", binascii.hexlify(hashlib.sha256(body).digest()).decode())
print("type", type(body).__name__)
print("done")
