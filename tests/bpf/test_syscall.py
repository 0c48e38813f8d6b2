"""bpf(2) map commands through cffi, and their errors."""
import errno

import pytest

from ipvs_py.bpf import (BpfError, BpfMapFullError, BpfPermissionError,
                         BpfUnsupportedError, Map)
from ipvs_py.bpf.errors import from_errno
from ipvs_py.bpf.syscall import EXIST, MAP_TYPE_HASH, NOEXIST

from .conftest import kernel_refuses


@pytest.fixture
def hmap():
    try:
        m = Map(MAP_TYPE_HASH, 4, 8, 4, name="t_hash")
    except (BpfPermissionError, BpfUnsupportedError) as e:
        kernel_refuses(e)
    yield m
    m.close()


def k(i):
    return i.to_bytes(4, "little")


def v(i):
    return i.to_bytes(8, "little")


def test_update_lookup_delete(hmap):
    assert hmap.lookup(k(1)) is None
    hmap.update(k(1), v(10))
    assert hmap.lookup(k(1)) == v(10)
    hmap.update(k(1), v(11), EXIST)
    assert hmap.lookup(k(1)) == v(11)
    with pytest.raises(BpfError) as ei:
        hmap.update(k(1), v(12), NOEXIST)
    assert ei.value.errno == errno.EEXIST
    assert hmap.delete(k(1)) is True
    assert hmap.delete(k(1)) is False
    assert len(hmap) == 0


def test_full_map_raises_map_full(hmap):
    for i in range(4):
        hmap.update(k(i), v(i))
    with pytest.raises(BpfMapFullError) as ei:
        hmap.update(k(99), v(99))
    assert ei.value.errno == errno.E2BIG
    assert "full" in str(ei.value)
    hmap.update(k(3), v(33))   # replacing in a full map is fine


def test_batch_ops(hmap):
    hmap.update_batch([k(1), k(2), k(3)], [v(1), v(2), v(3)])
    assert sorted(hmap.lookup_batch()) == [(k(i), v(i)) for i in (1, 2, 3)]
    assert sorted(hmap.keys()) == [k(1), k(2), k(3)]
    hmap.delete_batch([k(1), k(3)])
    assert hmap.lookup_batch() == [(k(2), v(2))]


def test_batch_update_full_reports_progress(hmap):
    with pytest.raises(BpfMapFullError) as ei:
        hmap.update_batch([k(i) for i in range(6)], [v(i) for i in range(6)])
    assert ei.value.done == 4
    assert len(hmap) == 4


def test_lookup_batch_small_chunks(hmap):
    hmap.update_batch([k(i) for i in range(4)], [v(i) for i in range(4)])
    assert sorted(hmap.lookup_batch(chunk=1)) == [(k(i), v(i)) for i in range(4)]


def test_wrong_sizes_rejected_before_the_kernel(hmap):
    with pytest.raises(ValueError):
        hmap.update(b"abc", v(1))
    with pytest.raises(ValueError):
        hmap.update(k(1), b"short")


def test_bad_map_is_a_clear_error():
    with pytest.raises(BpfError) as ei:
        Map(MAP_TYPE_HASH, 0, 8, 4, name="t_bad")   # zero key size
    if isinstance(ei.value, BpfPermissionError):
        kernel_refuses(ei.value)
    assert ei.value.errno == errno.EINVAL
    assert "MAP_CREATE" in str(ei.value)


@pytest.mark.parametrize("err, cls", [
    (errno.EPERM, BpfPermissionError),
    (errno.EACCES, BpfPermissionError),
    (errno.ENOSYS, BpfUnsupportedError),
    (errno.EOPNOTSUPP, BpfUnsupportedError),
])
def test_errno_classes(err, cls):
    e = from_errno(err, "MAP_CREATE")
    assert isinstance(e, cls) and isinstance(e, OSError)
    assert e.errno == err and "MAP_CREATE" in str(e)


def test_einval_on_batch_means_unsupported():
    assert isinstance(from_errno(errno.EINVAL, "MAP_UPDATE_BATCH"),
                      BpfUnsupportedError)
    assert not isinstance(from_errno(errno.EINVAL, "MAP_CREATE"),
                          BpfUnsupportedError)


def test_e2big_is_map_full_only_on_update():
    assert isinstance(from_errno(errno.E2BIG, "MAP_UPDATE_ELEM"), BpfMapFullError)
    assert not isinstance(from_errno(errno.E2BIG, "PROG_LOAD"), BpfMapFullError)
