"""python -m host_tools build [--board NAME] [--out DIR] [--budget KB] [--lines]
    [--write-package-json [--mip-repo github:OWNER/REPO]]

Compiles what goes onto a board into a bundle directory laid out as the board's filesystem, from
the components in packages/ (each packages/<name>/manifest.py; host_tools/packages.py):

    boot.py, main.py                 firmware/ (source: MicroPython runs these two only as .py)
    lib/tcpip/**.mpy                 lib/tcpip: the components tcpip, tcpip-dhcp, tcpip-dns,
                                     tcpip-board and the chip's driver (tcpip-w5500 or
                                     tcpip-enc28j60), mpy-cross -march=armv6m (the Cortex-M0+)
    lib/net.mpy, lib/connect_main.mpy  firmware/: tcpip-net (the REPL helpers and the CLI's Session)
    lib/boards/<name>.py             boards/, in tcpip-board (source: a few constants to edit)

--board NAME builds what that board runs: tcpip-net, the components it requires, the driver
component of the board file's CHIP, and that board file only; without it every component and
board goes in. The library is compiled with -O3 (no line-number tables: they
take about 3.5 KB of the board's heap); --lines keeps them, for real line numbers in tracebacks. A size table (source and .mpy bytes per file) and the total are
printed; the build fails (exit 1) when the .mpy total exceeds the budget (BUDGET_BYTES, --budget):
imported .mpy code lives in the RP2040's heap (about 232 KB on the RPI_PICO firmware:
docs/BOARDS.md, "Speed and memory on an RP2040"), so the budget is a RAM budget as much as a
flash one. Exit 2: usage (unknown board, an --out that is not a bundle).

--write-package-json rewrites the mip packages from the manifests: packages/<name>/package.json
for each component (its files and deps as URLs under --mip-repo, default packages.MIP_REPO) and
the repository's package.json (every component, relative URLs: `mpremote mip install
github:OWNER/REPO`).
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from host_tools import packages  # noqa: E402

# Measured at the commit that added this file: see docs/BOARDS.md ("The bundle, its size, and a
# frozen firmware") for the table.
BUDGET_BYTES = 128 * 1024  # 120 KB until passive open and UDP sockets (loaded only when used)
MARKER = ".tcpip-bundle"   # marks a directory this tool made (and may empty again)
PACKAGE_JSON = packages.ROOT_PACKAGE_JSON
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


def bundle_components(board=None, comps=None):
    """The components a board's bundle holds, each after what it requires: tcpip-net's closure
    and the driver of the board file's CHIP; with board None, every component."""
    comps = packages.components() if comps is None else comps
    try:
        if board is None:
            return packages.closure(list(comps), comps)
        chip = board_chip(board)
        from tcpip.board import CHIPS

        if chip not in CHIPS:
            raise BuildError("board %s has CHIP %r; drivers exist for: %s" % (
                board, chip, ", ".join(sorted(CHIPS))))
        return packages.board_components(chip, comps)
    except packages.ManifestError as exc:
        raise BuildError(str(exc))


def files(board=None, with_components=False):
    """[(source path, bundle path, compile?)] in bundle order: boot.py and main.py, then each
    component's files, component by component (board files: only this board's, as source).
    with_components: also {bundle path: component name}."""
    comps = packages.components()
    out = [
        (os.path.join(ROOT, "firmware", "boot.py"), "boot.py", False),
        (os.path.join(ROOT, "firmware", "main.py"), "main.py", False),
    ]
    owner = {"boot.py": "-", "main.py": "-"}
    for name in bundle_components(board, comps):
        for src, dest in comps[name].files:
            source = dest.startswith("boards/")  # board files stay source: constants to edit
            if source and board is not None and dest != "boards/%s.py" % board:
                continue
            out.append((src, "lib/" + dest, not source))
            owner["lib/" + dest] = name
    return (out, owner) if with_components else out


def package_json():
    """The repository's package.json: every component's files, relative URLs, no deps."""
    return packages.root_package_json(packages.components())


