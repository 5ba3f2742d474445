"""python -m host_tools build [--board NAME] [--out DIR] [--budget KB] [--lines] [--write-package-json]

Compiles what goes onto a board into a bundle directory laid out as the board's filesystem:

    boot.py, main.py                 firmware/ (source: MicroPython runs these two only as .py)
    lib/tcpip/**.mpy                 lib/tcpip (mpy-cross -march=armv6m: the RP2040's Cortex-M0+)
    lib/net.mpy                      firmware/net.py (the REPL helpers)
    lib/connect_main.mpy             host_tools/mp/connect_main.py (the CLI's Session: net.connect)
    lib/boards/<name>.py             boards/ (source: a board file is a few constants to edit)

--board NAME keeps only that board file and its chip's driver (the other driver is left out); without
it every board and driver goes in. The library is compiled with -O3 (no line-number tables: they
take about 3.5 KB of the board's heap); --lines keeps them, for real line numbers in tracebacks. A size table (source and .mpy bytes per file) and the total are
printed; the build fails (exit 1) when the .mpy total exceeds the budget (BUDGET_BYTES, --budget):
imported .mpy code lives in the RP2040's heap (about 232 KB on the RPI_PICO firmware:
docs/BOARDS.md, "Speed and memory on an RP2040"), so the budget is a RAM budget as much as a
flash one. Exit 2: usage (unknown board, an --out that is not a bundle).

--write-package-json rewrites the repository's package.json (mip: `mpremote mip install
github:OWNER/REPO`) from the same file list, with sources as relative URLs.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

# Measured at the commit that added this file: see docs/BOARDS.md ("The bundle, its size, and a
# frozen firmware") for the table.
BUDGET_BYTES = 120 * 1024
MARKER = ".tcpip-bundle"   # marks a directory this tool made (and may empty again)
PACKAGE_JSON = os.path.join(ROOT, "package.json")
DEFAULT_OUT = os.path.join(ROOT, "build", "bundle")
ARCH = "armv6m"
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class BuildError(Exception):
    pass


def board_names():
    out = []
    for n in sorted(os.listdir(os.path.join(ROOT, "boards"))):
        if n.endswith(".py") and not n.startswith("_"):
            out.append(n[:-3])
    return out


def board_chip(name):
    """CHIP of boards/<name>.py, read without importing it into this process."""
    path = os.path.join(ROOT, "boards", name + ".py")
    if name not in board_names():
        raise BuildError("unknown board %r; boards/ has: %s" % (name, ", ".join(board_names())))
    scope = {}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), scope)  # a board file is constants only
    return scope.get("CHIP")


def _driver_modules():
    from tcpip.board import CHIPS

    return {chip: mod.rsplit(".", 1)[1] + ".py" for chip, (mod, _) in CHIPS.items()}


def files(board=None):
    """[(source path, bundle path, compile?)] in bundle order."""
    out = [
        (os.path.join(ROOT, "firmware", "boot.py"), "boot.py", False),
        (os.path.join(ROOT, "firmware", "main.py"), "main.py", False),
    ]
    skip = set()
    if board is not None:
        chip = board_chip(board)
        drivers = _driver_modules()
        if chip not in drivers:
            raise BuildError("board %s has CHIP %r; drivers exist for: %s" % (
                board, chip, ", ".join(sorted(drivers))))
        skip = set()
        for c, f in drivers.items():
            if c != chip:  # the other chips' drivers, and their bring-up modules (<driver>_init.py)
                skip.add(os.path.join("drivers", f))
                skip.add(os.path.join("drivers", f[:-3] + "_init.py"))
    lib_files = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(LIB, "tcpip")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, fn), os.path.join(LIB, "tcpip"))
                if rel not in skip:
                    lib_files.append(rel)
    for rel in sorted(lib_files):
        out.append((os.path.join(LIB, "tcpip", rel), "lib/tcpip/" + rel.replace(os.sep, "/"), True))
    out.append((os.path.join(ROOT, "firmware", "net.py"), "lib/net.py", True))
    out.append((os.path.join(ROOT, "host_tools", "mp", "connect_main.py"), "lib/connect_main.py", True))
    for name in board_names():
        if board is None or name == board:
            out.append((os.path.join(ROOT, "boards", name + ".py"), "lib/boards/%s.py" % name, False))
    return out


def package_json():
    """The mip package description: every lib/tcpip file, the REPL helpers and the board files,
    installed under the target (/lib) from relative URLs."""
    from tcpip import __version__

    urls = []
    for src, dest, _ in files():
        if not dest.startswith("lib/"):
            continue  # boot.py / main.py belong in /, which mip does not write
        urls.append([dest[4:], os.path.relpath(src, ROOT).replace(os.sep, "/")])
    return {"urls": urls, "deps": [], "version": __version__}


def package_json_text():
    """package.json as committed: one [dest, src] pair per line."""
    d = package_json()
    pairs = ",\n".join("    " + json.dumps(u) for u in d["urls"])
    return '{\n  "urls": [\n%s\n  ],\n  "deps": %s,\n  "version": %s\n}\n' % (
        pairs, json.dumps(d["deps"]), json.dumps(d["version"]))


def _prepare_out(out):
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise BuildError("--out %s is a file" % out)
        if os.listdir(out) and not os.path.exists(os.path.join(out, MARKER)):
            raise BuildError("--out %s is not empty and is not a bundle this tool made: not touching it" % out)
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("made by python -m host_tools build; emptied on the next build\n")


def mpy_cross():
    from host_tools.netns import venv_tool

    return venv_tool("mpy-cross")


def build_bundle(out, board=None, budget=BUDGET_BYTES, report=print, lines=False):
    """Build the bundle into out; returns {"rows": [(bundle path, source bytes, bundle bytes)],
    "total": bundle bytes of the .mpy files, "all": every file, "budget": budget, "ok": bool}.
    lines=False compiles with mpy-cross -O3, which leaves out the line-number tables: imported
    code lives in the board's heap, and they are about 4% of it (docs/ARCHITECTURE.md, "What the
    code costs in heap");
    tracebacks from the library then say line 1 of the right function. lines=True keeps them."""
    todo = files(board)
    opt = [] if lines else ["-O3"]
    _prepare_out(out)
    tool = mpy_cross()
    rows = []
    for src, dest, comp in todo:
        target = os.path.join(out, dest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if comp:
            target = target[:-3] + ".mpy"
            dest = dest[:-3] + ".mpy"
            name = dest[4:] if dest.startswith("lib/") else dest
            # the source name recorded for tracebacks is the path the module is imported from on the
            # board (its __file__, /lib/... as deploy and mip place it): one string, one qstr there
            proc = subprocess.run([tool, "-march=" + ARCH] + opt + ["-s", "/" + dest, "-o", target, src],
                                  capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise BuildError("mpy-cross failed on %s:\n%s" % (os.path.relpath(src, ROOT),
                                                                  proc.stderr.strip()))
        else:
            shutil.copyfile(src, target)
        rows.append((dest, os.path.getsize(src), os.path.getsize(target)))
    total = sum(r[2] for r in rows if r[0].endswith(".mpy"))
    everything = sum(r[2] for r in rows)
    result = {"rows": rows, "total": total, "all": everything, "budget": budget,
              "ok": total <= budget, "out": out, "board": board}
    if report is not None:
        for line in size_table(result):
            report(line)
    return result


def size_table(result):
    rows = result["rows"]
    w = max(len(r[0]) for r in rows)
    lines = ["%-*s %8s %8s" % (w, "file (armv6m bundle%s)" % (
        ", board " + result["board"] if result["board"] else ""), "source", "bundle")]
    for dest, src_n, n in rows:
        lines.append("%-*s %8d %8d" % (w, dest, src_n, n))
    n_mpy = len([r for r in rows if r[0].endswith(".mpy")])
    lines.append("%-*s %8s %8d" % (w, "total .mpy (%d files)" % n_mpy, "", result["total"]))
    lines.append("%-*s %8s %8d" % (w, "total with .py files", "", result["all"]))
    lines.append("budget %d bytes (%d KB) for the .mpy total: %s (%.0f%%)" % (
        result["budget"], result["budget"] // 1024, "ok" if result["ok"] else "EXCEEDED",
        100.0 * result["total"] / result["budget"]))
    return lines


def add_build_args(p):
    p.add_argument("--board", metavar="NAME",
                   help="only this board file and its chip's driver (boards/NAME.py); default: all")
    p.add_argument("--budget", type=int, metavar="KB", default=BUDGET_BYTES // 1024,
                   help="fail when the .mpy total exceeds KB kilobytes (default %d)" % (BUDGET_BYTES // 1024))
    p.add_argument("--lines", action="store_true",
                   help="keep the line-number tables (mpy-cross without -O3): tracebacks from the "
                        "library show real line numbers, at about 3.5 KB more heap on the board")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m host_tools build",
        description="Compile lib/tcpip and the firmware helpers with mpy-cross -march=armv6m into a "
                    "bundle laid out as the board's filesystem; print a size table; fail over budget.")
    add_build_args(p)
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="bundle directory (default build/bundle); emptied first if this tool made it")
    p.add_argument("--write-package-json", action="store_true",
                   help="also rewrite package.json (mip) from the same file list")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        result = build_bundle(os.path.abspath(args.out), args.board, args.budget * 1024, lines=args.lines)
    except BuildError as exc:
        print("build: %s" % exc, file=sys.stderr)
        return EXIT_USAGE if "unknown board" in str(exc) or "not touching" in str(exc) else EXIT_FAIL
    if args.write_package_json:
        with open(PACKAGE_JSON, "w") as f:
            f.write(package_json_text())
        print("wrote %s (%d files)" % (os.path.relpath(PACKAGE_JSON), len(package_json()["urls"])))
    print("bundle in %s" % result["out"])
    if not result["ok"]:
        print("build: the .mpy total %d bytes exceeds the budget of %d bytes" % (
            result["total"], result["budget"]), file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
