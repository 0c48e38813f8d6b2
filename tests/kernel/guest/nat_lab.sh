# Sourced by kernel-VM scripts: the NAT/DR lab in the guest.
#   client netns "cl" 10.0.2.2 --veth-- LB (guest root netns: VIP
#   10.0.0.1 on dummy0, 10.0.2.1 / 10.0.1.254) --veth-- real-server netns
#   "rs" 10.0.1.1 and 10.0.1.2 (default route via the LB, the VIP on lo
#   for DR).  Commands are traced to net_setup.log in the cwd.
{
set -x
sysctl -qw net.ipv4.ip_forward=1
ip link add dummy0 type dummy && ip link set dummy0 up && ip addr add 10.0.0.1/32 dev dummy0
ip netns add cl && ip netns add rs
ip link add lb-cl type veth peer name cl0 && ip link set cl0 netns cl
ip link add lb-rs type veth peer name rs0 && ip link set rs0 netns rs
ip addr add 10.0.2.1/24 dev lb-cl && ip link set lb-cl up
ip addr add 10.0.1.254/24 dev lb-rs && ip link set lb-rs up
ip -n cl addr add 10.0.2.2/24 dev cl0 && ip -n cl link set cl0 up && ip -n cl link set lo up
ip -n cl route add default via 10.0.2.1
ip -n rs addr add 10.0.1.1/24 dev rs0 && ip -n rs addr add 10.0.1.2/24 dev rs0
ip -n rs link set rs0 up && ip -n rs link set lo up
ip -n rs route add default via 10.0.1.254
ip -n rs addr add 10.0.0.1/32 dev lo
set +x
} > net_setup.log 2>&1
