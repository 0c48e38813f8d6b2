# Guest side of tests/kernel/test_guest_ipvs.py: runs as root in the VM
# (tests/kernel/vm.py), writes everything the tests check into $OUT.
# One boot covers every scenario; each step records its own status so a
# failing step does not hide the others.
set -u
cd "$OUT"
step() { echo "== $*" >&2; }
save() { local f=$1; shift; "$@" > "$OUT/$f" 2> "$OUT/$f.err"; echo $? > "$OUT/$f.rc"; }

step kernel
uname -r > uname_r.txt
ipvsadm --version > ipvsadm_version.txt 2>&1

step python
# the host interpreter, its site-packages and this checkout (PYTHONPATH)
"$PY" -c 'import sys, ipvs_py; print(sys.version.split()[0]); print(ipvs_py.__file__)' \
    > guest_python.txt 2> guest_python.err; echo $? > guest_python.rc

step modprobe ip_vs
modprobe ip_vs; echo $? > modprobe_ip_vs.rc
lsmod > lsmod_after_ip_vs.txt
save ipvsadm_Ln_empty.txt ipvsadm -Ln
save proc_ip_vs_empty.txt cat /proc/net/ip_vs

step schedulers
: > schedulers.txt
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; do
    if modprobe "ip_vs_$s" 2> /dev/null; then st=ok; else st=missing; fi
    echo "$s $st" >> schedulers.txt
done

step basic service
ipvsadm -A -t 10.0.0.1:80 -s rr;                      echo $? > basic_add_svc.rc
ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2;     echo $? > basic_add_dest.rc
save basic_ipvsadm_Ln.txt ipvsadm -Ln
save basic_ipvsadm_S_n.txt ipvsadm -S -n
save basic_proc_ip_vs.txt cat /proc/net/ip_vs
save basic_proc_ip_vs_stats.txt cat /proc/net/ip_vs_stats
save basic_proc_ip_vs_conn.txt cat /proc/net/ip_vs_conn
# every /proc/sys/net/ipv4/vs/* as "name<TAB>value" (multi-value: tabs kept)
: > sysctl_vs.txt
for f in /proc/sys/net/ipv4/vs/*; do
    printf '%s\t%s\n' "${f##*/}" "$(cat "$f" 2>&1)" >> sysctl_vs.txt
done
ls -l /proc/sys/net/ipv4/vs/ > sysctl_vs_modes.txt

step mixed rules
# before any traffic: a deleted dest that still has conns waits in the dest
# trash and comes back (with its conn counters) when re-added
ipvsadm -C
ipvsadm -R < "$REPO/tests/kernel/guest/mixed_rules.txt" 2> mixed_restore.err; echo $? > mixed_restore.rc
save mixed_ipvsadm_Ln.txt ipvsadm -Ln
save mixed_ipvsadm_S_n.txt ipvsadm -S -n
save mixed_ipvsadm_Ln_stats.txt ipvsadm -Ln --stats
save mixed_ipvsadm_Ln_rate.txt ipvsadm -Ln --rate
save mixed_ipvsadm_Ln_thresholds.txt ipvsadm -Ln --thresholds
save mixed_ipvsadm_Ln_persistent.txt ipvsadm -Ln --persistent-conn
save mixed_proc_ip_vs.txt cat /proc/net/ip_vs

step one service per scheduler
ipvsadm -C
port=1000
: > sched_add.txt
while read -r s st; do
    [ "$st" = ok ] || continue
    port=$((port + 1))
    ipvsadm -A -t 10.9.0.1:$port -s "$s" && ipvsadm -a -t 10.9.0.1:$port -r 10.9.1.1:$port -m
    echo "$s $?" >> sched_add.txt
done < schedulers.txt
save sched_ipvsadm_S_n.txt ipvsadm -S -n
ipvsadm -C

step nat traffic
# the basic service again (the steps above cleared it)
ipvsadm -A -t 10.0.0.1:80 -s rr && ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
echo $? > traffic_rules.rc
. "$REPO/tests/kernel/guest/nat_lab.sh"     # cl -- LB -- rs
# tiny server in the real-server netns: greets, then keeps the conn open a while
ip netns exec rs socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hello-from-rs; sleep 20' \
    > rs_server.log 2>&1 &
srv=$!
for i in $(seq 50); do
    ip netns exec rs ss -ltn 2> /dev/null | grep -q ':80 ' && break; sleep 0.1
done
# conn 1: client closes right after the greeting (stdin EOF + socat -t)
ip netns exec cl timeout 20 socat -T 10 - TCP:10.0.0.1:80,sourceport=40001 \
    < /dev/null > client1.txt 2> client1.err; echo $? > client1.rc
# conn 2: held open while /proc/net/ip_vs_conn is read
(sleep 8) | ip netns exec cl timeout 20 socat -T 10 - TCP:10.0.0.1:80,sourceport=40002 \
    > client2.txt 2> client2.err &
cl2=$!
sleep 2
save traffic_proc_ip_vs_conn.txt cat /proc/net/ip_vs_conn
save traffic_ipvsadm_Lnc.txt ipvsadm -Lnc
save traffic_ipvsadm_Ln.txt ipvsadm -Ln
# Totals and per-service stats are folded in by the 2 s estimator, so under
# a slow (TCG, loaded) guest they can lag: wait, bounded, until it has run.
for i in $(seq 50); do
    [ "$(awk 'NR==3 {print $1}' /proc/net/ip_vs_stats)" = 2 ] && break; sleep 0.2
done
save traffic_ipvsadm_Ln_stats.txt ipvsadm -Ln --stats
save traffic_proc_ip_vs_stats.txt cat /proc/net/ip_vs_stats
wait $cl2; echo $? > client2.rc
kill $srv 2> /dev/null; wait $srv 2> /dev/null

dmesg > dmesg.txt 2>&1
step done
exit 0
