"""Kernel-exact hashing: vectors, word forms, batches and bad input.

Every test runs against the compiled core and the pure-Python reference
(the ``core`` fixture in conftest.py).
"""
import struct

import numpy as np
import pytest

from ipvs_py._core import is_compiled

from . import kernel_vectors as kv


def le64(*words):
    return struct.pack("<%dQ" % len(words), *words)


def le32(*words):
    return struct.pack("<%dI" % len(words), *words)


def test_compiled_core_loaded(compiled_core):
    """Canary: the Cython module really is the compiled one."""
    assert is_compiled(compiled_core.hashing)
    assert compiled_core.hashing.__name__ == "ipvs_py._core.hashing"


# ------------------------------------------------------------- vectors

@pytest.mark.parametrize("n", range(64))
def test_siphash_reference_vectors(core, n):
    assert core.hashing.siphash(bytes(range(n)), kv.KEY) == kv.SIPHASH[n]


@pytest.mark.parametrize("n", range(64))
def test_siphash_unaligned_input(core, n):
    buf = bytearray(n + 1)
    buf[1:] = bytes(range(n))
    view = memoryview(buf)[1:]
    assert core.hashing.siphash(view, kv.KEY) == kv.SIPHASH[n]


@pytest.mark.parametrize("n", range(64))
def test_hsiphash_kernel_vectors(core, n):
    assert core.hashing.hsiphash(bytes(range(n)), kv.KEY) == kv.HSIPHASH[n]


def test_siphash_kunit_word_forms(core):
    """The word-form checks of lib/siphash_kunit.c, one for one."""
    h, k, V = core.hashing, kv.KEY, kv.SIPHASH
    w0, w1, w2, w3 = (0x0706050403020100, 0x0F0E0D0C0B0A0908,
                      0x1716151413121110, 0x1F1E1D1C1B1A1918)
    assert h.siphash_1u64(w0, k) == V[8]
    assert h.siphash_2u64(w0, w1, k) == V[16]
    assert h.siphash_3u64(w0, w1, w2, k) == V[24]
    assert h.siphash_4u64(w0, w1, w2, w3, k) == V[32]
    assert h.siphash_1u32(0x03020100, k) == V[4]
    assert h.siphash_2u32(0x03020100, 0x07060504, k) == V[8]
    assert h.siphash_3u32(0x03020100, 0x07060504, 0x0B0A0908, k) == V[12]
    assert h.siphash_4u32(0x03020100, 0x07060504, 0x0B0A0908,
                          0x0F0E0D0C, k) == V[16]


def test_hsiphash_kunit_word_forms(core):
    h, k, V = core.hashing, kv.KEY, kv.HSIPHASH
    assert h.hsiphash_1u32(0x03020100, k) == V[4]
    assert h.hsiphash_2u32(0x03020100, 0x07060504, k) == V[8]
    assert h.hsiphash_3u32(0x03020100, 0x07060504, 0x0B0A0908, k) == V[12]
    assert h.hsiphash_4u32(0x03020100, 0x07060504, 0x0B0A0908,
                           0x0F0E0D0C, k) == V[16]


@pytest.mark.parametrize("data, initval, expected", kv.LOOKUP3)
def test_jhash_lookup3_vectors(core, data, initval, expected):
    assert core.hashing.jhash(data, initval) == expected


def test_jhash_words_are_jhash2_with_their_own_seed(core):
    """jhash_Nwords(...) == jhash2 finalisation with initval + N*4 folded in.

    jhash_3words(a, b, c, iv) adds iv + INITVAL + 12 to each word and
    finalises; jhash2([a, b, c], iv) starts from INITVAL + 12 + iv and
    adds the words: the same arithmetic, so the two must agree.
    """
    h = core.hashing
    for a, b, c, iv in [(1, 2, 3, 0), (0xFFFFFFFF, 0, 7, 0x12345678),
                        (80, 6, 0x0A000001, 0xDEADBEEF)]:
        assert h.jhash_3words(a, b, c, iv) == h.jhash2([a, b, c], iv)
        assert h.jhash_2words(a, b, iv) == h.jhash2([a, b], iv)
        assert h.jhash_1word(a, iv) == h.jhash2([a], iv)
        # ...and the seed folds in the word count: 2 words == 3 with c=0
        # and a seed 4 lower.
        assert h.jhash_2words(a, b, iv) == \
            h.jhash_3words(a, b, 0, (iv - 4) & 0xFFFFFFFF)


def test_jhash2_matches_jhash_over_le_bytes(core):
    """jhash2 over words == jhash over the same little-endian bytes."""
    h = core.hashing
    for words in ([], [1], [1, 2], [5, 6, 7], [1, 2, 3, 4, 5, 6, 7],
                  list(range(0xFFFFFF00, 0xFFFFFF0D))):
        assert h.jhash2(words, 99) == h.jhash(le32(*words), 99)


