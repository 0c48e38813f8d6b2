"""Errors raised by the BPF fast path.

Every failure of bpf(2) becomes a :class:`BpfError` (an ``OSError`` with the
errno kept), narrowed to a subclass where the caller can act on it: tests
skip on :class:`BpfPermissionError` and :class:`BpfUnsupportedError`, the
session mirror reports :class:`BpfMapFullError` to the model.
"""
import errno as _errno
import os


class BpfError(OSError):
    """A bpf(2) command failed; ``.errno`` and ``.command`` say which."""

    def __init__(self, err, command, detail=""):
        msg = f"bpf({command}): {os.strerror(err)}"
        if detail:
            msg += f": {detail}"
        super().__init__(err, msg)
        self.command = command

    def __str__(self):
        return self.strerror


class BpfPermissionError(BpfError):
    """EPERM/EACCES: needs root or CAP_BPF (+CAP_NET_ADMIN for tc programs),
    or kernel.unprivileged_bpf_disabled forbids it."""


class BpfUnsupportedError(BpfError):
    """ENOSYS/EOPNOTSUPP, or EINVAL from a batch command (unknown to
    kernels before 5.6; our batch arguments are checked before the call):
    this kernel lacks the needed BPF support."""


class BpfMapFullError(BpfError):
    """E2BIG on insert: the map holds max_entries already."""


class BpfVerifierError(BpfError):
    """The verifier rejected the program; ``.log`` holds its log."""

    def __init__(self, err, command, log):
        tail = "\n".join(log.strip().splitlines()[-20:])
        super().__init__(err, command, "verifier rejected the program:\n" + tail)
        self.log = log


class BpfBuildError(RuntimeError):
    """The tc program could not be compiled (clang missing or failed)."""


class ElfError(ValueError):
    """The BPF object file is malformed or uses something the loader
    does not support (only map relocations are accepted)."""


def from_errno(err, command, detail=""):
    """Map an errno from ``command`` to the most specific BpfError; the
    message says what the caller was doing (``detail``) and, for the
    classes a user can act on, what to do."""
    hint = ""
    if err in (_errno.EPERM, _errno.EACCES):
        cls = BpfPermissionError
        hint = "needs root (CAP_BPF/CAP_SYS_ADMIN, CAP_NET_ADMIN for tc)"
    elif err in (_errno.ENOSYS, _errno.EOPNOTSUPP):
        cls = BpfUnsupportedError
        hint = "this kernel lacks the BPF support for it"
    elif err == _errno.EINVAL and command.endswith("_BATCH"):
        cls = BpfUnsupportedError
        hint = "batch map operations need Linux 5.6 or later"
    elif err == _errno.E2BIG and command in ("MAP_UPDATE_ELEM", "MAP_UPDATE_BATCH"):
        cls = BpfMapFullError
        hint = "map is full (max_entries reached)"
    else:
        cls = BpfError
    return cls(err, command, "; ".join(x for x in (detail, hint) if x))
