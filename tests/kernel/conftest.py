"""pytest glue for the real-kernel tests: one VM boot per test module.

A test module in tests/kernel/ declares what the guest does and asserts on the
files it wrote::

    import pytest
    pytestmark = pytest.mark.kernel_vm

    GUEST_SCRIPT = r'''
    modprobe ip_vs
    ipvsadm -A -t 10.0.0.1:80 -s rr
    ipvsadm -Ln > "$OUT/list.txt"
    '''
    # optional: GUEST_TIMEOUT = 900 (s); GUEST_ALLOW_FAIL = True to keep going
    # when the script exits non-zero; GUEST_SCRIPT may also be a callable
    # returning the script.

    def test_header(guest):               # `guest` is a vm.GuestResult
        assert guest.lines("list.txt")[0].startswith("IP Virtual Server")

The ``guest`` fixture is module-scoped: the script runs once, on the first test
that asks for it; every other test of the module reads the same files. If the
boot fails, every test of the module errors with the same message (pytest
caches a failed module fixture; it does not boot again).

* IPVS_PY_VM_SKIP=1: the tests skip, saying so.
* qemu / vng / kernel missing: the tests ERROR with the fix
  (``bash scripts/system-deps.sh vm``), never a silent skip.
* IPVS_PY_VM_KEEP=DIR: results go to DIR/<module name>/ instead of pytest's
  tmp dir; with IPVS_PY_VM_REUSE=1 too, a result left there by the same
  script is reused without booting (fast iteration on assertions).

The terminal summary lists each boot's time.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

_HERE = pathlib.Path(__file__).resolve().parent
if __package__:  # tests/kernel is a package (tests/__init__.py exists)
    from . import vm
else:  # rootless collection: import the sibling file directly
    if str(_HERE) not in sys.path:
        sys.path.insert(0, str(_HERE))
    import vm  # noqa: E402  (tests/kernel/vm.py)

_BOOTS: list[tuple[str, vm.GuestResult, bool]] = []


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kernel_vm: boots Debian's kernel in a qemu VM (slow; IPVS_PY_VM_SKIP=1 skips)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # every test under tests/kernel/ is a kernel_vm test, marked or not
    for item in items:
        try:
            p = pathlib.Path(str(item.fspath)).resolve()
        except OSError:
            continue
        if _HERE in p.parents:
            item.add_marker(pytest.mark.kernel_vm)


def _module_script(module) -> str:
    script = getattr(module, "GUEST_SCRIPT", None)
    if script is None:
        raise pytest.UsageError(f"{module.__name__} uses the `guest` fixture but defines no GUEST_SCRIPT")
    return script() if callable(script) else script


@pytest.fixture(scope="module")
def guest(request, tmp_path_factory) -> vm.GuestResult:
    """Boot once for this module, run its GUEST_SCRIPT, return the GuestResult."""
    reason = vm.skip_reason()
    if reason:
        pytest.skip(reason)
    module = request.module
    script = _module_script(module)
    name = module.__name__.rsplit(".", 1)[-1]
    keep = os.environ.get("IPVS_PY_VM_KEEP")
    if keep:
        outdir = pathlib.Path(keep).resolve() / name
    else:
        outdir = tmp_path_factory.mktemp(f"vm-{name}", numbered=True)

    res = None
    reused = False
    if keep and os.environ.get("IPVS_PY_VM_REUSE", "") not in ("", "0"):
        res = vm.load_result(outdir, script)
        reused = res is not None
    if res is None:
        # KernelVMUnavailable / GuestTimeout propagate: the tests ERROR
        res = vm.run_guest(script, timeout=getattr(module, "GUEST_TIMEOUT", 900), outdir=outdir)
    _BOOTS.append((module.__name__, res, reused))
    if res.returncode != 0 and not getattr(module, "GUEST_ALLOW_FAIL", False):
        pytest.fail(f"guest script of {module.__name__} exited {res.returncode}; results in {outdir}\n"
                    + res.tail(), pytrace=False)
    return res


def pytest_terminal_summary(terminalreporter):
    if not _BOOTS:
        return
    tr = terminalreporter
    tr.section("kernel VM boots")
    for name, res, reused in _BOOTS:
        boot = "?" if res.boot_seconds is None else f"{res.boot_seconds:.1f}s"
        how = " (reused, no boot)" if reused else ""
        tr.write_line(f"{name}: rc={res.returncode} boot={boot} wall={res.wall_seconds:.1f}s "
                      f"out={res.outdir}{how}")
