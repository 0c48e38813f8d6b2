# Guest side of tests/kernel/test_ops_vs_kernel.py (one boot): netns "lb"
# (the balancer: VIP 10.0.0.1 on a dummy, NAT), client netns "cl" and real
# server netns "rs" (10.0.1.1 and 10.0.1.2) joined by veth pairs; servers
# in rs; then tests/kernel/guest/ops_driver.py runs every ipvs-py command.
set -u
cd "$OUT"
modprobe ip_vs
{
set -ex
ip netns add lb; ip netns add cl; ip netns add rs
for ns in lb cl rs; do ip -n $ns link set lo up; done
ip netns exec lb sysctl -qw net.ipv4.ip_forward=1
ip -n lb link add dummy0 type dummy
ip -n lb link set dummy0 up
ip -n lb addr add 10.0.0.1/32 dev dummy0
ip link add lb-cl netns lb type veth peer name cl0 netns cl
ip link add lb-rs netns lb type veth peer name rs0 netns rs
ip -n lb addr add 10.0.2.1/24 dev lb-cl; ip -n lb link set lb-cl up
ip -n lb addr add 10.0.1.254/24 dev lb-rs; ip -n lb link set lb-rs up
ip -n cl addr add 10.0.2.2/24 dev cl0; ip -n cl link set cl0 up
ip -n cl route add default via 10.0.2.1
ip -n rs addr add 10.0.1.1/24 dev rs0; ip -n rs addr add 10.0.1.2/24 dev rs0
ip -n rs link set rs0 up
ip -n rs route add default via 10.0.1.254
set +ex
} > net_setup.log 2>&1
ip netns exec rs socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hello; sleep 60' \
    > srv80.log 2>&1 &
ip netns exec rs socat TCP-LISTEN:8081,fork,reuseaddr SYSTEM:'echo hello; sleep 60' \
    > srv8081.log 2>&1 &
ip netns exec rs socat -u UDP-RECV:5353 /dev/null > srv5353.log 2>&1 &
ip netns exec rs socat -u UDP-RECV:5354 /dev/null > srv5354.log 2>&1 &
for i in $(seq 50); do
    ip netns exec rs ss -ltn 2> /dev/null | grep -q ':80 ' && break; sleep 0.1
done
"$PY" "$REPO/tests/kernel/guest/ops_driver.py" "$OUT"
rc=$?
ip netns exec lb ipvsadm -Ln > ipvsadm_final.txt 2>&1
exit $rc
