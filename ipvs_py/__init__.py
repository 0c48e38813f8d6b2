"""ipvs_py: a userspace model of Linux IPVS (LVS).

The model keeps the kernel's IPVS tables and makes the kernel's decisions,
fast enough to replay millions of connections; see README.md and docs/.
"""
from ._core import load as _load

hashing = _load("hashing")
table = _load("table")

from .packets import PacketBatch  # noqa: E402  (after the core check)
from .icmp import IcmpError  # noqa: E402
from .errors import IPVSError, NoSuchFile, RuleError  # noqa: E402
from .service import Service  # noqa: E402
from .dest import Dest  # noqa: E402
from .netns import Netns  # noqa: E402

__version__ = "0.1.0"

__all__ = ["hashing", "table", "PacketBatch", "IcmpError", "Netns", "Service", "Dest",
           "IPVSError", "RuleError", "NoSuchFile", "__version__"]
