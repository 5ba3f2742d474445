"""python -m host_tools connect|serve|demo  (see host_tools/cli.py and docs/CLI.md)."""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB = os.path.join(_ROOT, "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)  # tcpip lives in lib/: importable without PYTHONPATH=lib

from host_tools.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
