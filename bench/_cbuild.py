"""Compile a bench/c/*.c baseline with the flags the extensions get.

The flags come from setup.py's own ``_compile_args`` plus the interpreter's
CFLAGS (what setuptools adds), so "plain C loop" and "Cython batch" are
compiled alike and their ratio isolates the wrapper's cost.
"""
import ctypes
import os
import pathlib
import subprocess
import sysconfig
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "ipvs_py" / "_core" / "include"


def compile_flags():
    """Optimisation flags shared with setup.py (-O3 -DNDEBUG -std=gnu11...)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ipvs_setup_flags", ROOT / "setup.py")
    src = (ROOT / "setup.py").read_text()
    # Execute only the flag helpers, not setup() itself.
    namespace = {"__file__": str(ROOT / "setup.py"), "os": os}
    head = src.split("def extensions():")[0]
    head = "\n".join(line for line in head.splitlines()
                     if not line.startswith(("from Cython", "from setuptools")))
    exec(compile(head, str(ROOT / "setup.py"), "exec"), namespace)  # noqa: S102
    cflags, _, macros = namespace["_compile_args"]()
    del spec
    base = sysconfig.get_config_var("CFLAGS") or ""
    return base.split() + cflags + [f"-D{k}={v}" for k, v in macros]


def load(name):
    """Build bench/c/<name>.c into a temporary shared library; return ctypes.CDLL."""
    src = ROOT / "bench" / "c" / f"{name}.c"
    out = pathlib.Path(tempfile.mkdtemp(prefix="ipvs-bench-")) / f"{name}.so"
    cmd = ["gcc", *compile_flags(), "-fPIC", "-shared", f"-I{INCLUDE}",
           str(src), "-o", str(out)]
    subprocess.run(cmd, check=True)
    return ctypes.CDLL(str(out))