def test_hash_32_golden_ratio(core):
    h = core.hashing
    assert h.GOLDEN_RATIO_32 == 0x61C88647
    assert h.GOLDEN_RATIO_64 == 0x61C8864680B583EB
    assert h.hash_32(1, 32) == 0x61C88647
    assert h.hash_32(1, 8) == 0x61
    assert h.hash_32(0x0A000001, 8) == ((0x0A000001 * 0x61C88647) & 0xFFFFFFFF) >> 24
    assert h.hash_64(1, 64) == 0x61C8864680B583EB
    assert h.hash_64(3, 12) == ((3 * 0x61C8864680B583EB) % 2**64) >> 52


# ---------------------------------------------------------- word forms

WORDS64 = [0, 1, 0x0706050403020100, 2**64 - 1, 0x8000000000000000]


def test_u64_word_forms_equal_byte_form(core):
    h, k = core.hashing, bytes(range(100, 116))
    for a in WORDS64:
        for b in WORDS64[:3]:
            assert h.siphash_1u64(a, k) == h.siphash(le64(a), k)
            assert h.siphash_2u64(a, b, k) == h.siphash(le64(a, b), k)
            assert h.siphash_3u64(a, b, a, k) == h.siphash(le64(a, b, a), k)
            assert h.siphash_4u64(b, a, b, a, k) == h.siphash(le64(b, a, b, a), k)


def test_u32_word_forms_equal_byte_form(core):
    h, k = core.hashing, bytes(range(7, 23))
    for a in (0, 1, 0xFFFFFFFF, 0x01020304):
        for b in (0, 0x80000000):
            assert h.siphash_1u32(a, k) == h.siphash(le32(a), k)
            assert h.siphash_2u32(a, b, k) == h.siphash(le32(a, b), k)
            assert h.siphash_3u32(a, b, a, k) == h.siphash(le32(a, b, a), k)
            assert h.siphash_4u32(a, b, a, b, k) == h.siphash(le32(a, b, a, b), k)
            assert h.hsiphash_1u32(a, k) == h.hsiphash(le32(a), k)
            assert h.hsiphash_2u32(a, b, k) == h.hsiphash(le32(a, b), k)
            assert h.hsiphash_3u32(a, b, a, k) == h.hsiphash(le32(a, b, a), k)
            assert h.hsiphash_4u32(a, b, a, b, k) == h.hsiphash(le32(a, b, a, b), k)


def test_key_accepts_any_bytes_like(core):
    h = core.hashing
    expected = h.siphash(b"abc", kv.KEY)
    assert h.siphash(b"abc", bytearray(kv.KEY)) == expected
    assert h.siphash(b"abc", memoryview(kv.KEY)) == expected
    assert h.siphash(b"abc", np.frombuffer(kv.KEY, dtype=np.uint64)) == expected


def test_numpy_integers_are_accepted(core):
    h = core.hashing
    assert h.siphash_1u64(np.uint64(5), kv.KEY) == h.siphash_1u64(5, kv.KEY)
    assert h.jhash_1word(np.uint32(5), np.int64(3)) == h.jhash_1word(5, 3)


# ---------------------------------------------------------- batch forms

