"""The repository stands on its own: no file cites notes outside it or a path that exists only on
the developers' machines, and every docs/*.md section a file cites by name is there. CPython only
(reads the files git tracks or would track, or the tree when there is no git).

What a file may not contain:
  a REFERENCE.md that is not docs/REFERENCE.md   (the project's facts live in docs/REFERENCE.md)
  ../shared/... or any path through /work/       (notes and tools next to the checkout)
  /home/NAME, /root/..., /Users/NAME             (someone's home directory)
Developer tooling outside the repository is named by an option or environment variable instead
(bench/bench_rp2040.py: --kit DIR or RP2EMU=DIR).

A citation of a section is docs/NAME.md followed by the section's name in double quotes (after a
comma or an opening parenthesis, or a space); the name must begin a heading of that file or a
bold lead-in (`- **Rings.** ...`).
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SELF = os.path.relpath(os.path.abspath(__file__), ROOT)
SKIP_DIRS = {".git", ".venv", ".hypothesis", ".pytest_cache", "__pycache__", "build"}

# built from pieces so that this file does not match its own patterns
FORBIDDEN = [
    ("notes outside the repository", re.compile(r"(?<!docs/)\bREFERENCE" + r"\.md")),
    ("a path next to the checkout", re.compile(r"(?:\.\./)+" + "shared" + r"/")),
    ("a machine-specific path", re.compile(r"(?<![\w.~$-])/" + "work" + r"/")),
    ("a home directory", re.compile(r"(?<![\w.~$-])/(?:home|Users)/[A-Za-z_][\w.-]*"
                                    + r"|(?<![\w.~$-])/" + "root" + r"/")),
]
CITATION = re.compile(r"docs/([A-Z_]+\.md)(?:,|\s*\(|)\s*\"([^\"]{1,80})\"")


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True, timeout=30).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
        for d, dirs, files in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
            names += [os.path.relpath(os.path.join(d, f), ROOT) for f in files]
    return sorted(n for n in names if os.path.isfile(os.path.join(ROOT, n)))


def read_text(rel):
    with open(os.path.join(ROOT, rel), "rb") as fh:
        data = fh.read()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


FILES = [(rel, text) for rel in tracked_files() for text in [read_text(rel)] if text is not None]


def test_the_file_list_is_the_repository():
    names = {rel for rel, _ in FILES}
    assert {"README.md", "docs/ARCHITECTURE.md", "docs/REFERENCE.md", SELF} <= names


def test_no_file_points_outside_the_repository():
    found = []
    for rel, text in FILES:
        if rel == SELF:
            continue
        for what, pattern in FORBIDDEN:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append("%s:%d: %s (%r)" % (rel, line, what, m.group(0)))
    assert not found, "\n".join(found)


def sections(doc):
    """The names a citation of doc may use: its headings (without '#' and a leading '6a.') and its
    bold lead-ins, whitespace normalised."""
    with open(os.path.join(ROOT, "docs", doc)) as fh:
        text = fh.read()
    names = [re.sub(r"^#+\s*(?:\d+[a-z]?\.\s+)?", "", h) for h in re.findall(r"^#+ .*$", text, re.M)]
    names += re.findall(r"^\s*[-*]?\s*\*\*([^*]+)\*\*", text, re.M)
    return [" ".join(n.split()) for n in names]


def citations(text):
    """(doc, section) for each cited section; a name broken over comment lines is joined."""
    flat = re.sub(r"\n[ \t]*(?:#+|//|\*)?[ \t]*", " ", text)
    return [(doc, " ".join(name.split())) for doc, name in CITATION.findall(flat)]


def test_citations_name_sections_that_exist():
    docs = {}
    missing = []
    for rel, text in FILES:
        if rel == SELF:
            continue  # its examples below
        for doc, name in citations(text):
            if doc not in docs:
                path = os.path.join(ROOT, "docs", doc)
                docs[doc] = sections(doc) if os.path.isfile(path) else None
            if docs[doc] is None:
                missing.append("%s: docs/%s does not exist" % (rel, doc))
            elif not any(s.startswith(name) for s in docs[doc]):
                missing.append('%s: docs/%s has no section "%s"' % (rel, doc, name))
    assert not missing, "\n".join(sorted(set(missing)))


@pytest.mark.parametrize("text,expect", [
    ("see docs/BOARDS.md, \"Speed and memory\"", [("BOARDS.md", "Speed and memory")]),
    ("(docs/ARCHITECTURE.md (\"What things\n# cost\"))", [("ARCHITECTURE.md", "What things cost")]),
    ("docs/CLI.md \"Faults\" and docs/SOCKETS.md", [("CLI.md", "Faults")]),
])
def test_citations_are_found(text, expect):
    assert citations(text) == expect


@pytest.mark.parametrize("text,bad", [
    ("see " + "../" + "shared/" + "REFERENCE" + ".md", True),
    ("cites " + "REFERENCE" + ".md for it", True),
    ("docs/" + "REFERENCE" + ".md, \"Viper\"", False),
    ("# docs: /" + "work/shared common interfaces", True),
    ("kit in /" + "home/alice/rp2emu", True),
    ("HOME=/" + "root/ x", True),
    ("/tmp/up.bin /dev/ttyACM0 /usr/sbin/dnsmasq $RP2EMU/run.sh ~/.cache/x", False),
])
def test_patterns(text, bad):
    assert any(p.search(text) for _, p in FORBIDDEN) == bad
