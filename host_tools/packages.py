"""The components tcpip ships as, packaged the way micropython-lib packages its libraries.

    packages/<name>/manifest.py    metadata(version=...), require() of the components it needs,
                                   package()/module() of its own files: MicroPython's manifest
                                   language (tools/manifestfile.py). A firmware build freezes them
                                   with require() (firmware/manifest.py); `python -m host_tools
                                   build` reads them here to lay out a board's bundle.
    packages/<name>/package.json   its mip package, generated from the manifest: "urls" (its own
                                   files) and "deps" (the components it requires), as
                                   micropython-lib's tools/build.py makes them from a manifest.
    package.json                   every component at once (relative URLs, no deps): `mip install
                                   github:OWNER/REPO`, or ./package.json from a clone.

The base package `tcpip` is the stack; the others extend its namespace (tcpip/dhcp.py,
tcpip/drivers/w5500.py, ...), as micropython-lib's lora-sx127x extends `lora`.

mip follows a dependency only by a full URL (a name would be looked up in micropython-lib's index),
so a component's package.json names the repository it is published from: MIP_REPO, with its own
files and its deps under it (`mip.install("github:OWNER/REPO/packages/tcpip-w5500")` fetches the
driver, then packages/tcpip/package.json and the core). A fork regenerates them for its own name:
`python -m host_tools build --write-package-json --mip-repo github:ME/tcpip`.
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = os.path.join(ROOT, "packages")
ROOT_PACKAGE_JSON = os.path.join(ROOT, "package.json")
MIP_REPO = "github:OWNER/REPO"  # where the repository is published: the component packages' URLs
DEP_VERSION = "HEAD"            # the branch mip fetches a dependency from (its default branch)
NET = "tcpip-net"               # what a board runs: the REPL helpers and all they need


class ManifestError(Exception):
    pass


class Component:
    """One packages/<name>/manifest.py: name, version, description, requires (component names, in
    order), files ([(source path, path under the board's /lib)], in order)."""

    def __init__(self, name, manifest):
        self.name = name
        self.manifest = manifest
        self.version = None
        self.description = None
        self.requires = []
        self.files = []

    def dests(self):
        return [d for _, d in self.files]

    def __repr__(self):
        return "Component(%r, requires=%r, %d files)" % (self.name, self.requires, len(self.files))


def _evaluate(name, manifest):
    """Run a component manifest with the parts of MicroPython's manifest API a component uses
    (tools/manifestfile.py in compile mode: metadata() first; package(files=None) takes every .py
    below the package; paths relative to the manifest's folder)."""
    comp = Component(name, manifest)
    here = os.path.dirname(manifest)
    seen_metadata = []

    def need_metadata(what):
        if not seen_metadata:
            raise ManifestError("%s: metadata() must come before %s()" % (manifest, what))

    def metadata(description=None, version=None, license=None, author=None, **kw):
        if seen_metadata:
            raise ManifestError("%s: metadata() twice" % manifest)
        seen_metadata.append(True)
        comp.description = description
        comp.version = version

    def require(req, version=None, **kw):
        need_metadata("require")
        comp.requires.append(req)

    def add(src, dest):
        if not os.path.isfile(src):
            raise ManifestError("%s: no file %s" % (manifest, os.path.relpath(src, ROOT)))
        comp.files.append((src, dest))

    def package(package_path, files=None, base_path=".", opt=None):
        need_metadata("package")
        base = os.path.normpath(os.path.join(here, base_path))
        if files is None:
            top = os.path.join(base, package_path)
            found = []
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for fn in filenames:
                    if fn.endswith(".py"):
                        found.append(os.path.relpath(os.path.join(dirpath, fn), base).replace(os.sep, "/"))
            if not found:
                raise ManifestError("%s: package %s has no .py files" % (manifest, top))
            for rel in sorted(found):
                add(os.path.join(base, rel), rel)
        else:
            for f in files:
                rel = package_path + "/" + f
                add(os.path.join(base, rel), rel)

    def module(module_path, base_path=".", opt=None):
        need_metadata("module")
        if not module_path.endswith(".py"):
            raise ManifestError("%s: module must be a .py file: %s" % (manifest, module_path))
        add(os.path.normpath(os.path.join(here, base_path, module_path)), module_path)

    def unused(*args, **kw):
        raise ManifestError("%s: a component manifest uses metadata, require, package and module only"
                            % manifest)

    scope = {"metadata": metadata, "require": require, "package": package, "module": module,
             "include": unused, "add_library": unused, "freeze": unused, "c_module": unused}
    with open(manifest) as f:
        exec(compile(f.read(), manifest, "exec"), scope)
    if not seen_metadata:
        raise ManifestError("%s: no metadata()" % manifest)
    return comp


def components(packages=PACKAGES):
    """{name: Component} for every packages/<name>/manifest.py, in name order."""
    out = {}
    for name in sorted(os.listdir(packages)):
        manifest = os.path.join(packages, name, "manifest.py")
        if os.path.isfile(manifest):
            out[name] = _evaluate(name, manifest)
    return out


def closure(names, comps):
    """The components `names` need, each after the ones it requires (depth first), no repeats."""
    out = []

    def visit(name, path):
        if name in out:
            return
        if name in path:
            raise ManifestError("require() cycle: %s" % " -> ".join(path + [name]))
        if name not in comps:
            raise ManifestError("%s requires %r, which is no component (packages/ has: %s)" % (
                path[-1] if path else "the build", name, ", ".join(comps)))
        for req in comps[name].requires:
            visit(req, path + [name])
        out.append(name)

    for n in names:
        visit(n, [])
    return out


def owners(comps):
    """{path under /lib: component name}; ManifestError when two components ship one path."""
    out = {}
    for c in comps.values():
        for dest in c.dests():
            if dest in out:
                raise ManifestError("%s is in two components: %s and %s" % (dest, out[dest], c.name))
            out[dest] = c.name
    return out


def driver_component(chip, comps):
    """The component holding the driver tcpip.board opens for CHIP (tcpip.board.CHIPS)."""
    from tcpip.board import CHIPS

    if chip not in CHIPS:
        raise ManifestError("no driver for CHIP %r; drivers exist for: %s" % (chip, ", ".join(sorted(CHIPS))))
    dest = CHIPS[chip][0].replace(".", "/") + ".py"
    owner = owners(comps).get(dest)
    if owner is None:
        raise ManifestError("no component ships %s (the %s driver)" % (dest, chip))
    return owner


def board_components(chip, comps):
    """What a board with this CHIP runs: the REPL helpers (and what they require) and its driver."""
    return closure([NET, driver_component(chip, comps)], comps)


# -- mip -----------------------------------------------------------------------------------------
def package_json(comp, repo=MIP_REPO):
    """The mip package of one component: its files and its deps by URL under repo."""
    repo = repo.rstrip("/")
    urls = [[dest, "%s/%s" % (repo, os.path.relpath(src, ROOT).replace(os.sep, "/"))]
            for src, dest in comp.files]
    deps = [["%s/packages/%s" % (repo, req), DEP_VERSION] for req in comp.requires]
    return {"urls": urls, "deps": deps, "version": comp.version}


def root_package_json(comps):
    """Every component's files in one package, URLs relative to the repository's root (where this
    package.json is): what `mip install github:OWNER/REPO` installs, from any fork or clone."""
    urls = []
    versions = set()
    for name in closure(list(comps), comps):
        versions.add(comps[name].version)
        for src, dest in comps[name].files:
            urls.append([dest, os.path.relpath(src, ROOT).replace(os.sep, "/")])
    if len(versions) != 1:
        raise ManifestError("the components' versions differ: %s" % ", ".join(sorted(map(str, versions))))
    return {"urls": urls, "deps": [], "version": versions.pop()}


def json_text(d):
    """A package.json as committed: one [dest, source] pair per line."""
    def block(items):
        if not items:
            return "[]"
        return "[\n%s\n  ]" % ",\n".join("    " + json.dumps(u) for u in items)

    return '{\n  "urls": %s,\n  "deps": %s,\n  "version": %s\n}\n' % (
        block(d["urls"]), block(d["deps"]), json.dumps(d["version"]))


def package_json_files(comps, repo=MIP_REPO):
    """{path: text} of every package.json this repository holds."""
    out = {ROOT_PACKAGE_JSON: json_text(root_package_json(comps))}
    for c in comps.values():
        out[os.path.join(os.path.dirname(c.manifest), "package.json")] = json_text(package_json(c, repo))
    return out


def write_package_jsons(comps, repo=MIP_REPO):
    """Write them; returns the paths written."""
    files = package_json_files(comps, repo)
    for path, text in files.items():
        with open(path, "w") as f:
            f.write(text)
    return sorted(files)
