"""tcpip.drivers.w5500 and its bring-up module tcpip.drivers.w5500_init keep their own copies of
the register constants (const() folds per module): they must agree. CPython only (reads sources)."""
import os
import re


def test_driver_and_its_bring_up_module_agree_on_the_register_map():
    # w5500.py repeats the few registers and sizes its per-frame paths use; w5500_init.py has the
    # whole map (const()s are folded per module, so each needs its own copy)
    here = os.path.join(os.path.dirname(__file__), "..", "..", "lib", "tcpip", "drivers")
    maps = []
    for f in ("w5500.py", "w5500_init.py"):
        with open(os.path.join(here, f)) as fh:
            maps.append(dict(re.findall(r"^(_\w+) = const\(([^)]*)\)", fh.read(), re.M)))
    shared = set(maps[0]) & set(maps[1])
    assert len(shared) >= 10
    for k in shared:
        assert eval(maps[0][k]) == eval(maps[1][k]), k
