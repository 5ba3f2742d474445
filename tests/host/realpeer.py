"""What the tests against the real Linux kernel (in a private namespace) share: the environment
check that fails them (never skips them) with the missing piece named, and reproducible payloads."""
import hashlib
import os
import shutil

import pytest

from host_tools.netns import micropython_binary

TOOL_PACKAGES = {"ip": "iproute2", "ss": "iproute2", "tcpdump": "tcpdump", "ping": "iputils-ping"}


def missing_tool(tool):
    return "'%s' is not installed (Debian package %s)" % (tool, TOOL_PACKAGES[tool])


def require_environment(what, tools=("ip",), micropython=False):
    """pytest.fail (not skip) unless we are root with /dev/net/tun, the tools and, if asked, the
    MicroPython unix port."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces and TAP devices)")
    if not os.path.exists("/dev/net/tun"):
        problems.append("/dev/net/tun is missing (no TUN/TAP support)")
    for tool in tools:
        if not shutil.which(tool):
            problems.append(missing_tool(tool))
    if micropython:
        try:
            micropython_binary()
        except RuntimeError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("%s cannot run: %s" % (what, "; ".join(problems)), pytrace=False)


def payload(n, seed):
    """n reproducible pseudo-random bytes (sha256 counter mode: fast, no pattern TCP could hide)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


def sha(data):
    return hashlib.sha256(data).hexdigest()
