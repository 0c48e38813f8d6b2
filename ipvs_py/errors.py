"""Exceptions of the control plane.

The kernel answers a bad configuration request with an errno; ipvsadm turns
some of them into fixed messages (libipvs ``ipvs_strerror``).  The model keeps
both: :class:`IPVSError` carries the errno name the kernel would return and
the message ipvsadm would print, so a test can check either.
"""
import errno as _errno

__all__ = ["IPVSError", "RuleError", "NoSuchFile"]


class IPVSError(Exception):
    """A configuration request the kernel (or ipvsadm) would refuse.

    ``errno`` is the kernel's error number (``errno.EEXIST`` ...) or ``None``
    when ipvsadm itself refuses the command before asking the kernel.
    """

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.message = message
        self.errno = errno

    @property
    def errno_name(self):
        """Symbolic errno (``"EEXIST"``), or ``None`` for ipvsadm's own checks."""
        return _errno.errorcode.get(self.errno) if self.errno else None


class RuleError(IPVSError, ValueError):
    """A rule line that ``restore()`` refused; nothing was applied.

    ``line`` is the 1-based line number in the text given to ``restore()``,
    ``text`` the offending line, ``message`` what is wrong with it.
    """

    def __init__(self, line, message, text="", errno=None):
        super().__init__(message, errno)
        self.line = line
        self.text = text

    def __str__(self):
        return f"line {self.line}: {self.message}"


class NoSuchFile(FileNotFoundError):
    """A /proc file that the modelled kernel does not have (e.g.
    ``ip_vs_status`` on 6.1)."""
