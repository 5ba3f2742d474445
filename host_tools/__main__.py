"""python -m host_tools connect|serve|demo (host_tools/cli.py, docs/CLI.md) and build|deploy|repl
(host_tools/build.py, host_tools/deploy.py, docs/BOARDS.md)."""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB = os.path.join(_ROOT, "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)  # tcpip lives in lib/: importable without PYTHONPATH=lib

# board commands: their own modules and argument parsers
_BOARD_COMMANDS = {"build": "host_tools.build", "deploy": "host_tools.deploy", "repl": "host_tools.deploy"}


def _board_command(argv):
    import importlib

    mod = importlib.import_module(_BOARD_COMMANDS[argv[0]])
    if argv[0] == "repl":
        return mod.repl_main(argv[1:])
    return mod.main(argv[1:])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in _BOARD_COMMANDS:
        sys.exit(_board_command(sys.argv[1:]))
    from host_tools.cli import main  # noqa: E402

    sys.exit(main())
