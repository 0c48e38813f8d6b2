#!/usr/bin/env bash
# Install the Debian (and a few PyPI) packages the project needs, by group.
#
#   bash scripts/system-deps.sh vm        # real-kernel IPVS tests in a qemu VM
#   bash scripts/system-deps.sh bpf       # building/loading the tc BPF program
#   bash scripts/system-deps.sh vm bpf    # both
#
# Idempotent: packages already installed (dpkg -s) are skipped, and
# `apt-get update` runs only when something is missing. Needs root (or sudo).
set -euo pipefail

# --- groups ---------------------------------------------------------------
# vm: qemu (TCG is enough), Debian's stock kernel (ships ip_vs as modules),
#     ipvsadm, busybox, kmod (modprobe in the guest), iproute2 (ip netns/veth),
#     socat (tiny TCP/UDP servers/clients in the guest).
VM_PKGS=(qemu-system-x86 linux-image-amd64 ipvsadm busybox-static kmod
         iproute2 socat procps)
# bpf: clang for -target bpf (ipvs_py/bpf/build.py), the kernel UAPI headers
#      it includes (linux-libc-dev), ip/tc for the namespaces (iproute2),
#      llvm for llvm-objdump when debugging the object.
BPF_PKGS=(clang llvm linux-libc-dev iproute2)

usage() { echo "usage: $0 {vm|bpf}..." >&2; exit 2; }
[ $# -ge 1 ] || usage

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "system-deps: need root or sudo" >&2; exit 1; }
    SUDO="sudo"
fi

want=()
pip_vng=0
for g in "$@"; do
    case "$g" in
        vm)  want+=("${VM_PKGS[@]}"); pip_vng=1 ;;
        bpf) want+=("${BPF_PKGS[@]}") ;;
        *)   echo "system-deps: unknown group '$g'" >&2; usage ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    if dpkg -s "$p" >/dev/null 2>&1 \
       && dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        echo "system-deps: $p already installed"
    else
        # de-duplicate
        case " ${missing[*]-} " in *" $p "*) ;; *) missing+=("$p") ;; esac
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "system-deps: installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
else
    echo "system-deps: all Debian packages present"
fi

if [ "$pip_vng" = 1 ]; then
    py="${PYTHON:-python3}"
    # vng is the virtme-ng front end; it execs `virtme-run`, which lives in
    # the same scripts dir. The harness (tests/kernel/vm.py) puts that dir
    # on PATH itself.
    bindir="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    if command -v vng >/dev/null 2>&1 || [ -x "$bindir/vng" ]; then
        echo "system-deps: virtme-ng already installed ($(command -v vng || echo "$bindir/vng"))"
    else
        echo "system-deps: pip install virtme-ng (with $py)"
        "$py" -m pip install -q virtme-ng
        # pyenv only shows new console scripts through its shims after this
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    fi
    if [ ! -x "$bindir/virtme-run" ] && ! command -v virtme-run >/dev/null 2>&1; then
        echo "system-deps: warning: virtme-run not found in $bindir nor on PATH" >&2
    else
        echo "system-deps: virtme-run at $(command -v virtme-run || echo "$bindir/virtme-run")"
    fi
    case ":$PATH:" in
        *":$bindir:"*) ;;
        *) echo "system-deps: note: $bindir is not on PATH; tests/kernel/vm.py adds it itself" ;;
    esac
fi
echo "system-deps: done ($*)"
