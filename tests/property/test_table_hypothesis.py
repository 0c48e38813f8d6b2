"""Stateful property test of the resizable table (Hypothesis).

A ``RuleBasedStateMachine`` drives the compiled table and the pure
reference against a dict-of-lists model plus the kernel's sizing rules
(transcribed in tests/core/test_table_sizing.py): insert (duplicates),
remove, lookup/lookup_all, batch lookup, lfactor change, forced resize,
the periodic shrink check.  After every step: same length, same contents,
and the table has exactly the size and thresholds the kernel would have.
One machine per (implementation, profile, auto_resize).
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine, initialize, invariant, rule)

import ipvs_py  # noqa: E402
from ipvs_py._core import _pyref  # noqa: E402

from tests.core.test_table_sizing import (  # noqa: E402
    kernel_desired, kernel_thresholds)

MIN_BITS, MAX_BITS = 2, 8
KEYS = [i.to_bytes(8, "little") for i in range(48)]
key_st = st.sampled_from(KEYS)


def make_machine(impl, profile, auto):
    class TableMachine(RuleBasedStateMachine):
        """Table vs dict-of-lists and the kernel sizing rules."""

        @initialize(lfactor=st.integers(-8, 8))
        def start(self, lfactor):
            self.t = impl.Table(MIN_BITS, MAX_BITS, lfactor, key_size=8,
                                profile=profile, auto_resize=auto)
            self.model = {}
            self.count = 0
            self.lf = self.tlf = lfactor
            self.size = 1 << MIN_BITS
            self.pending = False

        # ---- the kernel's resize work, on the model
        def _work(self):
            self.pending = False
            new = kernel_desired(self.size, self.tlf, self.count, self.lf,
                                 MIN_BITS, MAX_BITS)
            if new != self.size or self.lf != self.tlf:
                self.size, self.tlf = new, self.lf

        def _request(self):
            self.pending = True
            if auto:
                self._work()

        def _thresh(self):
            return kernel_thresholds(self.size, self.tlf, MIN_BITS,
                                     MAX_BITS)

        @rule(key=key_st, value=st.integers(0, 2**64 - 1))
        def insert(self, key, value):
            self.t.insert(key, value)
            self.model.setdefault(key, []).append(value)
            self.count += 1
            if self.count > self._thresh()[0]:
                self._request()

        @rule(key=key_st)
        def remove(self, key):
            if self.model.get(key):
                v = self.t.remove(key)
                assert v in self.model[key]
                self.model[key].remove(v)
                self.count -= 1
                if profile == "svc" and self.count <= self._thresh()[1]:
                    self._request()
            else:
                with pytest.raises(KeyError):
                    self.t.remove(key)

        @rule(key=key_st)
        def lookup(self, key):
            vals = self.model.get(key, [])
            got = self.t.lookup(key)
            assert (got is None) if not vals else (got in vals)
            assert sorted(self.t.lookup_all(key)) == sorted(vals)

        @rule()
        def batch(self):
            values, found = self.t.lookup_batch(b"".join(KEYS))
            for i, key in enumerate(KEYS):
                vals = self.model.get(key, [])
                assert bool(found[i]) == bool(vals)
                if vals:
                    assert int(values[i]) in vals

        @rule(lf=st.integers(-8, 8))
        def set_lfactor(self, lf):
            self.t.lfactor = lf
            self.lf = lf
            self._work()                 # the sysctl write kicks the work

        @rule(bits=st.integers(MIN_BITS, MAX_BITS))
        def resize_to(self, bits):
            self.t.resize_to(bits)
            self.size, self.tlf = 1 << bits, self.lf

        @rule()
        def periodic_check(self):
            self.t.maybe_resize()
            self._work()

        @invariant()
        def agrees(self):
            if not hasattr(self, "t"):
                return
            assert len(self.t) == self.count
            assert self.t.size == self.size
            assert self.t.table_lfactor == self.tlf
            assert (self.t.u_thresh, self.t.l_thresh) == self._thresh()
            assert self.t.resize_pending == (self.pending and not auto)

        def teardown(self):
            if hasattr(self, "t"):
                got = sorted(self.t.items())
                want = sorted((k, v) for k, vs in self.model.items()
                              for v in vs)
                assert got == want

    TableMachine.__name__ = f"TableMachine_{impl.__name__}_{profile}_{auto}"
    return TableMachine


IMPLS = {"c": ipvs_py.table, "py": _pyref}


@pytest.mark.parametrize("auto", [True, False], ids=["auto", "manual"])
@pytest.mark.parametrize("profile", ["conn", "svc"])
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_table_state_machine(impl, profile, auto):
    machine = make_machine(IMPLS[impl], profile, auto)
    n = 60 if impl == "c" else 25
    hypothesis.stateful.run_state_machine_as_test(
        machine, settings=settings(max_examples=n, stateful_step_count=60,
                                   deadline=None))