def package_json_text():
    """package.json as committed: one [dest, src] pair per line."""
    return packages.json_text(package_json())


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
    todo, owner = files(board, with_components=True)
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
              "ok": total <= budget, "out": out, "board": board,
              "components": dict((r[0], owner[d]) for r, (_, d, _) in zip(rows, todo))}
    if report is not None:
        for line in size_table(result):
            report(line)
    return result


def size_table(result):
    rows = result["rows"]
    comp = result.get("components", {})
    head = "file (armv6m bundle%s)" % (", board " + result["board"] if result["board"] else "")
    w = max([len(head)] + [len(r[0]) for r in rows])
    cw = max([len("component")] + [len(c) for c in comp.values()])
    lines = ["%-*s %-*s %8s %8s" % (w, head, cw, "component", "source", "bundle")]
    for dest, src_n, n in rows:
        lines.append("%-*s %-*s %8d %8d" % (w, dest, cw, comp.get(dest, ""), src_n, n))
    n_mpy = len([r for r in rows if r[0].endswith(".mpy")])
    lines.append("%-*s %-*s %8s %8d" % (w, "total .mpy (%d files)" % n_mpy, cw, "", "", result["total"]))
    lines.append("%-*s %-*s %8s %8d" % (w, "total with .py files", cw, "", "", result["all"]))
    per = []
    for dest, _, n in rows:
        c = comp.get(dest)
        if c and c != "-" and dest.endswith(".mpy"):
            for item in per:
                if item[0] == c:
                    item[1] += n
                    item[2] += 1
                    break
            else:
                per.append([c, n, 1])
    if per:
        lines.append(".mpy per component: " + ", ".join("%s %d (%d)" % tuple(p) for p in per))
    lines.append("budget %d bytes (%d KB) for the .mpy total: %s (%.0f%%)" % (
        result["budget"], result["budget"] // 1024, "ok" if result["ok"] else "EXCEEDED",
        100.0 * result["total"] / result["budget"]))
    return lines


def add_build_args(p):
    p.add_argument("--board", metavar="NAME",
                   help="what boards/NAME.py runs: tcpip-net and what it requires, its chip's driver "
                        "component, its board file; default: every component and board")
    p.add_argument("--budget", type=int, metavar="KB", default=BUDGET_BYTES // 1024,
                   help="fail when the .mpy total exceeds KB kilobytes (default %d)" % (BUDGET_BYTES // 1024))
    p.add_argument("--lines", action="store_true",
                   help="keep the line-number tables (mpy-cross without -O3): tracebacks from the "
                        "library show real line numbers, at about 3.5 KB more heap on the board")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m host_tools build",
        description="Compile the components of packages/ (lib/tcpip, the firmware helpers) with "
                    "mpy-cross -march=armv6m into a bundle laid out as the board's filesystem; print "
                    "a size table; fail over budget.")
    add_build_args(p)
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="bundle directory (default build/bundle); emptied first if this tool made it")
    p.add_argument("--write-package-json", action="store_true",
                   help="also rewrite the mip packages from the manifests: packages/*/package.json "
                        "and the repository's package.json")
    p.add_argument("--mip-repo", metavar="URL", default=packages.MIP_REPO,
                   help="with --write-package-json: where the repository is published, the prefix "
                        "of the component packages' URLs and deps (default %s)" % packages.MIP_REPO)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        result = build_bundle(os.path.abspath(args.out), args.board, args.budget * 1024, lines=args.lines)
    except BuildError as exc:
        print("build: %s" % exc, file=sys.stderr)
        return EXIT_USAGE if "unknown board" in str(exc) or "not touching" in str(exc) else EXIT_FAIL
    if args.write_package_json:
        written = packages.write_package_jsons(packages.components(), args.mip_repo)
        print("wrote %s" % ", ".join(os.path.relpath(p, ROOT) for p in written))
    print("bundle in %s" % result["out"])
    if not result["ok"]:
        print("build: the .mpy total %d bytes exceeds the budget of %d bytes" % (
            result["total"], result["budget"]), file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
