"""Runs every dual test module (first line "# dual: cpython micropython") on the MicroPython unix port.

pytest runs the same modules on CPython directly; this runs them again under `micropython` so the
stack is proven on both runtimes.
"""
import glob
import os
import subprocess

import pytest

from host_tools.netns import micropython_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "host")
DUAL_MARK = "# dual: cpython micropython"


def dual_modules():
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        with open(path) as f:
            if f.readline().strip() == DUAL_MARK:
                out.append(path)
    return out


@pytest.mark.parametrize("path", dual_modules(), ids=os.path.basename)
def test_module_passes_on_micropython(path):
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":" + HERE + ":.frozen")
    proc = subprocess.run(
        [micropython_binary(), "-X", "heapsize=4M", os.path.join(ROOT, "tests", "mprun.py"), path],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    words = last.split()
    ok = len(words) == 4 and words[1] == "passed," and int(words[0]) > 0 and words[2] == "0"
    assert proc.returncode == 0 and ok, proc.stdout + proc.stderr
