"""What goes onto a board: the .mpy bundle (host_tools/build.py), the components (packages/<name>/
manifest.py and package.json, host_tools/packages.py; mip by URL with deps, MicroPython's own
manifest tool when it is here), package.json (mip), firmware/manifest.py, `python -m host_tools
deploy|repl` (host_tools/deploy.py), firmware/boot.py, main.py, net.py and connect_main.py.

The board side runs on the MicroPython unix port: from a built armv6m bundle (its bytecode .mpy
files load on any MicroPython >= 1.19; only _viper.mpy is arch-specific and stays unused there),
with host_tools/mp/machine_shim.py wiring a chip model whose network side is test_board.Lan (ARP,
DHCP, DNS, a RST for every SYN). mpremote itself runs against FakeSerialBoard: a unix-port process
behind a pty pair, which speaks the raw REPL as a board does (the unix port has it) while this
class emulates the soft reset (a fresh interpreter). What a real board adds (USB CDC, flash
filesystem, rp2 SPI) is not covered here.
"""
import argparse
import ast
import json
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tty

import pytest

from host_tools import build, deploy, packages
from host_tools.netns import micropython_binary, venv_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP_DIR = os.path.join(ROOT, "host_tools", "mp")
HOST_TESTS = os.path.join(ROOT, "tests", "host")
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
BOARDS = {"w5500_evb_pico": ("w5500_model", "W5500Model"),
          "pico_enc28j60": ("enc28j60_model", "Enc28j60Model")}


def lib_sources():
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "lib", "tcpip")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in filenames:
            if fn.endswith(".py"):
                out.append(os.path.relpath(os.path.join(dirpath, fn), os.path.join(ROOT, "lib")))
    return sorted(p.replace(os.sep, "/") for p in out)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bundle") / "all")
    return build.build_bundle(out, report=None)


def files_under(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for fn in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, fn), root).replace(os.sep, "/"))
    return sorted(out)


# -- the bundle --------------------------------------------------------------------------------
def test_bundle_has_every_module_as_armv6m_mpy(bundle):
    got = files_under(bundle["out"])
    for rel in lib_sources():
        assert "lib/" + rel[:-3] + ".mpy" in got, rel
    for f in ("boot.py", "main.py", "lib/net.mpy", "lib/connect_main.mpy",
              "lib/boards/w5500_evb_pico.py", "lib/boards/pico_enc28j60.py"):
        assert f in got, f
    assert not [f for f in got if f.startswith("lib/") and f.endswith(".py") and "/boards/" not in f]
    for f in got:
        if f.endswith(".mpy"):
            with open(os.path.join(bundle["out"], f), "rb") as fh:
                head = fh.read(4)
            # header: 'M', version 6, then arch << 2 | sub-version: bytecode-only files carry no
            # arch (0: any port loads them); native code (the viper cores) is armv6m (4), mpy 6.3
            assert head[0] == ord("M") and head[1] == 6, (f, head)
            if f in ("lib/tcpip/_viper.mpy", "lib/tcpip/drivers/rp2dma.mpy"):
                assert head[2] == 4 << 2 | 3, (f, head)
            else:
                assert head[2] == 0, (f, head)
    sizes = {r[0]: r[2] for r in bundle["rows"]}
    assert sum(n for f, n in sizes.items() if f.endswith(".mpy")) == bundle["total"]
    assert all(n > 0 for n in sizes.values())


def test_bundle_is_under_its_budget(bundle):
    assert bundle["budget"] == build.BUDGET_BYTES
    assert bundle["ok"] and bundle["total"] <= build.BUDGET_BYTES, build.size_table(bundle)


def test_board_bundle_keeps_only_its_driver_and_board(tmp_path):
    for board, other_driver, other_board in (("w5500_evb_pico", "enc28j60", "pico_enc28j60"),
                                              ("pico_enc28j60", "w5500", "w5500_evb_pico")):
        r = build.build_bundle(str(tmp_path / board), board, report=None)
        got = files_under(r["out"])
        assert "lib/tcpip/drivers/%s.mpy" % other_driver not in got
        assert "lib/boards/%s.py" % other_board not in got
        assert "lib/boards/%s.py" % board in got
        mine = "enc28j60" if other_driver == "w5500" else "w5500"
        assert "lib/tcpip/drivers/%s.mpy" % mine in got
        # the other chip's bring-up module (drivers/<driver>_init.py) stays out too
        assert "lib/tcpip/drivers/%s_init.mpy" % other_driver not in got


