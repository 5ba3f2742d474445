# heap_probe.py -- where the heap of a W5500 board goes, on the emulated W5500-EVB-Pico with the
# project's bundle (bench/bench_rp2040.py --detail runs it through the kit's netrun.sh):
#   the import of tcpip.board + tcpip.tcp + tcpip.socket as the kit's "import heap" column takes
#   it (gc.mem_free() before and after, both after gc.collect()), split per module (each module's
#   own share: its import minus the imports it made), the qstr pool, then bring_up with a static
#   address (the modules it imports, and the objects and buffers it makes), the heap in use after
#   it, and the largest free block.
# Lines starting with "HEAP " carry the figures. The import hook itself costs a few hundred bytes,
# so the per-module figures add up to slightly more than the plain import.
import builtins
import gc
import micropython
import sys

gc.collect()
START = gc.mem_free()

_real = builtins.__import__
_self = {}     # module -> its own bytes
_stack = []    # [bytes taken by nested imports] per import in progress


def _hook(name, *args):
    if name in sys.modules:
        return _real(name, *args)
    gc.collect()
    before = gc.mem_free()
    _stack.append(0)
    try:
        return _real(name, *args)
    finally:
        nested = _stack.pop()
        gc.collect()
        took = before - gc.mem_free()
        if name in sys.modules:
            _self[name] = _self.get(name, 0) + took - nested
        if _stack:
            _stack[-1] += took


gc.collect()
plain0 = gc.mem_free()
builtins.__import__ = _hook
import tcpip.board  # noqa: E402
import tcpip.tcp  # noqa: E402,F401
import tcpip.socket  # noqa: E402,F401
builtins.__import__ = _real
gc.collect()
imported = gc.mem_free()
print("HEAP import_total %d" % (plain0 - imported))
for k in sorted(_self, key=lambda k: -_self[k]):
    print("HEAP module %-24s %6d" % (k, _self[k]))
micropython.qstr_info()

from tcpip.tcp import TcpConfig  # noqa: E402

_self.clear()
gc.collect()
b0 = gc.mem_free()
builtins.__import__ = _hook
stack = tcpip.board.bring_up(tcpip.board.load_board("w5500_evb_pico"), dhcp=False, addr="192.0.2.2/24",
                             gateway="192.0.2.1")
builtins.__import__ = _real
gc.collect()
b1 = gc.mem_free()
mods = 0
for k in sorted(_self, key=lambda k: -_self[k]):
    mods += _self[k]
    print("HEAP bring_up_module %-24s %6d" % (k, _self[k]))
print("HEAP bring_up_total %d (modules %d, objects and buffers %d)" % (b0 - b1, mods, b0 - b1 - mods))
print("HEAP in_use_after_bring_up %d" % (START - b1))
micropython.qstr_info()
micropython.mem_info()
if False:  # True: list every qstr in the pools (what the names cost)
    micropython.qstr_info(1)
