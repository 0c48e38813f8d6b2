"""Run bash scripts as root inside a throw-away VM on Debian's stock kernel.

The host kernel has no IPVS; Debian's ``linux-image-amd64`` (6.1) ships it as
modules. This module boots that kernel with virtme-ng (``vng``) under qemu's
TCG emulator (``--disable-kvm``: /dev/kvm on these machines cannot run a stock
kernel), runs one bash script as root in the guest and returns what it printed
plus whatever it wrote to ``$OUT``.

How the guest sees things
-------------------------
* The host's whole filesystem is the guest's root, read-only (9p); /tmp, /etc,
  /var, /usr, ... get writable overlays that vanish with the guest.
* ``outdir`` is shared read-write (``vng --rwdir``); the script finds its
  path in ``$OUT``. Files written there are on the host after the run.
* The script itself is written to a host temp file and exec'd by a small
  wrapper, which exports:

  ``OUT``        the shared, writable result directory
  ``REPO``       the checkout that holds this file (guest cwd too)
  ``PY``         the host interpreter that runs pytest (real path, not a
                 pyenv shim): same version, same site-packages, so compiled
                 extensions built for it import in the guest as well. The
                 guest's plain ``python3`` is Debian's /usr/bin/python3, a
                 different interpreter without the project's dependencies.
  ``PYTHONPATH`` ``$REPO`` prepended, so ``"$PY" -c "import ipvs_py"`` imports
                 this checkout (build extensions in place first:
                 ``python setup.py build_ext --inplace``).
  ``PATH``       the usual sbin/bin dirs plus the host Python's bin dir.

* No network device (``-net none``): test traffic lives in netns/veth/dummy
  interfaces inside the guest and cannot leave it.

Typical use (see tests/kernel/conftest.py for the one-boot-per-module
fixture)::

    from tests.kernel import vm
    res = vm.run_guest('modprobe ip_vs && ipvsadm -Ln > "$OUT/list.txt"')
    assert res.returncode == 0, res.tail()
    print((res.outdir / "list.txt").read_text())

Environment switches
--------------------
``IPVS_PY_VM_SKIP=1``  kernel tests skip (see :func:`skip_reason`).
``IPVS_PY_VM_KERNEL``  path of the kernel image to boot instead of the newest
                       /boot/vmlinuz-*.
``IPVS_PY_VM_TIMEOUT_SCALE``  multiply every timeout (slow or loaded hosts).

Install what this needs with ``bash scripts/system-deps.sh vm``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time

__all__ = [
    "GuestResult",
    "GuestTimeout",
    "KernelVMUnavailable",
    "find_kernel",
    "find_vng",
    "guest_env",
    "load_result",
    "run_guest",
    "skip_reason",
    "FIX_HINT",
    "REPO",
]

#: Root of the checkout this file belongs to (tests/kernel/vm.py -> ../..).
REPO = pathlib.Path(__file__).resolve().parents[2]

FIX_HINT = "run `bash scripts/system-deps.sh vm` (as root), or set IPVS_PY_VM_SKIP=1 to skip kernel tests"

# Where the wrapper keeps its own bookkeeping inside $OUT.
_HARNESS_DIR = ".harness"


class KernelVMUnavailable(RuntimeError):
    """qemu, vng/virtme-run or a kernel image is missing on the host."""


class GuestTimeout(RuntimeError):
    """The guest did not finish in time; it has been killed.

    ``stdout``/``stderr`` hold what it printed before that."""

    def __init__(self, msg: str, stdout: str = "", stderr: str = ""):
        super().__init__(msg)
        self.stdout = stdout
        self.stderr = stderr


@dataclasses.dataclass
class GuestResult:
    """Outcome of one boot.

    returncode    exit status of the script inside the guest (vng passes it
                  through; 255-ish values or missing marker files mean the
                  guest itself failed, see ``stderr``).
    stdout/stderr what the script (and vng) printed.
    outdir        host path of ``$OUT``.
    boot_seconds  host launch -> script start in the guest (qemu + kernel +
                  init), measured with the guest's clock (RTC-seeded; about
                  +-1 s); None when the script never started.
    wall_seconds  host launch -> vng exit.
    """

    returncode: int
    stdout: str
    stderr: str
    outdir: pathlib.Path
    boot_seconds: float | None
    wall_seconds: float

    def tail(self, lines: int = 40) -> str:
        """The last lines of stdout and stderr, for assertion messages."""
        return _tail(self.stdout, self.stderr, lines)

    def path(self, name: str) -> pathlib.Path:
        """Host path of ``$OUT/name``."""
        return self.outdir / name

    def text(self, name: str) -> str:
        """Contents of ``$OUT/name``; AssertionError (with the guest's output
        tail) when the script did not write it."""
        p = self.outdir / name
        if not p.is_file():
            raise AssertionError(f"guest wrote no {name} (rc={self.returncode})\n" + self.tail())
        return p.read_text(errors="replace")

    def lines(self, name: str) -> list[str]:
        """``text(name).splitlines()``."""
        return self.text(name).splitlines()


def _tail(stdout: str, stderr: str, lines: int = 40) -> str:
    def t(s: str) -> str:
        return "\n".join(s.splitlines()[-lines:])

    return f"--- guest stdout (tail) ---\n{t(stdout)}\n--- guest stderr (tail) ---\n{t(stderr)}"


def skip_reason() -> str | None:
    """A reason string when kernel tests must be skipped (IPVS_PY_VM_SKIP set
    to anything but ''/0), else None. A missing qemu/kernel is *not* a skip
    reason: callers should let :class:`KernelVMUnavailable` error out."""
    v = os.environ.get("IPVS_PY_VM_SKIP", "")
    if v not in ("", "0"):
        return f"IPVS_PY_VM_SKIP={v}: real-kernel VM tests disabled"
    return None


def _bin_dirs() -> list[str]:
    """Directories where pip puts console scripts for the running Python."""
    dirs = []
    for d in (sysconfig.get_path("scripts"), os.path.dirname(os.path.realpath(sys.executable)),
              os.path.dirname(sys.executable)):
        if d and d not in dirs:
            dirs.append(d)
    return dirs


def _host_path() -> str:
    """PATH for vng: the caller's PATH plus the Python bin dirs (vng execs
    ``virtme-run`` by name) and the sbin dirs."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for d in _bin_dirs() + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]:
        if d not in parts:
            parts.append(d)
    return os.pathsep.join(p for p in parts if p)