def _mpy_source_name(path):
    """The source file name an .mpy records (the first entry of its qstr table, mpy v6)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[0:2] == b"M\x06"
    i = 4

    def uint():
        nonlocal i
        v = 0
        while True:
            c = b[i]
            i += 1
            v = (v << 7) | (c & 0x7F)
            if not c & 0x80:
                return v

    uint()  # qstrs
    uint()  # objects
    n = uint()
    assert not n & 1, "a static qstr as the source name"
    return b[i:i + (n >> 1)].decode()


def test_bundle_modules_record_the_path_they_are_imported_from(bundle):
    # the traceback name of each .mpy is its path on the board (its __file__ there): one qstr
    for dest, _src, _n in bundle["rows"]:
        if dest.endswith(".mpy"):
            assert _mpy_source_name(os.path.join(bundle["out"], dest)) == "/" + dest, dest


def test_bundle_leaves_out_line_numbers_unless_asked(tmp_path):
    # -O3: no line-number tables (heap on the board); lines=True keeps them
    plain = build.build_bundle(str(tmp_path / "plain"), "w5500_evb_pico", report=None)
    lined = build.build_bundle(str(tmp_path / "lined"), "w5500_evb_pico", report=None, lines=True)
    sizes = [dict((r[0], r[2]) for r in b["rows"]) for b in (plain, lined)]
    assert sizes[0]["lib/tcpip/tcp_in.mpy"] < sizes[1]["lib/tcpip/tcp_in.mpy"] - 300
    assert plain["total"] < lined["total"] - 2000


def test_build_command(tmp_path):
    out = tmp_path / "b"
    py = sys.executable
    p = subprocess.run([py, "-m", "host_tools", "build", "--board", "w5500_evb_pico", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "lib/tcpip/tcp.mpy" in p.stdout and "total .mpy" in p.stdout and ": ok (" in p.stdout
    assert (out / "lib" / "tcpip" / "stack.mpy").is_file()
    # over budget: exit 1 and says so
    p = subprocess.run([py, "-m", "host_tools", "build", "--out", str(out), "--budget", "10"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "exceeds the budget" in p.stderr and "EXCEEDED" in p.stdout
    # unknown board: usage error
    p = subprocess.run([py, "-m", "host_tools", "build", "--board", "nope", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "unknown board 'nope'" in p.stderr


def test_build_never_empties_a_directory_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    with pytest.raises(build.BuildError, match="not touching"):
        build.build_bundle(str(tmp_path), report=None)
    assert (tmp_path / "precious.txt").read_text() == "keep"


# -- components: packages/<name>/manifest.py, their package.json, the firmware manifest ---------------
COMPONENTS = {  # name -> what its manifest require()s: the design, pinned
    "tcpip": [],
    "tcpip-dhcp": ["tcpip"],
    "tcpip-dns": ["tcpip"],
    "tcpip-w5500": ["tcpip"],
    "tcpip-enc28j60": ["tcpip"],
    "tcpip-board": ["tcpip", "tcpip-dhcp"],
    "tcpip-net": ["tcpip-board", "tcpip-dns"],
}


def test_components_and_what_they_require():
    comps = packages.components()
    assert {n: c.requires for n, c in comps.items()} == COMPONENTS
    from tcpip import __version__
    for c in comps.values():
        assert c.version == __version__ and c.description, c.name
    assert packages.closure(["tcpip-w5500"], comps) == ["tcpip", "tcpip-w5500"]
    assert packages.closure(["tcpip-net"], comps) == ["tcpip", "tcpip-dhcp", "tcpip-board", "tcpip-dns",
                                                      "tcpip-net"]


def test_every_file_belongs_to_exactly_one_component():
    comps = packages.components()
    owner = packages.owners(comps)  # raises when two components ship one path
    for rel in lib_sources():
        assert rel in owner, "lib/%s is in no component: add it to a packages/*/manifest.py" % rel
    assert owner["net.py"] == owner["connect_main.py"] == "tcpip-net"
    for b in build.board_names():
        assert owner["boards/%s.py" % b] == "tcpip-board"
    # and nothing else: library files, the two REPL helpers, the board files, each where mip puts it
    got = sorted((dest, os.path.relpath(src, ROOT)) for c in comps.values() for src, dest in c.files)
    want = sorted([(rel, "lib/" + rel) for rel in lib_sources()]
                  + [("net.py", "firmware/net.py"), ("connect_main.py", "firmware/connect_main.py")]
                  + [("boards/%s.py" % b, "boards/%s.py" % b) for b in build.board_names()])
    assert got == want
    for name in ("dhcp", "dns", "board", "board_help", "board_init"):
        assert "tcpip/%s.py" % name not in comps["tcpip"].dests()  # the core leaves them out


def test_each_chip_driver_is_its_own_component():
    from tcpip.board import CHIPS

    comps = packages.components()
    for chip, (module, _) in CHIPS.items():
        name = packages.driver_component(chip, comps)
        assert name == "tcpip-" + chip and comps[name].requires == ["tcpip"]
        assert module.replace(".", "/") + ".py" in comps[name].dests()
        assert all(d.startswith("tcpip/drivers/" + chip) or d == "tcpip/drivers/rp2dma.py"
                   for d in comps[name].dests()), comps[name].dests()
    assert "tcpip/drivers/rp2dma.py" in comps["tcpip-w5500"].dests()  # the W5500's DMA (RP2040)
    assert "tcpip/drivers/__init__.py" in comps["tcpip"].dests()      # the namespace the drivers extend


def test_component_manifests_and_package_json_agree():
    from tcpip import __version__

    comps = packages.components()
    repo = packages.MIP_REPO
    for c in comps.values():
        path = os.path.join(ROOT, "packages", c.name, "package.json")
        with open(path) as f:
            text = f.read()
        pkg = json.loads(text)
        assert sorted(pkg) == ["deps", "urls", "version"]
        assert pkg["version"] == c.version == __version__
        assert [d for d, _ in pkg["urls"]] == c.dests()
        for (dest, url), (src, _) in zip(pkg["urls"], c.files):
            assert url == "%s/%s" % (repo, os.path.relpath(src, ROOT)), url
        # deps: full URLs (mip looks a bare name up in micropython-lib's index) of components here
        assert pkg["deps"] == [["%s/packages/%s" % (repo, r), packages.DEP_VERSION] for r in c.requires]
        for dep, _ in pkg["deps"]:
            target = os.path.join(ROOT, dep[len(repo) + 1:])
            assert os.path.isfile(os.path.join(target, "manifest.py")) and \
                os.path.isfile(os.path.join(target, "package.json")), dep
        assert text == packages.json_text(packages.package_json(c)), \
            "%s is stale: python -m host_tools build --write-package-json" % os.path.relpath(path, ROOT)


def test_root_package_json_is_every_component_with_relative_urls():
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    assert sorted(pkg) == ["deps", "urls", "version"] and pkg["deps"] == []
    dests = [d for d, _ in pkg["urls"]]
    assert len(set(dests)) == len(dests)
    for dest, src in pkg["urls"]:
        assert not src.startswith(("/", "http", "github:")), src  # relative: next to package.json
        assert os.path.isfile(os.path.join(ROOT, src)), src
    comps = packages.components()
    assert sorted(pkg["urls"]) == sorted([d, os.path.relpath(s, ROOT)] for c in comps.values() for s, d in c.files)
    assert ["connect_main.py", "firmware/connect_main.py"] in pkg["urls"]
    from tcpip import __version__
    assert pkg["version"] == __version__
    with open(os.path.join(ROOT, "package.json")) as f:
        assert f.read() == build.package_json_text(), "package.json is stale: python -m host_tools build --write-package-json"


def test_a_board_bundle_is_its_components(tmp_path):
    comps = packages.components()
    for board, chip in (("w5500_evb_pico", "w5500"), ("pico_enc28j60", "enc28j60")):
        names = build.bundle_components(board)
        assert [n for n in names if n in ("tcpip-w5500", "tcpip-enc28j60")] == ["tcpip-" + chip]
        assert names == packages.closure(["tcpip-net", "tcpip-" + chip], comps)
        r = build.build_bundle(str(tmp_path / board), board, report=None)
        got = [f[4:] for f in files_under(r["out"]) if f.startswith("lib/")]
        got = sorted(f[:-4] + ".py" if f.endswith(".mpy") else f for f in got)
        want = sorted(d for n in names for d in comps[n].dests()
                      if not d.startswith("boards/") or d == "boards/%s.py" % board)
        assert got == want
        # the size table says which component each file is in, and what each costs
        assert r["components"]["lib/tcpip/drivers/%s.mpy" % chip] == "tcpip-" + chip
        assert r["components"]["lib/net.mpy"] == "tcpip-net"
        table = "\n".join(build.size_table(r))
        assert ".mpy per component: tcpip " in table and ("tcpip-%s " % chip) in table


class FreezeManifest:
    """MicroPython's manifest API as a firmware build runs it (tools/manifestfile.py in freeze mode),
    for what our manifests use: include() (a folder means its manifest.py; keyword arguments become
    `options`), add_library(), require() (a folder <name> with a manifest.py, searched in the
    libraries), package() (files=None: every .py below it), module(), metadata().
    files: {path in the firmware: source file}."""

    def __init__(self, path_vars):
        self.vars = path_vars
        self.files = {}
        self.libraries = []
        self.visited = set()
        self.required = []

    def _path(self, p, here):
        for k, v in self.vars.items():
            p = p.replace("$(%s)" % k, v)
        return os.path.normpath(os.path.join(here, p))

    def include(self, path, here=ROOT, **options):
        path = self._path(path, here)
        if os.path.isdir(path):
            path = os.path.join(path, "manifest.py")
        if path in self.visited:
            return
        self.visited.add(path)
        here = os.path.dirname(path)

        class Options:
            def __init__(self, kw):
                self.kw = kw
                self.dflt = {}

            def defaults(self, **kw):
                self.dflt = kw

            def __getattr__(self, name):
                return self.kw.get(name, self.dflt.get(name))

        def add(src, dest):
            assert os.path.isfile(src), src
            assert dest not in self.files, dest
            self.files[dest] = src

        def package(package_path, files=None, base_path=".", opt=None):
            base = self._path(base_path, here)
            if files is None:
                for dirpath, _, names in os.walk(os.path.join(base, package_path)):
                    for n in names:
                        if n.endswith(".py"):
                            f = os.path.join(dirpath, n)
                            add(f, os.path.relpath(f, base).replace(os.sep, "/"))
            else:
                for f in files:
                    add(os.path.join(base, package_path, f), package_path + "/" + f)

        def module(module_path, base_path=".", opt=None):
            add(os.path.join(self._path(base_path, here), module_path), module_path)

        def require(name, version=None, **kw):
            for lib in self.libraries:
                for dirpath, _, names in os.walk(lib):
                    if os.path.basename(dirpath) == name and "manifest.py" in names:
                        self.required.append(name)
                        return self.include(dirpath)
            raise ValueError("Package '%s' not found in any known library." % name)

        scope = {"include": lambda p, **kw: self.include(p, here, **kw),
                 "add_library": lambda name, p, prepend=False: self.libraries.append(self._path(p, here)),
                 "require": require, "package": package, "module": module,
                 "metadata": lambda **kw: None, "options": Options(options)}
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), scope)


def _firmware_manifest(tmp_path, **options):
    port = tmp_path / "port"
    (port / "boards").mkdir(parents=True, exist_ok=True)
    (port / "boards" / "manifest.py").write_text("module('_boot.py', base_path='..')\n")
    (port / "_boot.py").write_text("")
    m = FreezeManifest({"PORT_DIR": str(port)})
    m.include(os.path.join(ROOT, "firmware", "manifest.py"), **options)
    return m


def test_firmware_manifest_requires_the_components(tmp_path):
    comps = packages.components()
    with open(os.path.join(ROOT, "firmware", "manifest.py")) as f:
        code = ast.parse(f.read())
    # a set of include()/add_library()/require() calls: no file of ours is named there
    calls = [n.func.id for n in ast.walk(code) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "package" not in calls and "module" not in calls and "require" in calls
    m = _firmware_manifest(tmp_path)
    assert m.files.pop("_boot.py").endswith("_boot.py")  # the port's own manifest, included
    everything = dict((d, s) for c in comps.values() for s, d in c.files)
    assert m.files == everything
    assert sorted(set(m.required)) == sorted(comps)
    one = _firmware_manifest(tmp_path, chip="w5500")  # include(".../firmware/manifest.py", chip=...)
    assert "tcpip/drivers/w5500.py" in one.files and "tcpip/drivers/enc28j60.py" not in one.files
    with pytest.raises(ValueError, match="chip="):
        _firmware_manifest(tmp_path, chip="rtl8019")


def micropython_manifestfile():
    """MicroPython's own tools/manifestfile.py: from the checkout $MPY_DIR names, else the copy
    micropython-stubber ships (scripts/setup.sh installs it without its dependencies); None if
    neither is here."""
    import importlib.util

    candidates = []
    if os.environ.get("MPY_DIR"):
        candidates.append(os.path.join(os.environ["MPY_DIR"], "tools", "manifestfile.py"))
    spec = importlib.util.find_spec("stubber")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(os.path.join(loc, "tools", "manifestfile.py"))
    for path in candidates:
        if os.path.isfile(path):
            s = importlib.util.spec_from_file_location("micropython_manifestfile", path)
            mod = importlib.util.module_from_spec(s)
            s.loader.exec_module(mod)
            return mod
    return None


def test_micropython_manifest_tool_reads_the_manifests(tmp_path):
    mf = micropython_manifestfile()
    if mf is None:
        pytest.skip("no tools/manifestfile.py: set MPY_DIR to a MicroPython checkout, or run scripts/setup.sh")
    comps = packages.components()
    port = tmp_path / "port"
    (port / "boards").mkdir(parents=True)
    (port / "boards" / "manifest.py").write_text("")
    path_vars = {"MPY_DIR": None, "MPY_LIB_DIR": None, "BOARD_DIR": None, "PORT_DIR": str(port)}

    def targets(m):
        return sorted((f.target_path, os.path.relpath(f.full_path, ROOT)) for f in m.files())

    # each component as micropython-lib's build reads one (compile mode: metadata() first, the
    # required components' files with its own), through add_library() as a firmware would
    for name, c in comps.items():
        m = mf.ManifestFile(mf.MODE_COMPILE, path_vars)
        m.add_library("tcpip", os.path.join(ROOT, "packages"))
        m.execute(c.manifest)
        assert m.metadata().version == c.version
        want = sorted((d, os.path.relpath(s, ROOT)) for n in packages.closure([name], comps)
                      for s, d in comps[n].files)
        assert targets(m) == want, name
    # the firmware manifest, frozen: every component
    m = mf.ManifestFile(mf.MODE_FREEZE, path_vars)
    m.execute(os.path.join(ROOT, "firmware", "manifest.py"))
    assert targets(m) == sorted((d, os.path.relpath(s, ROOT)) for c in comps.values() for s, d in c.files)
    m = mf.ManifestFile(mf.MODE_FREEZE, path_vars)
    m.include(os.path.join(ROOT, "firmware", "manifest.py"), chip="enc28j60")
    got = [t for t, _ in targets(m)]
    assert "tcpip/drivers/enc28j60.py" in got and "tcpip/drivers/w5500.py" not in got


# -- deploy / repl: the mpremote commands --------------------------------------------------------
def run_host_tools(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "host_tools"] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_deploy_dry_run_prints_the_mpremote_commands(tmp_path):
    out = tmp_path / "d"
    p = run_host_tools("deploy", "--board", "pico_enc28j60", "--port", "/dev/ttyACM7", "--static",
                       "192.168.1.50/24", "--gateway", "192.168.1.1", "--dns", "192.168.1.1", "--dns",
                       "9.9.9.9", "--hostname", "pico-eth", "--out", str(out), "--dry-run")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    d = str(out)
    want = [
        ["mpremote", "connect", "/dev/ttyACM7", "run", d + "/cleanup.py"],
        ["mpremote", "connect", "/dev/ttyACM7", "fs", "cp", "-r", d + "/lib", d + "/boot.py",
         d + "/main.py", d + "/tcpip_config.py", ":."],
        ["mpremote", "connect", "/dev/ttyACM7", "soft-reset", "exec", "import main"],
    ]
    assert [shlex.split(x) for x in lines[-3:]] == want
    assert "lib/tcpip/drivers/enc28j60.mpy" in p.stdout  # the size table came first
    cfg = {}
    exec((out / "tcpip_config.py").read_text(), cfg)
    assert (cfg["BOARD"], cfg["ADDR"], cfg["GATEWAY"], cfg["DNS"], cfg["HOSTNAME"], cfg["AUTOSTART"]) == (
        "pico_enc28j60", "192.168.1.50/24", "192.168.1.1", ["192.168.1.1", "9.9.9.9"], "pico-eth", True)
    cleanup = (out / "cleanup.py").read_text()
    ast.parse(cleanup)
    assert "'lib/tcpip'" in cleanup and "'lib/net.py'" in cleanup and "'lib/net.mpy'" in cleanup
    assert "'lib/boards/pico_enc28j60.py'" in cleanup
    assert "/lib" not in cleanup.replace("'lib/", "")  # relative paths only: never the host's /lib


def test_deploy_defaults_dhcp_and_auto_port(tmp_path):
    p = run_host_tools("deploy", "--board", "w5500_evb_pico", "--out", str(tmp_path / "d"), "--dry-run")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "mpremote connect auto soft-reset exec 'import main'"
    cfg = {}
    exec((tmp_path / "d" / "tcpip_config.py").read_text(), cfg)
    assert (cfg["BOARD"], cfg["ADDR"], cfg["DNS"], cfg["AUTOSTART"]) == ("w5500_evb_pico", None, None, True)


@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "unknown board 'nope'"),
    (["--board", "w5500_evb_pico", "--gateway", "192.168.1.1"], "--gateway goes with --static"),
    (["--board", "w5500_evb_pico", "--static", "192.168.1.50/24", "--gateway", "10.0.0.1"], "--gateway"),
    (["--board", "w5500_evb_pico", "--static", "192.168.1.50"], "prefix length"),
    (["--board", "w5500_evb_pico", "--dns", "nine"], "--dns"),
    (["--board", "w5500_evb_pico", "--hostname", "bad name"], "hostname"),
    ([], "--board"),
])
def test_deploy_usage_errors(args, message, tmp_path):
    p = run_host_tools("deploy", *args, "--out", str(tmp_path / "d"), "--dry-run")
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "d").exists()


def test_repl_dry_run():
    p = run_host_tools("repl", "--port", "/dev/ttyACM0", "--dry-run")
    assert p.returncode == 0 and p.stdout.strip() == "mpremote connect /dev/ttyACM0 repl"
    p = run_host_tools("repl", "--dry-run")
    assert p.stdout.strip() == "mpremote connect auto repl"


def test_deploy_stops_at_the_first_failing_command(tmp_path, capsys):
    seen = []

    def runner(cmd):
        seen.append(cmd)
        return 1

    rc = deploy.main(["--board", "w5500_evb_pico", "--port", "/dev/null0"], runner=runner)
    assert rc == 1 and len(seen) == 1 and seen[0][1:4] == ["connect", "/dev/null0", "run"]
    err = capsys.readouterr().err
    assert "mpremote failed (exit 1)" in err and "--port" in err
    assert not os.path.exists(os.path.dirname(seen[0][4]))  # the temporary bundle is gone



def test_deploy_removes_its_temporary_bundle_when_it_stops_early(tmp_path, monkeypatch, capsys):
    """No mpremote installed, or a bundle over its budget: the real run stops before copying, and
    the temporary bundle goes all the same (it is kept only by --dry-run and --out)."""
    made = []

    def mkdtemp(prefix):
        d = str(tmp_path / ("bundle%d" % len(made)))
        os.mkdir(d)
        made.append(d)
        return d

    def no_mpremote():
        raise RuntimeError("mpremote not found")

    monkeypatch.setattr(deploy.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(deploy, "mpremote_tool", no_mpremote)
    assert deploy.main(["--board", "w5500_evb_pico"], runner=lambda cmd: 0) == 1
    assert "mpremote not found" in capsys.readouterr().err
    assert deploy.main(["--board", "w5500_evb_pico", "--budget", "1"], runner=lambda cmd: 0) == 1
    assert "exceeds the budget" in capsys.readouterr().err
    assert len(made) == 2 and not any(os.path.exists(d) for d in made)

# -- a board behind a pty, for mpremote ---------------------------------------------------------------
class FakeSerialBoard:
    """A MicroPython unix-port process behind a pty pair that mpremote opens like a board's USB serial
    port (`port`). The unix port has the raw REPL and raw paste mode that mpremote speaks; a soft
    reset (Ctrl-D at the raw REPL prompt) is emulated here: a fresh interpreter runs `setup` and
    boot.py, and the board's answer ("OK", "MPY: soft reboot", the raw REPL prompt) goes back. The
    board's filesystem is `root` (its working directory); sys.path is '', root/lib, then extra_path."""

    def __init__(self, root, setup="", extra_path=()):
        self.root = root
        self.setup = setup
        self.path = ":" + ":".join([os.path.join(root, "lib")] + list(extra_path))
        self.dev_m, self.dev_s = pty.openpty()
        self.host_m, self.host_s = pty.openpty()
        tty.setraw(self.dev_s)
        tty.setraw(self.host_s)
        self.port = os.ttyname(self.host_s)
        self.proc = None
        self.soft_resets = 0
        self.at_prompt = False
        self.tail = b""
        self.stop = threading.Event()
        self._spawn()
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _spawn(self):
        code = self.setup + (
            "\nimport os\ntry:\n    os.stat('boot.py')\nexcept OSError:\n    pass\n"
            "else:\n    exec(open('boot.py').read())\n")
        env = dict(os.environ, MICROPYPATH=self.path)
        self.proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=4M", "-i", "-c", code],
                                     stdin=self.dev_s, stdout=self.dev_s, stderr=self.dev_s,
                                     cwd=self.root, env=env, close_fds=True)

    def _read_until(self, marker, timeout):
        buf = b""
        end = time.monotonic() + timeout
        while marker not in buf and time.monotonic() < end:
            r, _, _ = select.select([self.dev_m], [], [], 0.05)
            if r:
                buf += os.read(self.dev_m, 4096)
        return buf

    def _soft_reset(self):
        self.proc.kill()
        self.proc.wait(10)
        self.soft_resets += 1
        self._spawn()
        self._read_until(b">>> ", 20)  # the banner (after setup and boot.py)
        os.write(self.dev_m, b"\r\x01")
        self._read_until(RAW_PROMPT, 20)
        os.write(self.host_m, b"OK\r\nMPY: soft reboot\r\n" + RAW_PROMPT)
        self.tail = RAW_PROMPT
        self.at_prompt = True

    def _relay(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.dev_m, self.host_m], [], [], 0.05)
            if self.dev_m in r:
                try:
                    data = os.read(self.dev_m, 4096)
                except OSError:
                    data = b""
                if data:
                    self.tail = (self.tail + data)[-64:]
                    self.at_prompt = self.tail.endswith(RAW_PROMPT) or self.tail.endswith(b"\x04>")
                    os.write(self.host_m, data)
            if self.host_m in r:
                data = os.read(self.host_m, 4096)
                if data == b"\x04" and self.at_prompt:
                    self._soft_reset()
                elif data:
                    self.at_prompt = False
                    os.write(self.dev_m, data)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for fd in (self.dev_m, self.dev_s, self.host_m, self.host_s):
            os.close(fd)


