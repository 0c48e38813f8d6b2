"""Importing ipvs_py uses the compiled core, or says how to build it."""
import os
import subprocess
import sys

BLOCK_CORE = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "ipvs_py._core.hashing":
            raise ImportError("No module named 'ipvs_py._core.hashing'")
sys.meta_path.insert(0, Block())
try:
    import ipvs_py
except ImportError as exc:
    print("IMPORT-ERROR:", exc)
else:
    print("IMPORTED", ipvs_py.hashing.__name__)
"""


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


def test_missing_core_is_an_import_error_naming_the_fix():
    proc = _run(BLOCK_CORE)
    assert "IMPORT-ERROR:" in proc.stdout, proc.stdout + proc.stderr
    assert "pip install -e ." in proc.stdout
    assert "_pyref" not in proc.stdout      # no silent fallback


def test_pure_switch_selects_the_reference_on_purpose():
    proc = _run("import ipvs_py; print(ipvs_py.hashing.__name__)",
                IPVS_PY_PURE="1")
    assert proc.stdout.strip() == "ipvs_py._core._pyref"


def test_default_import_is_compiled():
    proc = _run("import ipvs_py; print(ipvs_py.hashing.__file__)")
    assert proc.stdout.strip().endswith(".so")
