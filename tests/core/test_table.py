"""Table behaviour: mapping ops, kernel triggers, rebuilds, batches, bad
input.  Every test runs on the compiled table and the pure reference."""
import numpy as np
import pytest


def k(i, size=16):
    return i.to_bytes(size, "little")


def keys_array(idx, size=16):
    return np.frombuffer(b"".join(k(int(i), size) for i in idx),
                         np.uint8).reshape(-1, size)


@pytest.fixture
def Table(core):
    return core.table.Table


def test_compiled_table_loaded(compiled_core):
    from ipvs_py._core import is_compiled
    assert is_compiled(compiled_core.table)
    assert compiled_core.table.Table.__module__ == "ipvs_py._core.table"


def test_basic_mapping(Table):
    t = Table(4, 20, 0)
    assert len(t) == 0 and t.size == 16 and t.bits == 4
    for i in range(300):
        t.insert(k(i), i * 7)
    assert len(t) == 300
    assert all(t.lookup(k(i)) == i * 7 for i in range(300))
    assert t.lookup(k(999)) is None and t.lookup(k(999), -1) == -1
    assert k(5) in t and k(999) not in t
    assert sorted(v for _, v in t.items()) == [i * 7 for i in range(300)]
    assert sorted(t) == sorted(k(i) for i in range(300))
    for i in range(0, 300, 3):
        assert t.remove(k(i)) == i * 7
    with pytest.raises(KeyError):
        t.remove(k(0))
    assert len(t) == 200


def test_duplicates(Table):
    t = Table(4, 8, 0)
    for v in (1, 2, 3):
        t.insert(k(42), v)
    assert sorted(t.lookup_all(k(42))) == [1, 2, 3]
    assert t.lookup(k(42)) == 3          # newest first in the chain
    got = {t.remove(k(42)) for _ in range(3)}
    assert got == {1, 2, 3} and t.lookup_all(k(42)) == []


def test_many_duplicates_lookup_all(Table):
    t = Table(4, 8, 0)
    for v in range(100):
        t.insert(k(1), v)
    assert sorted(t.lookup_all(k(1))) == list(range(100))


@pytest.mark.parametrize("lfactor", [-3, 0, 3])
def test_grow_exactly_past_u_thresh(core, Table, lfactor):
    """conn rule: the insert that makes count > u_thresh rebuilds to
    desired_size(count)."""
    ref = core.table
    t = Table(4, 12, lfactor)
    size, tlf = 16, lfactor
    for n in range(1, 3000):
        u, _ = ref.thresholds(size, tlf, 4, 12)
        t.insert(k(n), n)
        if n > u:
            new = ref.desired_size(n, lfactor, 4, 12, size, tlf)
            if new != size:
                size = new
        assert t.size == size, n
    assert t.u_thresh == ref.thresholds(size, lfactor, 4, 12)[0]


def test_conn_shrinks_only_on_maybe_resize(core, Table):
    t = Table(4, 16, 0)
    for i in range(1000):
        t.insert(k(i), i)
    assert t.size == 1024
    for i in range(990):
        t.remove(k(i))
    assert t.size == 1024                      # conns never shrink on remove
    assert t.maybe_resize() is True            # the 2 s re-check
    assert t.size == core.table.desired_size(10, 0, 4, 16, 1024, 0) == 32
    assert t.maybe_resize() is False
    assert sorted(v for _, v in t.items()) == list(range(990, 1000))


def test_svc_shrinks_on_remove(core, Table):
    t = Table(4, 20, -3, profile="svc")
    for i in range(200):
        t.insert(k(i), i)
    big = t.size
    assert big == 2048
    i = 0
    while t.size == big:
        t.remove(k(i))
        i += 1
    # shrink requested by the remove that left count <= l_thresh
    u, l = core.table.thresholds(big, -3, 4, 20)
    assert 200 - i == l
    assert all(t.lookup(k(j)) == j for j in range(i, 200))


def test_auto_resize_off_leaves_request_pending(Table):
    t = Table(4, 12, 0, auto_resize=False)
    for i in range(40):
        t.insert(k(i), i)
    assert t.size == 16 and t.resize_pending
    assert t.maybe_resize() and t.size == 64 and not t.resize_pending


def test_lfactor_change_rebuilds_at_same_size(Table):
    t = Table(8, 20, 0)
    for i in range(10):
        t.insert(k(i), i)
    size, key, tid = t.size, t.hash_key, t.table_id
    t.lfactor = 1                 # desired clamps to 256 = same size
    assert t.size == size == 256
    assert t.table_lfactor == 1 and t.lfactor == 1
    assert t.hash_key != key and t.table_id == tid ^ 0x80000000
    assert all(t.lookup(k(i)) == i for i in range(10))


def test_rebuild_flips_table_id_and_key(Table):
    t = Table(4, 12, 0)
    t.insert(k(1), 1)
    ids, keys = [t.table_id], [t.hash_key]
    for bits in (4, 5, 6, 4):
        t.resize_to(bits)
        assert t.size == 1 << bits
        ids.append(t.table_id)
        keys.append(t.hash_key)
        assert t.entry_hash_key(k(1)) & 0x80000000 == t.table_id
    assert ids == [0, 0x80000000, 0, 0x80000000, 0]
    assert len(set(keys)) == len(keys)
    assert t.lookup(k(1)) == 1