def _version_key(path: pathlib.Path):
    # vmlinuz-6.1.0-56-amd64 -> (6, 1, 0, 56, ...) ; non-numeric parts sort low
    ver = path.name.split("-", 1)[1] if "-" in path.name else ""
    return [int(x) if x.isdigit() else -1 for x in re.split(r"[.\-+~]", ver)]


def find_kernel() -> pathlib.Path:
    """Path of the kernel image to boot: ``$IPVS_PY_VM_KERNEL`` if set, else
    the newest Debian ``/boot/vmlinuz-*``. Raises KernelVMUnavailable."""
    env = os.environ.get("IPVS_PY_VM_KERNEL")
    if env:
        p = pathlib.Path(env)
        if not p.is_file():
            raise KernelVMUnavailable(f"IPVS_PY_VM_KERNEL={env} is not a file")
        return p
    cands = [p for p in pathlib.Path("/boot").glob("vmlinuz-*") if p.is_file()]
    if not cands:
        raise KernelVMUnavailable(
            "no kernel image /boot/vmlinuz-* (Debian package linux-image-amd64); " + FIX_HINT
        )
    cands.sort(key=_version_key)
    k = cands[-1]
    if not os.access(k, os.R_OK):
        raise KernelVMUnavailable(f"{k} is not readable by this user; " + FIX_HINT)
    return k


def find_vng() -> str:
    """Absolute path of ``vng``, after checking that ``virtme-run`` and
    ``qemu-system-x86_64`` are findable too. Raises KernelVMUnavailable."""
    path = _host_path()
    missing = []
    found = {}
    for tool in ("vng", "virtme-run", "qemu-system-x86_64"):
        w = shutil.which(tool, path=path)
        if w is None:
            missing.append(tool)
        found[tool] = w
    if missing:
        raise KernelVMUnavailable(f"missing on the host: {', '.join(missing)}; " + FIX_HINT)
    return found["vng"]


def guest_env(outdir: pathlib.Path | str) -> dict[str, str]:
    """The variables the wrapper exports in the guest (see module doc)."""
    py = os.path.realpath(sys.executable)
    return {
        "OUT": str(outdir),
        "REPO": str(REPO),
        "PY": py,
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",  # the repo is read-only in the guest
        "PATH": ":".join(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
                          os.path.dirname(py)]),
        "LC_ALL": "C",
    }


_WRAPPER = """\
#!/bin/bash
# generated by tests/kernel/vm.py: set up the environment, run the script
{exports}
mkdir -p "$OUT/{hd}"
date +%s.%N > "$OUT/{hd}/start"
cat /proc/uptime > "$OUT/{hd}/uptime"
cd "$REPO" || exit 120
bash {script}
rc=$?
echo "$rc" > "$OUT/{hd}/rc"
sync
exit "$rc"
"""


