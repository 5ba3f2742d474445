# Runs "dual" test modules (plain functions named test_*, bare asserts) under the MicroPython
# unix port: micropython tests/mprun.py tests/host/test_wire.py [...]
# Prints one line per failure and closes with "N passed, N failed".
import sys

try:
    import traceback  # CPython only; MicroPython uses sys.print_exception
except ImportError:
    traceback = None


def _module_name(path):
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".py"):
        name = name[:-3]
    return name


def run(paths):
    passed = 0
    failed = 0
    for path in paths:
        if "/" in path:
            folder = path.rsplit("/", 1)[0]
            if folder not in sys.path:
                sys.path.insert(0, folder)
        mod = __import__(_module_name(path))
        names = sorted(n for n in dir(mod) if n.startswith("test_"))
        for name in names:
            fn = getattr(mod, name)
            try:
                fn()
                passed += 1
            except Exception as exc:  # report and go on with the next test
                failed += 1
                print("FAIL", path, name)
                if traceback is None:
                    sys.print_exception(exc)
                else:
                    traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(1 if run(sys.argv[1:]) else 0)
