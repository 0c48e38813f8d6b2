"""The bpf(2) system call through cffi: maps, program load, test run.

Only the commands the fast path needs are bound.  Each command gets its own
attribute struct, copied field for field from the matching member of
``union bpf_attr`` in uapi ``<linux/bpf.h>``; the kernel accepts a shorter
attribute block than its own union (it zero-fills the rest), so passing
``sizeof`` of the member struct is the documented way to call it.

cffi runs in ABI mode (``dlopen`` of the C library): nothing is compiled at
install time.  ``syscall()`` is variadic, so every argument after the number
is passed as a typed cdata, as cffi requires for variadic calls.
"""
import errno as _errno
import os
import platform

import cffi

from .errors import BpfVerifierError, from_errno

ffi = cffi.FFI()
ffi.cdef("""
long syscall(long number, ...);

struct attr_map_create {       /* BPF_MAP_CREATE */
    uint32_t map_type, key_size, value_size, max_entries, map_flags;
    uint32_t inner_map_fd, numa_node;
    char map_name[16];
};
struct attr_elem {             /* BPF_MAP_*_ELEM, BPF_MAP_GET_NEXT_KEY */
    uint32_t map_fd;
    uint64_t key;              /* __aligned_u64: 8-byte aligned like here */
    uint64_t value;            /* or next_key */
    uint64_t flags;
};
struct attr_batch {            /* BPF_MAP_*_BATCH */
    uint64_t in_batch, out_batch, keys, values;
    uint32_t count, map_fd;
    uint64_t elem_flags, flags;
};
struct attr_prog_load {        /* BPF_PROG_LOAD, up to expected_attach_type */
    uint32_t prog_type, insn_cnt;
    uint64_t insns, license;
    uint32_t log_level, log_size;
    uint64_t log_buf;
    uint32_t kern_version, prog_flags;
    char prog_name[16];
    uint32_t prog_ifindex, expected_attach_type;
};
struct attr_obj {              /* BPF_OBJ_PIN / BPF_OBJ_GET */
    uint64_t pathname;
    uint32_t bpf_fd, file_flags;
};
struct attr_test_run {         /* BPF_PROG_TEST_RUN */
    uint32_t prog_fd, retval, data_size_in, data_size_out;
    uint64_t data_in, data_out;
    uint32_t repeat, duration;
    uint32_t ctx_size_in, ctx_size_out;
    uint64_t ctx_in, ctx_out;
    uint32_t flags, cpu, batch_size;
};
""")
_libc = ffi.dlopen(None)

# __NR_bpf differs per architecture (arch/*/include/uapi/asm/unistd*.h).
_NR_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "i386": 357,
           "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}

# enum bpf_cmd
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM = 0, 1, 2, 3
MAP_GET_NEXT_KEY, PROG_LOAD, OBJ_PIN, OBJ_GET = 4, 5, 6, 7
PROG_TEST_RUN = 10
MAP_LOOKUP_BATCH, MAP_UPDATE_BATCH, MAP_DELETE_BATCH = 24, 26, 27
_CMD_NAMES = {0: "MAP_CREATE", 1: "MAP_LOOKUP_ELEM", 2: "MAP_UPDATE_ELEM",
              3: "MAP_DELETE_ELEM", 4: "MAP_GET_NEXT_KEY", 5: "PROG_LOAD",
              6: "OBJ_PIN", 7: "OBJ_GET", 10: "PROG_TEST_RUN",
              24: "MAP_LOOKUP_BATCH", 26: "MAP_UPDATE_BATCH",
              27: "MAP_DELETE_BATCH"}

# enum bpf_map_type / bpf_prog_type, map flags, update flags
MAP_TYPE_HASH, MAP_TYPE_ARRAY = 1, 2
PROG_TYPE_SCHED_CLS = 3
F_NO_PREALLOC = 1
ANY, NOEXIST, EXIST = 0, 1, 2


def _nr_bpf():
    machine = platform.machine()
    try:
        return _NR_BPF[machine]
    except KeyError:
        raise from_errno(_errno.ENOSYS, "MAP_CREATE",
                         f"bpf(2) number unknown for {machine}") from None


def bpf(cmd, attr, detail=""):
    """Run one bpf(2) command with ``attr`` (a cffi struct pointer).

    Returns the non-negative result (an fd for create/load commands);
    raises the matching BpfError otherwise.
    """
    ret = _libc.syscall(ffi.cast("long", _nr_bpf()), ffi.cast("int", cmd),
                        ffi.cast("void *", attr),
                        ffi.cast("unsigned int", ffi.sizeof(attr[0])))
    if ret < 0:
        raise from_errno(ffi.errno, _CMD_NAMES.get(cmd, str(cmd)), detail)
    return ret


def _addr(buf):
    return int(ffi.cast("uintptr_t", buf))