def _rows(n, cols, dtype, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(0, info.max, size=(n, cols), dtype=dtype, endpoint=True)


@pytest.mark.parametrize("cols", [1, 2, 3, 4])
def test_siphash_u64_batch_equals_scalar(core, cols):
    h = core.hashing
    w = _rows(50, cols, np.uint64, cols)
    fn = [h.siphash_1u64, h.siphash_2u64, h.siphash_3u64, h.siphash_4u64][cols - 1]
    got = h.siphash_u64_batch(w, kv.KEY)
    assert got.dtype == np.uint64
    assert got.tolist() == [fn(*map(int, row), kv.KEY) for row in w]


@pytest.mark.parametrize("cols", [1, 2, 3, 4])
def test_u32_batches_equal_scalar(core, cols):
    h = core.hashing
    w = _rows(50, cols, np.uint32, 10 + cols)
    sip = [h.siphash_1u32, h.siphash_2u32, h.siphash_3u32, h.siphash_4u32][cols - 1]
    hsip = [h.hsiphash_1u32, h.hsiphash_2u32, h.hsiphash_3u32,
            h.hsiphash_4u32][cols - 1]
    rows = [list(map(int, r)) for r in w]
    assert h.siphash_u32_batch(w, kv.KEY).tolist() == [sip(*r, kv.KEY) for r in rows]
    assert h.hsiphash_u32_batch(w, kv.KEY).tolist() == [hsip(*r, kv.KEY) for r in rows]
    assert h.jhash2_batch(w, 7).tolist() == [h.jhash2(r, 7) for r in rows]
    if cols <= 3:
        jw = [h.jhash_1word, h.jhash_2words, h.jhash_3words][cols - 1]
        assert h.jhash_words_batch(w, 7).tolist() == [jw(*r, 7) for r in rows]


def test_hash_32_batch_and_out_buffer(core):
    h = core.hashing
    vals = np.arange(1000, dtype=np.uint32) * 2654435761
    out = np.zeros(1000, dtype=np.uint32)
    res = h.hash_32_batch(vals, 8, out=out)
    assert res is out
    assert out.tolist() == [h.hash_32(int(v), 8) for v in vals]


def test_batch_accepts_lists_and_1d(core):
    h = core.hashing
    assert h.siphash_u64_batch([1, 2, 3], kv.KEY).tolist() == \
        [h.siphash_1u64(v, kv.KEY) for v in (1, 2, 3)]
    assert h.siphash_u64_batch(np.empty((0, 2), np.uint64), kv.KEY).shape == (0,)


# ------------------------------------------------------------ bad input

@pytest.mark.parametrize("key, exc, word", [
    (b"short", ValueError, "16 bytes"),
    (bytes(17), ValueError, "16 bytes"),
    ("0123456789abcdef", TypeError, "key"),
    (12345, TypeError, "key"),
    (None, TypeError, "key"),
])
def test_bad_key(core, key, exc, word):
    with pytest.raises(exc, match=word):
        core.hashing.siphash(b"x", key)
    with pytest.raises(exc, match=word):
        core.hashing.hsiphash_1u32(1, key)
    with pytest.raises(exc, match=word):
        core.hashing.siphash_u64_batch([1], key)


@pytest.mark.parametrize("call, exc, name", [
    (lambda h: h.siphash_1u64(-1, kv.KEY), ValueError, "first"),
    (lambda h: h.siphash_2u64(0, 2**64, kv.KEY), ValueError, "second"),
    (lambda h: h.siphash_3u32(0, 0, 2**32, kv.KEY), ValueError, "third"),
    (lambda h: h.hsiphash_4u32(0, 0, 0, -5, kv.KEY), ValueError, "fourth"),
    (lambda h: h.siphash_1u64("1", kv.KEY), TypeError, "first"),
    (lambda h: h.siphash_1u64(1.0, kv.KEY), TypeError, "first"),
    (lambda h: h.jhash_3words(1, 2, None), TypeError, "c"),
    (lambda h: h.jhash_2words(1, 2, initval=-1), ValueError, "initval"),
    (lambda h: h.jhash2([1, 2**32]), ValueError, r"words\[1\]"),
    (lambda h: h.jhash2("abc"), TypeError, "words"),
    (lambda h: h.jhash(u"text"), TypeError, "data"),
    (lambda h: h.siphash([1, 2], kv.KEY), TypeError, "data"),
    (lambda h: h.hash_32(1, 0), ValueError, "bits"),
    (lambda h: h.hash_32(1, 33), ValueError, "bits"),
    (lambda h: h.hash_64(1, 65), ValueError, "bits"),
    (lambda h: h.hash_32(2**32, 8), ValueError, "val"),
    (lambda h: h.siphash_u64_batch(np.zeros((3, 5), np.uint64), kv.KEY),
     ValueError, "columns"),
    (lambda h: h.siphash_u64_batch(np.zeros((2, 2, 2), np.uint64), kv.KEY),
     ValueError, "2-D"),
    (lambda h: h.hsiphash_u32_batch(np.array([[2**40]]), kv.KEY),
     ValueError, "uint32"),
    (lambda h: h.siphash_u64_batch(np.array([[-1]]), kv.KEY),
     ValueError, "uint64"),
    (lambda h: h.jhash_words_batch(np.zeros((2, 4), np.uint32)),
     ValueError, "columns"),
    (lambda h: h.hash_32_batch([1, 2], 8, out=np.zeros(3, np.uint32)),
     ValueError, "out"),
    (lambda h: h.hash_32_batch([1, 2], 8, out=np.zeros(2, np.uint64)),
     ValueError, "out"),
])
def test_bad_words_name_the_argument(core, call, exc, name):
    with pytest.raises(exc, match=name):
        call(core.hashing)


def test_batches_from_many_threads_agree(compiled_core):
    """The batch loops run without the GIL; concurrent calls must not
    interfere (each thread's result equals the single-threaded one)."""
    import threading

    h = compiled_core.hashing
    words = _rows(100_000, 2, np.uint64, 99)
    expected = h.siphash_u64_batch(words, kv.KEY)
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(5):
                results[i] = h.siphash_u64_batch(words, kv.KEY)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for res in results:
        assert np.array_equal(res, expected)
