"""python -m host_tools connect|serve|run|demo (host_tools/cli.py, host_tools/run.py, docs/CLI.md)
and build|deploy|repl (host_tools/build.py, host_tools/deploy.py, docs/BOARDS.md)."""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB = os.path.join(_ROOT, "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)  # tcpip lives in lib/: importable without PYTHONPATH=lib

if __name__ == "__main__":
    from host_tools.cli import main  # noqa: E402

    sys.exit(main())
