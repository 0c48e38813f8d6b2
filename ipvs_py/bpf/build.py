"""Compile the tc program with clang on first use, into a cache directory.

The object depends only on the C source, the flags and the compiler, so it
is cached under a name made from their hash: the first ``FastPath()`` of a
given source pays one clang run (~0.2 s), later ones reuse the file.
``python -m ipvs_py.bpf build`` compiles ahead of time (setup/CI step).

Debian packages: ``clang`` (any version with ``-mcpu=v3``, i.e. >= 12) and
``linux-libc-dev`` for the uapi headers.  Cache directory:
``$IPVS_PY_BPF_CACHE``, else ``$XDG_CACHE_HOME/ipvs_py/bpf``, else
``~/.cache/ipvs_py/bpf``.
"""
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import BpfBuildError

PROGS = Path(__file__).with_name("progs")
DEFAULT_SOURCE = PROGS / "ipvs_fastpath.c"
CFLAGS = ["-O2", "-g0", "-target", "bpf", "-mcpu=v3",
          "-Wall", "-Werror", "-Wno-unused-function"]


def cache_dir():
    """Where compiled objects are kept (created on demand)."""
    env = os.environ.get("IPVS_PY_BPF_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ipvs_py" / "bpf"


def _clang():
    cc = os.environ.get("IPVS_PY_BPF_CLANG") or shutil.which("clang")
    if not cc:
        raise BpfBuildError("clang not found: install Debian package 'clang' "
                            "(or set IPVS_PY_BPF_CLANG)")
    return cc


def _include_flags():
    # -target bpf drops the host's multiarch include dir, where Debian
    # keeps <asm/types.h> that the uapi headers include.
    multiarch = f"/usr/include/{platform.machine()}-linux-gnu"
    return ["-I", multiarch] if os.path.isdir(multiarch) else []


def compile_program(source=DEFAULT_SOURCE, out_dir=None):
    """Return the path of the compiled object for ``source``, building it
    if the cache has no object for this source/flags/compiler."""
    source = Path(source)
    cc = _clang()
    flags = CFLAGS + _include_flags()
    try:
        version = subprocess.run([cc, "--version"], capture_output=True,
                                 text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise BpfBuildError(f"{cc} --version failed: {e}") from e
    h = hashlib.sha256()
    for part in (source.read_bytes(), " ".join(flags).encode(), version.encode()):
        h.update(part)
        h.update(b"\0")
    out_dir = Path(out_dir) if out_dir else cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}-{h.hexdigest()[:16]}.bpf.o"
    if target.exists():
        return target
    # Compile to a temp name and rename: concurrent first uses (pytest -n)
    # never see a half-written object.
    fd, tmp = tempfile.mkstemp(suffix=".o", dir=out_dir)
    os.close(fd)
    cmd = [cc, *flags, "-c", str(source), "-o", tmp]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        if os.path.exists(tmp):   # clang removes it on some failures
            os.unlink(tmp)
        raise BpfBuildError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    os.replace(tmp, target)
    return target
