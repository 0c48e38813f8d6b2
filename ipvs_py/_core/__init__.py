"""The compiled core of ipvs_py.

The Cython extensions live here.  They must be built: importing ipvs_py
without them raises an ImportError that says how to build them, rather than
silently running the pure-Python reference (``_pyref``), which exists for
the tests.  ``IPVS_PY_PURE=1`` selects the reference on purpose, for
debugging only.
"""
import importlib
import os

_BUILD_HINT = (
    "the ipvs_py core extensions are not built; run `pip install -e .` "
    "(or `python setup.py build_ext --inplace`) in the source tree"
)


def load(name):
    """Import the compiled core module ``name`` (or the reference if pure)."""
    if os.environ.get("IPVS_PY_PURE", "") not in ("", "0"):
        from . import _pyref    # one module mirrors every core module
        return _pyref
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise ImportError(f"{_BUILD_HINT} ({exc})") from exc


def is_compiled(module):
    """True when ``module`` is a compiled extension, not the Python reference."""
    return getattr(module, "__file__", "").endswith((".so", ".pyd"))
