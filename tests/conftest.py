"""Shared fixtures: every core test runs against both implementations.

``core`` is parametrised over the compiled Cython core ("c") and the pure
Python reference ("py"), the uvloop/multidict pattern: one test body, two
implementations, so the reference keeps the core honest and vice versa.
"""
import dataclasses
import types

import pytest

import ipvs_py
from ipvs_py._core import _pyref, is_compiled


@dataclasses.dataclass(frozen=True)
class CoreImpl:
    """One implementation of the core under test."""

    tag: str
    hashing: types.ModuleType
    table: types.ModuleType     # Table, desired_size, thresholds, ...

    @property
    def is_pure_python(self):
        return self.tag == "py"


_IMPLS = {
    "c": CoreImpl("c", ipvs_py.hashing, ipvs_py.table),
    "py": CoreImpl("py", _pyref, _pyref),
}


@pytest.fixture(scope="session", params=sorted(_IMPLS), ids=lambda t: t)
def core(request):
    """The implementation under test: compiled core or pure reference."""
    return _IMPLS[request.param]


@pytest.fixture(scope="session")
def compiled_core():
    """The compiled core only (speed-dependent or C-specific tests)."""
    impl = _IMPLS["c"]
    assert is_compiled(impl.hashing), "compiled core did not load"
    return impl