def test_histogram(Table):
    t = Table(6, 6, 0)
    for i in range(100):
        t.insert(k(i), i)
    h = t.histogram()
    assert h["buckets"] == 64
    assert h["empty"] + sum(h["len"]) == 64
    assert sum(n * c for n, c in enumerate(h["len"][:6], 1)) <= 100
    t2 = Table(6, 6, 0)
    for v in range(9):
        t2.insert(k(3), v)                     # one chain of 9: len-7+
    assert t2.histogram()["len"] == [0] * 6 + [1]


@pytest.mark.parametrize("key_size", [1, 4, 8, 13, 16, 40])
def test_key_sizes_and_batches(Table, key_size):
    t = Table(4, 16, 0, key_size=key_size)
    idx = np.arange(0, 600, 2) % (256 ** min(key_size, 3))
    idx = np.unique(idx)
    t.insert_batch(keys_array(idx, key_size), idx * 3)
    probe = np.arange(0, 700) % (256 ** min(key_size, 3))
    values, found = t.lookup_batch(keys_array(probe, key_size))
    for i, p in enumerate(probe):
        want = t.lookup(k(int(p), key_size))
        assert found[i] == (want is not None)
        assert values[i] == (want or 0)


def test_batch_shapes(Table):
    t = Table(4, 8, 0, key_size=16)
    t.insert(k(5), 50)
    as_u64 = np.array([[5, 0], [6, 0]], dtype=np.uint64)     # (n, 2) u64
    v, f = t.lookup_batch(as_u64)
    assert list(f) == [True, False] and v[0] == 50
    v, f = t.lookup_batch(k(5) + k(6))                        # flat bytes
    assert list(f) == [True, False]
    v, f = t.lookup_batch(np.zeros((0, 16), np.uint8))
    assert len(v) == 0 and len(f) == 0


@pytest.mark.parametrize("args,kwargs", [
    ((4, 20, 9), {}), ((4, 20, -9), {}), ((0, 20, 0), {}), ((4, 28, 0), {}),
    ((21, 20, 0), {}), ((4, 20, 0), {"key_size": 0}),
    ((4, 20, 0), {"profile": "nope"}),
])
def test_bad_construction(Table, args, kwargs):
    with pytest.raises(ValueError):
        Table(*args, **kwargs)


def test_bad_construction_types(Table):
    with pytest.raises(TypeError, match="min_bits"):
        Table("4", 20, 0)
    with pytest.raises(TypeError, match="lfactor"):
        Table(4, 20, 1.5)


@pytest.mark.parametrize("key", [b"short", b"x" * 17, "a" * 16, 12345,
                                 [1, 2], None, {"a": 1}])
def test_bad_keys(core, Table, key):
    t = Table(4, 8, 0)
    for op in (lambda: t.insert(key, 1), lambda: t.lookup(key),
               lambda: t.remove(key), lambda: t.lookup_all(key)):
        with pytest.raises(ValueError, match="key") as ei:
            op()
        assert isinstance(ei.value, core.table.BadKeyError)
        assert isinstance(ei.value, TypeError)


def test_bytes_like_keys(Table):
    t = Table(4, 8, 0)
    t.insert(bytearray(k(7)), 1)
    assert t.lookup(memoryview(k(7))) == 1
    assert t.lookup(np.frombuffer(k(7), np.uint8)) == 1


def test_bad_values_and_bits(Table):
    t = Table(4, 8, 0)
    with pytest.raises(ValueError, match="value"):
        t.insert(k(1), -1)
    with pytest.raises(ValueError, match="value"):
        t.insert(k(1), 2**64)
    with pytest.raises(TypeError, match="value"):
        t.insert(k(1), "1")
    with pytest.raises(ValueError, match="bits"):
        t.resize_to(9)
    with pytest.raises(ValueError, match="bits"):
        t.resize_to(3)
    with pytest.raises(ValueError, match="lfactor"):
        t.lfactor = 9
    assert t.lfactor == 0


def test_bad_batches(Table):
    t = Table(4, 8, 0)
    with pytest.raises(ValueError, match="16"):
        t.lookup_batch(np.zeros((3, 15), np.uint8))
    with pytest.raises(ValueError):
        t.lookup_batch(b"x" * 17)
    with pytest.raises(TypeError):
        t.lookup_batch("x" * 16)
    with pytest.raises(ValueError, match="values"):
        t.insert_batch(np.zeros((3, 16), np.uint8), [1, 2])


@pytest.mark.parametrize("key_size", [16, 8, 13, 1])
def test_entry_hash_key_is_siphash_with_table_id(core, Table, key_size):
    """hash_key = table id (bit 31) | low 31 bits of (u32)siphash(key)
    under the current array's key, before and after a rebuild (the C
    table hashes 16/8-byte keys with the word forms: same values)."""
    t = Table(4, 8, 0, key_size=key_size)
    for rebuild in range(3):
        for i in range(50):
            key = k(i * 7919 % 256 ** min(key_size, 2), key_size)
            sip = core.hashing.siphash(key, t.hash_key) & 0xFFFFFFFF
            assert t.entry_hash_key(key) == t.table_id | (sip & 0x7FFFFFFF)
        t.resize_to(5)
