"""Property tests of the hash functions (Hypothesis).

Kept apart from tests/core so the vector tests run without Hypothesis.
Checks: siphash over random keys and data equals the independent
``siphash24`` package; word forms equal the byte form over the same
little-endian bytes; the compiled core equals ``_pyref`` everywhere.
"""
import struct

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
siphash24 = pytest.importorskip("siphash24")
from hypothesis import example, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py._core import _pyref  # noqa: E402

C = ipvs_py.hashing
keys = st.binary(min_size=16, max_size=16)
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)


def package_siphash(data, key):
    return int.from_bytes(siphash24.siphash24(data, key=key).digest(), "little")


@given(data=st.binary(max_size=200), key=keys)
@example(data=b"", key=bytes(16))
@example(data=bytes(range(63)), key=bytes(range(16)))
def test_siphash_equals_siphash24_package(core, data, key):
    assert core.hashing.siphash(data, key) == package_siphash(data, key)


@given(words=st.lists(u64, min_size=1, max_size=4), key=keys)
def test_u64_word_forms_equal_bytes(core, words, key):
    h = core.hashing
    fn = [h.siphash_1u64, h.siphash_2u64, h.siphash_3u64, h.siphash_4u64]
    raw = struct.pack("<%dQ" % len(words), *words)
    note(f"raw={raw.hex()}")
    assert fn[len(words) - 1](*words, key) == package_siphash(raw, key)


@given(words=st.lists(u32, min_size=1, max_size=4), key=keys)
def test_u32_word_forms_equal_bytes(core, words, key):
    h = core.hashing
    raw = struct.pack("<%dI" % len(words), *words)
    sip = [h.siphash_1u32, h.siphash_2u32, h.siphash_3u32, h.siphash_4u32]
    hsip = [h.hsiphash_1u32, h.hsiphash_2u32, h.hsiphash_3u32, h.hsiphash_4u32]
    assert sip[len(words) - 1](*words, key) == package_siphash(raw, key)
    assert hsip[len(words) - 1](*words, key) == h.hsiphash(raw, key)


@given(data=st.binary(max_size=100), key=keys, iv=u32)
def test_compiled_equals_reference_bytes(data, key, iv):
    assert C.siphash(data, key) == _pyref.siphash(data, key)
    assert C.hsiphash(data, key) == _pyref.hsiphash(data, key)
    assert C.jhash(data, iv) == _pyref.jhash(data, iv)


@given(words=st.lists(u32, max_size=20), iv=u32)
def test_compiled_equals_reference_jhash2(words, iv):
    assert C.jhash2(words, iv) == _pyref.jhash2(words, iv)


@given(a=u32, b=u32, c=u32, iv=u32, bits=st.integers(1, 32),
       v64=u64, bits64=st.integers(1, 64))
def test_compiled_equals_reference_words(a, b, c, iv, bits, v64, bits64):
    assert C.jhash_1word(a, iv) == _pyref.jhash_1word(a, iv)
    assert C.jhash_2words(a, b, iv) == _pyref.jhash_2words(a, b, iv)
    assert C.jhash_3words(a, b, c, iv) == _pyref.jhash_3words(a, b, c, iv)
    assert C.hash_32(a, bits) == _pyref.hash_32(a, bits)
    assert C.hash_64(v64, bits64) == _pyref.hash_64(v64, bits64)


@settings(max_examples=30)
@given(rows=st.lists(st.lists(u64, min_size=3, max_size=3), max_size=20),
       key=keys)
def test_compiled_batch_equals_reference_batch(rows, key):
    arr = np.array(rows, dtype=np.uint64).reshape(-1, 3)
    assert C.siphash_u64_batch(arr, key).tolist() == \
        _pyref.siphash_u64_batch(arr, key).tolist()
    a32 = (arr & 0xFFFFFFFF).astype(np.uint32)
    assert C.jhash_words_batch(a32, 5).tolist() == \
        _pyref.jhash_words_batch(a32, 5).tolist()
    assert C.hsiphash_u32_batch(a32, key).tolist() == \
        _pyref.hsiphash_u32_batch(a32, key).tolist()


@given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64),
                       st.floats(), st.text(), st.none()))
def test_bad_words_raise_the_same_error_in_both(value):
    errors = []
    for impl in (C, _pyref):
        with pytest.raises((ValueError, TypeError)) as info:
            impl.siphash_1u64(value, bytes(16))
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]