def _name(dst, name):
    raw = name.encode()[:15]   # BPF_OBJ_NAME_LEN 16 with the NUL
    ffi.memmove(dst, raw, len(raw))


class Map:
    """One BPF map owned by this process (closed by :meth:`close`).

    Keys and values are ``bytes`` of exactly ``key_size``/``value_size``;
    the layout module packs them.  Missing keys give ``None``/``False``
    rather than an exception because the mirror treats absence as normal.
    """

    def __init__(self, map_type, key_size, value_size, max_entries,
                 flags=0, name=""):
        attr = ffi.new("struct attr_map_create *")
        attr.map_type = map_type
        attr.key_size = key_size
        attr.value_size = value_size
        attr.max_entries = max_entries
        attr.map_flags = flags
        _name(attr.map_name, name)
        self.fd = bpf(MAP_CREATE, attr, f"map {name!r}")
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.name = name

    # -- lifetime -----------------------------------------------------
    def close(self):
        """Drop our reference; the kernel frees the map when the last
        holder (e.g. an attached program) lets go."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:   # interpreter shutdown: os may be gone
            pass

    # -- single elements ------------------------------------------------
    def _check(self, key, value=None):
        if len(key) != self.key_size:
            raise ValueError(f"{self.name}: key is {len(key)} bytes, "
                             f"map wants {self.key_size}")
        if value is not None and len(value) != self.value_size:
            raise ValueError(f"{self.name}: value is {len(value)} bytes, "
                             f"map wants {self.value_size}")

    def _elem(self, key, value_buf=None, flags=0):
        attr = ffi.new("struct attr_elem *")
        attr.map_fd = self.fd
        kbuf = ffi.from_buffer(key)
        attr.key = _addr(kbuf)
        if value_buf is not None:
            attr.value = _addr(value_buf)
        attr.flags = flags
        return attr, kbuf

    def lookup(self, key):
        """Value for ``key`` as bytes, or None if absent."""
        self._check(key)
        out = ffi.new("char[]", self.value_size)
        attr, _k = self._elem(key, out)
        try:
            bpf(MAP_LOOKUP_ELEM, attr)
        except OSError as e:
            if e.errno == _errno.ENOENT:
                return None
            raise
        return ffi.buffer(out)[:]

    def update(self, key, value, flags=ANY):
        """Insert or replace (``flags``: ANY, NOEXIST, EXIST)."""
        self._check(key, value)
        vbuf = ffi.from_buffer(value)
        attr, _k = self._elem(key, vbuf, flags)
        bpf(MAP_UPDATE_ELEM, attr)

    def delete(self, key):
        """Remove ``key``; False if it was not there."""
        self._check(key)
        attr, _k = self._elem(key)
        try:
            bpf(MAP_DELETE_ELEM, attr)
        except OSError as e:
            if e.errno == _errno.ENOENT:
                return False
            raise
        return True

    def keys(self):
        """All keys, walked with MAP_GET_NEXT_KEY (a snapshot list: the
        walk restarts from the first key if the current one vanishes)."""
        out = []
        nxt = ffi.new("char[]", self.key_size)
        attr = ffi.new("struct attr_elem *")
        attr.map_fd = self.fd
        attr.value = _addr(nxt)
        cur = None
        while True:
            attr.key = 0 if cur is None else _addr(cur)
            try:
                bpf(MAP_GET_NEXT_KEY, attr)
            except OSError as e:
                if e.errno == _errno.ENOENT:
                    return out
                raise
            k = ffi.buffer(nxt)[:]
            out.append(k)
            cur = ffi.from_buffer(k)

    # -- batches ----------------------------------------------------------
    def _batch_attr(self, keys, values, count):
        attr = ffi.new("struct attr_batch *")
        attr.map_fd = self.fd
        attr.keys = _addr(keys)
        if values is not None:
            attr.values = _addr(values)
        attr.count = count
        return attr

    def update_batch(self, keys, values, flags=ANY):
        """Insert/replace ``len(keys)`` elements in one call.

        On failure the kernel has applied the first ``n`` elements; the
        error carries ``.done = n`` so the caller can tell which.
        """
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        if not keys:
            return
        for k, v in zip(keys, values):
            self._check(k, v)
        kbuf = ffi.from_buffer(b"".join(keys))
        vbuf = ffi.from_buffer(b"".join(values))
        attr = self._batch_attr(kbuf, vbuf, len(keys))
        attr.elem_flags = flags
        try:
            bpf(MAP_UPDATE_BATCH, attr)
        except OSError as e:
            e.done = attr.count
            raise

    def delete_batch(self, keys):
        """Delete ``keys``; all must exist (ENOENT otherwise, with
        ``.done`` as for update_batch)."""
        if not keys:
            return
        for k in keys:
            self._check(k)
        kbuf = ffi.from_buffer(b"".join(keys))
        attr = self._batch_attr(kbuf, None, len(keys))
        try:
            bpf(MAP_DELETE_BATCH, attr)
        except OSError as e:
            e.done = attr.count
            raise

    def discard_batch(self, keys):
        """Delete those of ``keys`` that exist, in batches; returns how
        many were deleted.  A missing key costs one more call (the kernel
        stops a batch at the first ENOENT and reports how far it got)."""
        if len(keys) == 1:              # one call either way; no batch attr
            return int(self.delete(keys[0]))
        deleted = start = 0
        while start < len(keys):
            try:
                self.delete_batch(keys[start:])
            except OSError as e:
                if e.errno != _errno.ENOENT:
                    raise
                deleted += e.done
                start += e.done + 1         # skip the missing key
                continue
            deleted += len(keys) - start
            break
        return deleted

    def lookup_batch(self, chunk=1024):
        """All (key, value) pairs, read with MAP_LOOKUP_BATCH."""
        out = []
        # The hash map's batch token is a u32 bucket index; 8 bytes covers
        # every map type's token size we use.
        tok_in = ffi.new("char[8]")
        tok_out = ffi.new("char[8]")
        first = True
        while True:
            keys = ffi.new("char[]", chunk * self.key_size)
            vals = ffi.new("char[]", chunk * self.value_size)
            attr = self._batch_attr(keys, vals, chunk)
            attr.in_batch = 0 if first else _addr(tok_in)
            attr.out_batch = _addr(tok_out)
            done = False
            try:
                bpf(MAP_LOOKUP_BATCH, attr)
            except OSError as e:
                if e.errno == _errno.ENOSPC:   # one bucket > chunk
                    chunk *= 2
                    continue
                if e.errno != _errno.ENOENT:   # ENOENT: end of map
                    raise
                done = True
            kb, vb = ffi.buffer(keys), ffi.buffer(vals)
            ks, vs = self.key_size, self.value_size
            for i in range(attr.count):
                out.append((kb[i * ks:(i + 1) * ks], vb[i * vs:(i + 1) * vs]))
            if done:
                return out
            ffi.memmove(tok_in, tok_out, 8)
            first = False

    def __len__(self):
        return len(self.keys())


def prog_load(insns, license, prog_type=PROG_TYPE_SCHED_CLS, name="",
              log_size=1 << 20):
    """Load ``insns`` (bytes, 8 per instruction) and return the prog fd.

    The verifier log is only requested after a first failure, because
    asking for it slows every load down.
    """
    ibuf = ffi.from_buffer(insns)
    lic = ffi.new("char[]", license.encode())

    def attempt(log_level):
        attr = ffi.new("struct attr_prog_load *")
        attr.prog_type = prog_type
        attr.insn_cnt = len(insns) // 8
        attr.insns = _addr(ibuf)
        attr.license = _addr(lic)
        _name(attr.prog_name, name)
        log = None
        if log_level:
            log = ffi.new("char[]", log_size)
            attr.log_level = log_level
            attr.log_size = log_size
            attr.log_buf = _addr(log)
        return attr, log

    attr, _ = attempt(0)
    try:
        return bpf(PROG_LOAD, attr)
    except OSError as e:
        if e.errno not in (_errno.EINVAL, _errno.EACCES, _errno.E2BIG):
            raise
        first = e
    attr, log = attempt(1)
    try:
        return bpf(PROG_LOAD, attr)   # flaky first failure: fine now
    except OSError as e:
        text = ffi.string(log).decode(errors="replace")
        if text.strip():
            raise BpfVerifierError(e.errno, "PROG_LOAD", text) from first
        raise


def obj_pin(fd, path):
    """Pin a map or program fd at ``path`` on a mounted bpffs."""
    attr = ffi.new("struct attr_obj *")
    p = ffi.new("char[]", os.fsencode(path))
    attr.pathname = _addr(p)
    attr.bpf_fd = fd
    bpf(OBJ_PIN, attr, str(path))


def test_run(prog_fd, data, repeat=1, out_size=None):
    """BPF_PROG_TEST_RUN: run the program on ``data`` ``repeat`` times.

    Returns ``(retval, data_out, duration_ns)``; ``duration_ns`` is the
    kernel's average per run.
    """
    out_size = out_size or max(len(data) + 256, 4096)
    din = ffi.from_buffer(data)
    dout = ffi.new("char[]", out_size)
    attr = ffi.new("struct attr_test_run *")
    attr.prog_fd = prog_fd
    attr.data_size_in = len(data)
    attr.data_size_out = out_size
    attr.data_in = _addr(din)
    attr.data_out = _addr(dout)
    attr.repeat = repeat
    bpf(PROG_TEST_RUN, attr)
    return attr.retval, ffi.buffer(dout, attr.data_size_out)[:], attr.duration
