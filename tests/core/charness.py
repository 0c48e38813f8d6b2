"""Build a tests/core/c/*.c pthread harness into a ctypes library with
setup.py's flags (bench/_cbuild.py), plus ASan + UBSan when the suite runs
under scripts/asan-test.sh (libasan preloaded)."""
import ctypes
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
C_DIR = pathlib.Path(__file__).resolve().parent / "c"


def build(name):
    """Compile ``c/<name>.c``; return the loaded ctypes.CDLL."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import _cbuild
    finally:
        sys.path.pop(0)
    flags = _cbuild.compile_flags()
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=undefined", "-O1", "-g"]
    out = pathlib.Path(tempfile.mkdtemp(prefix=f"ipvs-{name}-")) / "h.so"
    subprocess.run(["gcc", *flags, "-fPIC", "-shared", "-pthread",
                    f"-I{_cbuild.INCLUDE}", str(C_DIR / f"{name}.c"),
                    "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


def stress_entry(name, fn):
    """Build ``c/<name>.c`` and return its entry point ``fn`` of the shape
    the stress harnesses share: ``int fn(int, int, int, int, uint64_t seed,
    uint64_t *out)`` (0 or a negative error; results in ``out``)."""
    f = getattr(build(name), fn)
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_int] * 4 + [ctypes.c_uint64,
                                       ctypes.POINTER(ctypes.c_uint64)]
    return f
