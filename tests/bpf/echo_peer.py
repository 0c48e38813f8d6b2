"""Echo server / client run inside the test namespaces (as scripts).

server HOST TCPPORT UDPPORT: answer one TCP connection and one UDP
  datagram with b"echo:<data>|peer=<addr>:<port>" so the client can see
  which source address the real server saw (masq keeps the client's).
  Over TCP the client first sends BULK bytes (segmentation offload and GRO
  at work) and <data> is their sha256 prefix plus the closing text.
client VIP TCPPORT UDPPORT CPORT_TCP CPORT_UDP: send, print what came back
  and from where, as one line per protocol.
listen-udp HOST PORT SECONDS: print "ready", then "got <data>" for the
  first datagram within SECONDS, or "nothing".
send-udp VIP PORT CPORT: send one datagram from CPORT.
Socket timeouts only bound a failing run; nothing asserts on time.
"""
import hashlib
import socket
import sys

BULK = 4 << 20   # 4 MiB: many full-size and offloaded segments

TIMEOUT = 10


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def peer_text(peer):
    return f"|peer={peer[0]}:{peer[1]}".encode()


def server(host, tport, uport):
    t = socket.socket(family(host))
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((host, tport))
    t.listen(1)
    u = socket.socket(family(host), socket.SOCK_DGRAM)
    u.bind((host, uport))
    t.settimeout(TIMEOUT)
    u.settimeout(TIMEOUT)
    print("ready", flush=True)
    conn, peer = t.accept()
    with conn:
        got, h = 0, hashlib.sha256()
        tail = b""
        while got < BULK or not tail.endswith(b"tcp-ping"):
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise SystemExit("client closed early")
            take = min(len(chunk), max(BULK - got, 0))
            h.update(chunk[:take])
            got += take
            tail += chunk[take:]
        digest = h.hexdigest()[:16].encode()
        conn.sendall(b"echo:" + digest + b"+" + tail + peer_text(peer))
    data, peer = u.recvfrom(4096)
    u.sendto(b"echo:" + data + peer_text(peer), peer)


def client(vip, tport, uport, ctport, cuport):
    fam = family(vip)
    anyaddr = "::" if fam == socket.AF_INET6 else "0.0.0.0"
    t = socket.socket(fam)
    t.settimeout(TIMEOUT)
    t.bind((anyaddr, ctport))
    t.connect((vip, tport))
    bulk = bytes(range(256)) * (BULK // 256)
    t.sendall(bulk + b"tcp-ping")
    print("tcp", t.recv(4096).decode(),
          "sent=" + hashlib.sha256(bulk).hexdigest()[:16], flush=True)
    t.close()
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(TIMEOUT)
    u.bind((anyaddr, cuport))
    u.sendto(b"udp-ping", (vip, uport))
    data, src = u.recvfrom(4096)
    print("udp", data.decode(), f"from={src[0]}:{src[1]}", flush=True)


def listen_udp(host, port, seconds):
    u = socket.socket(family(host), socket.SOCK_DGRAM)
    u.bind((host, port))
    u.settimeout(seconds)
    print("ready", flush=True)
    try:
        data, _ = u.recvfrom(4096)
    except socket.timeout:
        print("nothing", flush=True)
    else:
        print("got", data.decode(), flush=True)


def send_udp(vip, port, cport):
    fam = family(vip)
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", cport))
    u.sendto(b"udp-probe", (vip, port))


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "server":
        server(args[0], int(args[1]), int(args[2]))
    elif role == "listen-udp":
        listen_udp(args[0], int(args[1]), float(args[2]))
    elif role == "send-udp":
        send_udp(args[0], int(args[1]), int(args[2]))
    else:
        client(args[0], *map(int, args[1:]))
