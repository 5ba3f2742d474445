"""Run every benchmark and print their tables (`make bench`). Not a CI gate.

    python bench/run.py            # all
    python bench/run.py checksum   # one of: checksum, heap
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from host_tools.netns import micropython_binary  # noqa: E402


def run(title, argv, env=None):
    print("== %s" % title, flush=True)
    proc = subprocess.run(argv, cwd=ROOT, env=env, timeout=600)
    if proc.returncode:
        print("(exit %d)" % proc.returncode)
    print(flush=True)


def main(names):
    mp = micropython_binary()
    mp_env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "tests", "host"))
    if not names or "checksum" in names:
        run("checksum, MicroPython unix port", [mp, "bench/bench_checksum.py"], mp_env)
        run("checksum, CPython", [sys.executable, "bench/bench_checksum.py"])
    if not names or "heap" in names:
        run("heap per frame, MicroPython unix port", [mp, "-X", "heapsize=1M", "bench/bench_heap.py"], mp_env)


if __name__ == "__main__":
    main(sys.argv[1:])