def run_guest(
    script: str,
    *,
    timeout: float = 900,
    outdir: pathlib.Path | None = None,
    cpus: int = 2,
    memory: str = "1G",
    extra_vng_args: list[str] | tuple[str, ...] = (),
) -> GuestResult:
    """Boot the kernel, run ``script`` with bash as root in the guest, return.

    script    bash source; runs with cwd ``$REPO`` and the env of
              :func:`guest_env` (``$OUT``, ``$PY``, ``$REPO``, ...). No
              ``set -e`` is implied.
    timeout   seconds for the whole boot + script + shutdown (scaled by
              ``IPVS_PY_VM_TIMEOUT_SCALE``); past it qemu is killed and
              :class:`GuestTimeout` is raised with the output tail.
    outdir    host directory shared read-write as ``$OUT`` (created; a fresh
              temp dir when None; it is kept, the caller owns it).
    Never reads stdin (stdin is /dev/null) and needs no TTY.
    """
    kernel = find_kernel()
    vng = find_vng()
    if outdir is None:
        outdir = pathlib.Path(tempfile.mkdtemp(prefix="ipvs-vm-out-"))
    outdir = pathlib.Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    hd = outdir / _HARNESS_DIR
    if hd.exists():
        shutil.rmtree(hd)
    scale = float(os.environ.get("IPVS_PY_VM_TIMEOUT_SCALE", "1") or 1)
    timeout = timeout * scale

    # The script dir lives on the host; the guest sees it through the
    # read-only root (host /tmp shows through the guest's /tmp overlay).
    with tempfile.TemporaryDirectory(prefix="ipvs-vm-script-") as sdir:
        sdir = os.path.realpath(sdir)
        user = os.path.join(sdir, "script.sh")
        wrap = os.path.join(sdir, "wrapper.sh")
        with open(user, "w") as f:
            f.write(script)
        exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in guest_env(outdir).items())
        with open(wrap, "w") as f:
            f.write(_WRAPPER.format(exports=exports, hd=_HARNESS_DIR, script=shlex.quote(user)))
        os.chmod(wrap, 0o755)

        cmd = [
            vng, "--disable-kvm",
            "--cpus", str(cpus), "--memory", str(memory),
            "--run", str(kernel),
            "--rwdir", str(outdir),
            "--cwd", str(REPO),
            *extra_vng_args,
            "--exec", f"bash {shlex.quote(wrap)}",
        ]
        env = dict(os.environ, PATH=_host_path())
        t0_wall = time.time()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=str(REPO), start_new_session=True, text=True, errors="replace",
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            raise GuestTimeout(
                f"guest did not finish within {timeout:.0f} s (kernel {kernel}); killed\n"
                + _tail(out or "", err or ""),
                out or "", err or "",
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
        wall = time.monotonic() - t0

    boot = None
    try:
        boot = float((hd / "start").read_text().split()[0]) - t0_wall
    except (OSError, ValueError, IndexError):
        pass
    res = GuestResult(proc.returncode, out, err, outdir, boot, wall)
    _save_result(res, script)
    return res


def script_digest(script: str) -> str:
    import hashlib

    return hashlib.sha256(script.encode()).hexdigest()


def _save_result(res: GuestResult, script: str) -> None:
    hd = res.outdir / _HARNESS_DIR
    hd.mkdir(exist_ok=True)
    (hd / "stdout").write_text(res.stdout)
    (hd / "stderr").write_text(res.stderr)
    (hd / "script.sh").write_text(script)
    import json

    (hd / "result.json").write_text(json.dumps({
        "returncode": res.returncode, "boot_seconds": res.boot_seconds,
        "wall_seconds": res.wall_seconds, "script_sha256": script_digest(script),
        "kernel": str(find_kernel()),
    }, indent=1))


def load_result(outdir: pathlib.Path, script: str | None = None) -> GuestResult | None:
    """The GuestResult a previous :func:`run_guest` left in ``outdir``, or
    None when there is none (or, with ``script``, when it ran another
    script). Lets a test writer iterate on assertions without rebooting
    (conftest's IPVS_PY_VM_REUSE)."""
    import json

    hd = pathlib.Path(outdir) / _HARNESS_DIR
    try:
        meta = json.loads((hd / "result.json").read_text())
        if script is not None and meta.get("script_sha256") != script_digest(script):
            return None
        return GuestResult(meta["returncode"], (hd / "stdout").read_text(), (hd / "stderr").read_text(),
                           pathlib.Path(outdir), meta.get("boot_seconds"), meta.get("wall_seconds", 0.0))
    except (OSError, ValueError, KeyError):
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    """End vng and the qemu it started: they run in their own session, whose
    process group id is vng's pid (nothing else is in that group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # qemu may outlive vng
    except ProcessLookupError:
        pass
    proc.wait()


def _main(argv: list[str]) -> int:
    """``python tests/kernel/vm.py [-o OUTDIR] [-t TIMEOUT] SCRIPT`` (or SCRIPT
    on stdin when it is '-'): run it in the guest, print its output, timings
    and the result dir; exit with the guest's status."""
    import argparse

    ap = argparse.ArgumentParser(description="run a bash script as root in a Debian-kernel VM")
    ap.add_argument("script", help="bash source, or - to read it from stdin")
    ap.add_argument("-o", "--outdir", type=pathlib.Path)
    ap.add_argument("-t", "--timeout", type=float, default=900)
    a = ap.parse_args(argv)
    src = sys.stdin.read() if a.script == "-" else a.script
    r = run_guest(src, timeout=a.timeout, outdir=a.outdir)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    boot = "?" if r.boot_seconds is None else f"{r.boot_seconds:.1f}"
    print(f"[vm] rc={r.returncode} boot={boot}s wall={r.wall_seconds:.1f}s out={r.outdir}", file=sys.stderr)
    return r.returncode


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
