"""Read a network namespace's /proc files without moving the process.

/proc/net/* and /proc/sys/net/* show the namespace of the task that opens
them.  setns(2) moves only the calling thread, so a short-lived thread
enters the namespace and opens the file through /proc/thread-self (not
/proc/self, which names the thread-group leader, still in our namespace).
"""
from ..netlink.socket import run_in_netns


def read_in_netns(netns, paths):
    """``{path: text or None}`` for each of ``paths`` as seen from inside
    ``netns`` (None: ours).  A path that does not exist reads as None
    (e.g. /proc/net/ip_vs_conn before ip_vs is loaded).  Paths under
    ``/proc/net/`` are read through /proc/thread-self/net/."""
    def read_all():
        out = {}
        for p in paths:
            real = p.replace("/proc/net/", "/proc/thread-self/net/", 1)
            try:
                with open(real) as f:
                    out[p] = f.read()
            except FileNotFoundError:
                out[p] = None
        return out

    return run_in_netns(netns, read_all)


def read_sysctl(netns, name):
    """/proc/sys/net/ipv4/vs/<name> of ``netns`` as an int, None if absent."""
    path = f"/proc/sys/net/ipv4/vs/{name}"
    text = read_in_netns(netns, [path])[path]
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


#: the sysctls the model's packet path reads (ConnPath.sync_config)
PACKET_PATH_SYSCTLS = ("conn_reuse_mode", "expire_nodest_conn",
                       "expire_quiescent_template", "sloppy_tcp",
                       "sloppy_sctp")


def read_packet_sysctls(netns):
    """``((name, value), ...)`` of :data:`PACKET_PATH_SYSCTLS` in
    ``netns`` (absent ones left out), read in one visit."""
    paths = [f"/proc/sys/net/ipv4/vs/{n}" for n in PACKET_PATH_SYSCTLS]
    texts = read_in_netns(netns, paths)
    out = []
    for name, path in zip(PACKET_PATH_SYSCTLS, paths):
        text = texts[path]
        if text and text.split() and text.split()[0].lstrip("-").isdigit():
            out.append((name, int(text.split()[0])))
    return tuple(out)