def virtual_setup(board="w5500_evb_pico"):
    """Setup code for a fake board: the machine shim with the board's chip model on SPI0 / CS GP17,
    its network side a test_board.Lan (skipped while the bundle is not installed yet)."""
    mod, cls = BOARDS[board]
    return (
        "import sys\n"
        "try:\n"
        "    import machine_shim\n"
        "    from %s import %s\n"
        "    from test_board import Lan\n"
        "    machine_shim.wire(0, 17, %s(Lan(names={'example.test': '192.0.2.80'})), reset_pin=20, int_pin=21)\n"
        "    machine_shim.install()\n"
        "except ImportError as e:\n"
        "    print('no bundle yet:', e)\n"
    ) % (mod, cls, cls)


@pytest.fixture
def fake_board(tmp_path):
    boards = []

    def make(setup="", extra_path=(MP_DIR, HOST_TESTS)):
        root = tmp_path / "board"
        root.mkdir(exist_ok=True)
        b = FakeSerialBoard(str(root), setup, extra_path)
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.close()


def mpremote(board, *args, timeout=120, env=None):
    return subprocess.run([venv_tool("mpremote"), "connect", board.port] + list(args),
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_deploy_with_mpremote_to_a_fake_board(fake_board):
    b = fake_board(virtual_setup())
    root = b.root
    # leftovers of an earlier install that would shadow the new .mpy files, and a user file
    os.makedirs(os.path.join(root, "lib", "tcpip"))
    with open(os.path.join(root, "lib", "tcpip", "stack.py"), "w") as f:
        f.write("raise ImportError('stale')\n")
    with open(os.path.join(root, "lib", "net.py"), "w") as f:
        f.write("raise ImportError('stale')\n")
    with open(os.path.join(root, "mine.py"), "w") as f:
        f.write("X = 1\n")
    p = run_host_tools("deploy", "--board", "w5500_evb_pico", "--port", b.port, "--hostname", "fakepico")
    assert p.returncode == 0, p.stdout + p.stderr
    got = files_under(root)
    for rel in lib_sources():
        if not rel.endswith("drivers/enc28j60.py"):
            assert "lib/" + rel[:-3] + ".mpy" in got, rel
    assert "lib/tcpip/stack.py" not in got and "lib/net.py" not in got  # cleaned up
    assert "mine.py" in got  # not ours: kept
    for f in ("boot.py", "main.py", "tcpip_config.py", "lib/net.mpy", "lib/connect_main.mpy",
              "lib/boards/w5500_evb_pico.py"):
        assert f in got
    assert "cleanup: done" in p.stdout
    # the soft reset ran main.py on the board: DHCP through the driver and the chip model
    assert "W5500-EVB-Pico: link up" in p.stdout
    assert "W5500-EVB-Pico: 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53 (DHCP)" in p.stdout, p.stdout
    assert b.soft_resets >= 3
    # the network stays up after mpremote leaves: resume (no soft reset) and ask net.status()
    r = mpremote(b, "resume", "exec", "import net; net.status()")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "address  192.0.2.50/24" in r.stdout and "dhcp     state BOUND" in r.stdout
    r = mpremote(b, "resume", "exec", "import net; print(net.connect('example.test', 80, 'hi'))")
    assert "DNS: example.test is 192.0.2.80" in r.stdout
    assert "connect failed: ECONNREFUSED after 1 SYN sent at t=" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_mip_install_from_package_json_to_a_fake_board(fake_board):
    b = fake_board()
    r = mpremote(b, "mip", "install", os.path.join(ROOT, "package.json"), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    got = files_under(os.path.join(b.root, "lib"))
    assert got == sorted(d for d, _ in pkg["urls"])
    r = mpremote(b, "exec", "import tcpip.board, tcpip.dhcp, tcpip.dns, net, connect_main; "
                            "from tcpip.board import load_board; print(load_board('w5500_evb_pico').BOARD)")
    assert r.returncode == 0 and r.stdout.strip() == "W5500-EVB-Pico", r.stdout + r.stderr


class MipServer:
    """The repository over HTTP on 127.0.0.1, as mip sees it on GitHub, except that the component
    packages are generated with this server's URL where packages.MIP_REPO stands (their urls and
    deps), so mip follows the deps here. paths: what was asked for."""

    def __init__(self):
        import http.server

        self.paths = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=ROOT, **kw)

            def do_GET(self):
                server.paths.append(self.path)
                text = server.jsons.get(self.path)
                if text is None:
                    return super().do_GET()
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        files = packages.package_json_files(packages.components(), self.url)
        self.jsons = dict(("/" + os.path.relpath(p, ROOT), t) for p, t in files.items())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def mip_server():
    s = MipServer()
    yield s
    s.close()


def test_mip_install_of_components_pulls_what_they_require(fake_board, mip_server):
    comps = packages.components()
    env = dict(os.environ, no_proxy="127.0.0.1", NO_PROXY="127.0.0.1")
    for k in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)

    def installed():
        return files_under(os.path.join(b.root, "lib"))

    def dests(*names):
        return sorted(set(d for n in packages.closure(list(names), comps) for d in comps[n].dests()))

    b = fake_board()
    # a driver: mip fetches its package.json, its files, then the core's (its dep) and the core
    r = mpremote(b, "mip", "install", mip_server.url + "/packages/tcpip-w5500", timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert installed() == dests("tcpip-w5500")
    assert "/packages/tcpip/package.json" in mip_server.paths
    # then the REPL helpers: tcpip-board (+ tcpip-dhcp, the board files), tcpip-dns, the core again
    r = mpremote(b, "mip", "install", mip_server.url + "/packages/tcpip-net", timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert installed() == dests("tcpip-net", "tcpip-w5500")
    assert "tcpip/drivers/enc28j60.py" not in installed()
    r = mpremote(b, "exec", "import tcpip.stack, tcpip.dhcp, tcpip.dns, tcpip.drivers.w5500, net, connect_main; "
                            "from tcpip.board import load_board; print(load_board('w5500_evb_pico').BOARD)")
    assert r.returncode == 0 and r.stdout.strip() == "W5500-EVB-Pico", r.stdout + r.stderr
    # each file fetched from the repository where the component's package.json points
    for p in mip_server.paths:
        assert p in mip_server.jsons or os.path.isfile(os.path.join(ROOT, p.lstrip("/"))), p


# -- boot.py / main.py / net on the unix port --------------------------------------------------------
RUNNER = """\
import sys
sys.path.insert(0, "")   # a board's sys.path starts with '' (the unix port put the script's dir there)
%s
exec(open("boot.py").read())
exec(open("main.py").read())
import net
print("stack up:", net.stack is not None)
if net.stack is not None:
    net.status()
    print("connect returned", net.connect("example.test", 80, "GET / HTTP/1.0\\r\\n\\r\\n", timeout=2))
"""


def run_board(bundle, tmp_path, config, setup):
    root = tmp_path / "dev"
    shutil.copytree(bundle["out"], str(root))
    (root / "tcpip_config.py").write_text(config)
    (root / "runner.py").write_text(RUNNER % setup)
    env = dict(os.environ, MICROPYPATH=":" + ":".join([str(root / "lib"), MP_DIR, HOST_TESTS]))
    p = subprocess.run([micropython_binary(), "-X", "heapsize=4M", "runner.py"], cwd=str(root), env=env,
                       capture_output=True, text=True, timeout=120)
    return p


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_boot_and_main_bring_the_board_up_by_dhcp(bundle, tmp_path, board):
    config = deploy.config_text(board, hostname="fake")
    p = run_board(bundle, tmp_path, config, virtual_setup(board))
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    name = {"w5500_evb_pico": "W5500-EVB-Pico", "pico_enc28j60": "Pico+ENC28J60"}[board]
    assert "%s: link up" % name in out
    assert "DHCP: ACK 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53" in out
    assert "%s: 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53 (DHCP)" % name in out
    assert "stack up: True" in out
    for line in ("address  192.0.2.50/24", "gateway  192.0.2.1", "dns      192.0.2.53", "link     up"):
        assert line in out
    assert "DNS: example.test is 192.0.2.80" in out
    assert "tcpip micropython: 192.0.2.50/24 mac " in out and "on %s -> connect 192.0.2.80:80" % name in out
    assert "connect failed: ECONNREFUSED after 1 SYN sent at t=" in out
    assert "connect returned False" in out


def test_main_with_a_static_address(bundle, tmp_path):
    config = deploy.config_text("w5500_evb_pico", "192.0.2.9/24", "192.0.2.1", ["192.0.2.53"])
    p = run_board(bundle, tmp_path, config, virtual_setup("w5500_evb_pico"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "W5500-EVB-Pico: 192.0.2.9/24 gw 192.0.2.1 dns 192.0.2.53 (static)" in p.stdout
    assert "DHCP" not in p.stdout and "dhcp     off (static address)" in p.stdout
    assert "DNS: example.test is 192.0.2.80" in p.stdout


def test_main_reports_a_missing_chip_and_returns(bundle, tmp_path):
    # nothing wired on SPI0: the driver reads no chip; main.py prints why and the REPL stays usable
    setup = "import machine_shim\nmachine_shim.install()\n"
    p = run_board(bundle, tmp_path, deploy.config_text("w5500_evb_pico"), setup)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "tcpip: bring-up failed: no w5500 answers on W5500-EVB-Pico (SPI0 SCK GP18 MOSI GP19 MISO GP16 CS GP17 RST GP20 at 24 MHz)" in p.stdout
    assert "then net.up()" in p.stdout and "stack up: False" in p.stdout


def test_main_without_a_config_file(bundle, tmp_path):
    root = tmp_path / "dev"
    p = run_board(bundle, tmp_path, "", "")
    assert p.returncode == 0, p.stdout + p.stderr
    (root / "tcpip_config.py").unlink()
    env = dict(os.environ, MICROPYPATH=":" + str(root / "lib"))
    p = subprocess.run([micropython_binary(), "runner.py"], cwd=str(root), env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "tcpip: no /tcpip_config.py" in p.stdout and "stack up: False" in p.stdout


def test_autostart_off(bundle, tmp_path):
    config = deploy.config_text("w5500_evb_pico", autostart=False)
    p = run_board(bundle, tmp_path, config, "")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "AUTOSTART is off" in p.stdout and "stack up: False" in p.stdout


# -- net.connect prints the host CLI's timeline --------------------------------------------------------
def _net_module():
    for p in (os.path.join(ROOT, "firmware"), MP_DIR):
        if p not in sys.path:
            sys.path.insert(0, p)
    import net
    return net


def _cli_lines(msgs, where, host, port, send):
    from host_tools.cli import Reporter

    class Out:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    args = argparse.Namespace(command="connect", json=False, tap=where, host=host, port=port, count=1,
                              send=send, send_file=None, recv_file=None, runtime="micropython")
    out = Out()
    rep = Reporter(args, out)
    for m in msgs:
        rep.feed(m)
    return out.text.splitlines()


SUCCESS = [
    {"type": "start", "runtime": "micropython", "mac": "02:11:22:33:44:55", "addr": "192.0.2.50/24",
     "gateway": "192.0.2.1"},
    {"type": "event", "conn": 0, "t": 0.0, "event": "connect", "local": "192.0.2.50:40000",
     "remote": "192.0.2.80:80", "isn": 12345},
    {"type": "event", "conn": 0, "t": 0.1, "event": "arp-request", "detail": "192.0.2.80"},
    {"type": "event", "conn": 0, "t": 0.1, "event": "syn", "detail": 1, "local": "192.0.2.50:40000",
     "remote": "192.0.2.80:80", "isn": 12345},
    {"type": "event", "conn": 0, "t": 1.4, "event": "arp-resolved", "detail": "192.0.2.80"},
    {"type": "event", "conn": 0, "t": 1000.2, "event": "syn", "detail": 2},
    {"type": "event", "conn": 0, "t": 1003.5, "event": "state", "detail": "ESTABLISHED", "rtt_ms": None,
     "mss": 1460},
    {"type": "sent", "conn": 0, "t": 1003.6, "n": 18},
    {"type": "data", "conn": 0, "t": 1010.0, "hex": "48545450"},
    {"type": "event", "conn": 0, "t": 1011.0, "event": "dhcp", "detail": "RENEW"},
    {"type": "event", "conn": 0, "t": 1012.0, "event": "state", "detail": "CLOSED", "error": "ECONNRESET"},
    {"type": "conn", "conn": 0, "result": "connected", "errno": 0, "local": "192.0.2.50:40000",
     "remote": "192.0.2.80:80", "isn": 12345, "syn_sent_ms": [0, 1000], "rtt_ms": None, "srtt_ms": 3,
     "mss": 1460, "connect_ms": 1003.5, "sent": 18, "received_hex": "48545450c3",
     "ended": "peer-closed", "exchange_error": None, "final_state": "TIME-WAIT", "received_bytes": 5,
     "received_sha256": "x", "throughput": {"send": {"bytes": 18, "seconds": 0.001, "mb_per_s": 0.018,
                                                     "complete": True},
                                            "receive": {"bytes": 5, "seconds": 0.007, "mb_per_s": 0.0007}}},
    {"type": "result", "mode": "connect", "result": "connected", "counters": {"tcp_rx": 4, "eth_tx": 6}},
]
FAILURE = [
    {"type": "event", "conn": 0, "t": 3077.4, "event": "arp-failed"},
    {"type": "event", "conn": 0, "t": 3077.4, "event": "arp-failed", "detail": "192.0.2.80"},
    {"type": "event", "conn": 0, "t": 5.0, "event": "icmp", "detail": "EHOSTUNREACH", "errno": 113},
    {"type": "conn", "conn": 0, "result": "ECONNREFUSED", "errno": 111, "local": "192.0.2.50:40001",
     "remote": "192.0.2.80:81", "isn": 1, "syn_sent_ms": [0], "connect_ms": 2.5, "sent": 0,
     "received_hex": "", "ended": None, "exchange_error": None, "final_state": "CLOSED"},
    {"type": "conn", "conn": 0, "result": "ENETUNREACH", "errno": 101, "local": None, "remote": None,
     "isn": None, "syn_sent_ms": [], "connect_ms": 0.0, "sent": 0, "received_hex": "", "ended": None,
     "exchange_error": None, "final_state": None},
]


def test_timeline_lines_are_the_cli_lines():
    net = _net_module()
    send = "GET / HTTP/1.0\r\n\r\n"
    for msgs in (SUCCESS, FAILURE):
        mine = []
        tl = net.Timeline("192.0.2.80", 80, send, "W5500-EVB-Pico", mine.append)
        for m in msgs:
            tl.feed(m)
        theirs = _cli_lines(msgs, "W5500-EVB-Pico", "192.0.2.80", 80, send)
        assert mine == theirs
        assert len(mine) >= len(msgs) - 1


def _as_cli(msg):
    """A message of net.connect's raw Session as the CLI's Session sends it (the reply as hex; a
    "data" message's bytes are not in it, only their count)."""
    m = dict(msg)
    if "received" in m:
        r = m.pop("received")
        m["received_hex"] = b"".join(bytes(c) for c in r).hex() if isinstance(r, list) else bytes(r).hex()
    if "connections" in m:
        m["connections"] = [_as_cli(c) for c in m["connections"]]
    if m.get("type") == "data" and "n" in m:
        m["hex"] = "00" * m.pop("n")
    return json.loads(json.dumps(m))


def _raw(msgs, reply):
    """SUCCESS as net.connect's own Session (raw=True) sends it: byte counts, the reply itself."""
    out = []
    for m in msgs:
        m = dict(m)
        if m["type"] == "data":
            m["n"] = len(m.pop("hex")) // 2
        elif m["type"] == "conn" and "received_hex" in m:
            del m["received_hex"]
            m["received"] = reply
            m["received_bytes"] = sum(len(c) for c in reply) if isinstance(reply, list) else len(reply)
        out.append(m)
    return out


def test_timeline_shows_a_text_reply_line_by_line_as_the_cli():
    net = _net_module()
    whole = "HTTP/1.0 200 OK\r\nServer: t\u00e9st\r\n\r\nbody line\nlast\n\n".encode()
    # the chunks as they came: a line, and the two bytes of the \u00e9, split between chunks
    cut = whole.index(b"\xa9")
    reply = [bytearray(whole[:5]), bytearray(whole[5:cut]), bytearray(whole[cut:])]
    mine = []
    tl = net.Timeline("192.0.2.80", 80, "hi", "W5500-EVB-Pico", mine.append)
    for m in _raw(SUCCESS, reply):
        tl.feed(m)
    cli = [_as_cli(m) for m in _raw(SUCCESS, reply)]
    theirs = _cli_lines(cli, "W5500-EVB-Pico", "192.0.2.80", 80, "hi")
    # the same text (_cli_lines splits the CLI's output into lines); the board says it a line at a time
    assert "\n".join(mine).splitlines() == theirs
    assert "Server: t\u00e9st\r" in mine and mine.index("last") == mine.index("--------------------") - 1


def test_timeline_shows_a_binary_reply_as_a_hex_dump_in_small_pieces():
    """net.connect on a board: a binary reply is shown 16 bytes a line, never copied whole (the
    first firmware needed ~3x a 3 KB reply in one block and raised MemoryError)."""
    import tracemalloc
    net = _net_module()
    reply = bytearray(i * 7 & 0xFF for i in range(30000))
    # as net.connect's Session keeps it: the chunks as they came (here 4096 bytes, the last shorter)
    chunks = [reply[i:i + 4096] for i in range(0, len(reply), 4096)]
    lines = []
    tl = net.Timeline("192.0.2.80", 80, "hi", "W5500-EVB-Pico", lines.append)
    msgs = _raw(SUCCESS, chunks)
    for m in msgs:
        tl.feed(m)  # once first: what it imports is not the dump's heap
    lines.clear()
    tracemalloc.start()
    try:
        for m in msgs:
            tl.feed(m)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dump = lines[lines.index("----- received -----") + 1:lines.index("--------------------")]
    assert len(dump) == (30000 + 15) // 16
    assert dump[0] == "0000  00 07 0e 15 1c 23 2a 31 38 3f 46 4d 54 5b 62 69  |.....#*18?FMT[bi|"
    assert dump[-1].startswith("7520  ") and dump[-1].endswith("|")
    assert bytes.fromhex("".join(d[6:53] for d in dump).replace(" ", "")) == reply
    # the lines are kept by the test (lines.append): what the dump itself needs beyond them is small
    kept = sum(sys.getsizeof(x) for x in lines) + sys.getsizeof(lines)
    assert peak - kept < 8000, (peak, kept)
    # a NUL makes a reply binary even when it is valid UTF-8
    lines.clear()
    net._show(bytearray(b"ab\0cd\n"), lines.append)
    assert lines == ["0000  61 62 00 63 64 0a %s  |ab.cd.|" % (" " * 29)]


def test_net_connect_timeline_against_the_cli_reporter():
    """net.connect over a stack on the scripted LAN (CPython): the lines it prints are what the
    CLI's Reporter prints for the very messages the Session emitted."""
    import test_board
    net = _net_module()
    stack, m, nic, lan, clock = test_board.up(lan=test_board.Lan(names={"example.test": "192.0.2.80"}))
    seen = []
    old = net.Timeline

    class Recording(old):
        def feed(self, msg):
            seen.append(_as_cli(msg))
            old.feed(self, msg)

    lines = []
    net.stack = stack
    net.Timeline = Recording
    try:
        ok = net.connect("example.test", 80, "hello", timeout=1, out=lines.append)
    finally:
        net.Timeline = old
        net.stack = None
    assert ok is False and net.last["result"] == "ECONNREFUSED"
    assert lines[0].startswith("DNS: example.test is 192.0.2.80 (")
    assert lines[1:] == _cli_lines(seen, "Test-Board", "192.0.2.80", 80, "hello")
    assert any(x.startswith("connect failed: ECONNREFUSED after 1 SYN sent at t=0 ms") for x in lines)
    assert stack.trace is None
    out = []
    net.stack = stack
    try:
        assert net.connect("nowhere.test", 80, out=out.append) is False
    finally:
        net.stack = None
    assert out[0].startswith("DNS: cannot resolve nowhere.test")


def test_net_up_status_and_serve_on_cpython(capsys):
    """net.up() passes its overrides to bring_up (here with the fake machine and LAN of
    test_board), net.status() prints the state, net.serve() keeps polling for its time."""
    import test_board
    from manualclock import ManualClock
    net = _net_module()
    clock = ManualClock(5000)
    lan = test_board.Lan()
    try:
        stack = net.up(test_board.Board, hostname="n1", machine=test_board.FakeMachine(),
                       driver=test_board.nic_class(lan, clock), clock=clock, link_timeout_ms=100)
        assert net.stack is stack and stack.dhcp.bound() and lan.dhcp_hostname == b"n1"
        net.status()
        out = capsys.readouterr().out
        assert "Test-Board: 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53 (DHCP)" in out
        for line in ("board    Test-Board (w5500)", "mac      02:11:22:33:44:55", "link     up",
                     "address  192.0.2.50/24", "gateway  192.0.2.1", "dns      192.0.2.53",
                     "dhcp     state BOUND, server 192.0.2.1, lease 3600 s", "chip     rx_frames=2 tx_frames=2"):
            assert line in out.splitlines(), line
        t0 = clock.ticks_ms()
        net.serve(30)
        assert clock.ticks_ms() - t0 == 30000
        assert capsys.readouterr().out.startswith("counters ")
        with pytest.raises(OSError, match="no address"):
            net.up(test_board.Board, dhcp=False, machine=test_board.FakeMachine())
        assert net.stack is None  # a failed up() leaves no half-made stack behind
        with pytest.raises(OSError, match="the network is down"):
            net.connect("192.0.2.1", 80)
        net.status()
        assert capsys.readouterr().out == "network down: net.up()\n"
    finally:
        net.stack = None


def test_net_up_without_dhcp_takes_the_static_address_of_the_config():
    """net.up(dhcp=False): ADDR/GATEWAY of /tcpip_config.py are not overridden by the arguments,
    so they are used (before, dhcp=False ignored them and bring_up failed with "no address")."""
    import types

    import test_board
    from manualclock import ManualClock
    net = _net_module()
    cfg = types.ModuleType(net.CONFIG_MODULE)
    cfg.BOARD = "unused"
    cfg.ADDR = "192.0.2.9/24"
    cfg.GATEWAY = "192.0.2.1"
    saved = sys.modules.get(net.CONFIG_MODULE)
    sys.modules[net.CONFIG_MODULE] = cfg
    clock = ManualClock(5000)
    try:
        stack = net.up(test_board.Board, dhcp=False, machine=test_board.FakeMachine(), quiet=True,
                       driver=test_board.nic_class(test_board.Lan(), clock), clock=clock,
                       link_timeout_ms=100)
        assert stack.dhcp is None
        assert stack.route.addr == bytes([192, 0, 2, 9]) and stack.route.prefix_len == 24
        assert stack.route.gateway == bytes([192, 0, 2, 1])
    finally:
        net.stack = None
        if saved is None:
            sys.modules.pop(net.CONFIG_MODULE, None)
        else:
            sys.modules[net.CONFIG_MODULE] = saved
