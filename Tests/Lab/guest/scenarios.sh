#!/bin/sh
# Lab scenarios, run inside the guest (busybox sh). Everything under /results goes back to the
# host, where Tests/LabTests compares irqscope's view with the kernel's own ground truth written
# here: msi_irqs, /sys/kernel/irq/N/actions, /proc/interrupts and the VMM's log.
set -u
R=/results
PORT=10341
URL=http://127.0.0.1:$PORT

log() { echo "lab: $*"; echo "lab: $*" > /dev/console; }   # the console shows progress live
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# load MODULE [PARAMS...]: insmod it and its dependencies, in the order the host computed;
# PARAMS go to MODULE itself
load() {
    target=$1; shift
    for ko in $(cat /lib/modules/deps/$target); do
        params=""
        [ "${ko%.ko}" = "$(echo $target | tr - _)" ] || [ "${ko%.ko}" = "$target" ] && params="$*"
        insmod /lib/modules/$ko $params 2>/tmp/insmod.err || grep -q 'File exists' /tmp/insmod.err || { log "insmod $ko: $(cat /tmp/insmod.err)"; }
    done
}

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds; status 42 from it gives up
    n=$(($1 * 10)); shift
    while [ $n -gt 0 ]; do
        "$@" >/dev/null 2>&1; rc=$?
        [ $rc = 0 ] && return 0; [ $rc = 42 ] && return 1
        sleep 0.1; n=$((n - 1))
    done
    return 1
}

# start_irqscope NAME [irqscope flags]: an exporter recording to NAME.rec; what it attached (its
# /probes, doctor's JSON) to NAME.doctor.json. With DOCTOR=1, `irqscope doctor --json` too, to
# NAME.cli-doctor.json: a doctor run attaches everything again, which costs a TCG guest 20-90 s,
# so once per kernel (hostdrivers), where the checks compare it with the exporter's report.
start_irqscope() {
    name=$1; shift
    doctor=${DOCTOR:-0}; DOCTOR=0    # ash may keep a prefix assignment after the call
    t0=$(uptime_s)
    irqscope serve --web.listen-address=127.0.0.1:$PORT --record $R/$name.rec "$@" > $R/$name.serve.log 2>&1 &
    IRQSCOPE_PID=$!
    wait_for 120 serving $IRQSCOPE_PID $URL || { log "irqscope did not start: $(tail -1 $R/$name.serve.log)"; return 1; }
    t1=$(uptime_s)
    timeout 60 wget -q -O $R/$name.doctor.json $URL/probes || log "no /probes from $name"
    [ "$doctor" = 1 ] && irqscope doctor --json "$@" > $R/$name.cli-doctor.json 2>$R/$name.doctor.err
    echo "  $name: serve ready after $(echo "$t1 $t0" | awk '{print $1 - $2}') s, doctor took $(echo "$(uptime_s) $t1" | awk '{print $1 - $2}') s" | tee -a $R/timings > /dev/console
}

serving() { # serving PID URL: the exporter answers /healthz; 42 when it is gone (wait_for gives up)
    timeout 10 wget -q -O /dev/null $2/healthz && return 0
    kill -0 $1 2>/dev/null || return 42
    return 1
}

scrape() { # scrape FILE: metrics, then promtool's verdict on them
    timeout 60 wget -q -O $R/$1 $URL/metrics || log "scrape $1 failed"
    promtool check metrics < $R/$1 > $R/$1.promtool 2>&1
    echo "exit=$?" >> $R/$1.promtool
}

stop_irqscope() {
    kill -TERM $IRQSCOPE_PID
    wait $IRQSCOPE_PID
    echo "exit=$?" >> $R/$1.serve.log
}

# truth NAME BDF...: per device, the irqs it holds (msi_irqs) and which have an action
truth() {
    name=$1
    out=$R/$name.truth
    shift
    : > $out
    for bdf in "$@"; do
        d=/sys/bus/pci/devices/$bdf
        driver=$(basename "$(readlink $d/driver 2>/dev/null)" 2>/dev/null)
        irqs=$(ls $d/msi_irqs 2>/dev/null | sort -n | tr '\n' ' ')
        requested=""
        for irq in $irqs; do
            [ -n "$(cat /sys/kernel/irq/$irq/actions 2>/dev/null)" ] && requested="$requested $irq"
        done
        echo "device=$bdf driver=$driver allocated=$(echo $irqs | wc -w) requested=$(echo $requested | wc -w) irqs=$(echo $irqs | tr ' ' ,) requested_irqs=$(echo $requested | tr ' ' ,)" >> $out
    done
    cat /proc/interrupts > $R/$name.interrupts
}

netdev_up() { # bring up the netdevs of a PCI function (e1000e requests its irqs at open)
    for n in /sys/bus/pci/devices/$1/net/* /sys/bus/pci/devices/$1/virtio*/net/*; do
        [ -e "$n" ] && ip link set "$(basename $n)" up
    done
}

NVME=0000:00:04.0 E1000E=0000:00:05.0 ALPHA=0000:00:06.0 SPARE=0000:00:0e.0 VIRTIONET=0000:00:08.0

# Scenario 1 (and 4 with kprobes): host drivers allocate, request, and (nvme) free and reallocate.
host_drivers() { # host_drivers NAME [irqscope flags]
    name=$1; shift
    for bdf in $ALPHA $SPARE; do echo vfio-pci > /sys/bus/pci/devices/$bdf/driver_override; done
    [ "$name" = hostdrivers ] && DOCTOR=1
    start_irqscope $name "$@" || return 1
    load nvme
    load e1000e
    load virtio_net
    netdev_up $E1000E
    netdev_up $VIRTIONET
    wait_for 60 grep -q live /sys/class/nvme/nvme0/state || log "nvme0 never went live"
    sleep 2
    truth $name $NVME $E1000E $VIRTIONET
    scrape $name.metrics
    stop_irqscope $name
}

# What a kernel that offers neither fentry nor kprobes leaves: tracepoints only. The families
# that need function hooks must be reported unavailable (and alerted on), not hidden.
tracepoints_only() {
    start_irqscope tracepoints-only --attach=tp_btf,raw_tp || return 1
    scrape tracepoints-only.metrics
    stop_irqscope tracepoints-only
}

# Scenario 2: a VMM enables every vector of an e1000e through VFIO, holds them, exits.
vfio_one() {
    load vfio-pci
    start_irqscope vfio || return 1
    vmm -name guest=alpha --device $ALPHA --bind --hold 120 > $R/vfio.vmm.log 2>&1 &
    VMM=$!
    wait_for 120 grep -q READY $R/vfio.vmm.log || { log "vmm never ready"; cat $R/vfio.vmm.log; }
    sleep 1
    truth vfio $ALPHA
    scrape vfio.metrics
    # an exporter started while alpha holds its vectors: it must find them, and whose they are
    irqscope serve --web.listen-address=127.0.0.1:10343 > $R/vfio.late.serve.log 2>&1 &
    LATE=$!
    wait_for 120 timeout 10 wget -q -O /dev/null http://127.0.0.1:10343/healthz || log "the late exporter did not start"
    timeout 60 wget -q -O $R/vfio.late.metrics http://127.0.0.1:10343/metrics || log "scrape vfio.late.metrics failed"
    kill -TERM $LATE; wait $LATE
    kill -USR1 $VMM
    wait $VMM
    echo "exit=$?" >> $R/vfio.vmm.log
    sleep 1
    truth vfio-after $ALPHA
    scrape vfio-after.metrics
    stop_irqscope vfio
}

# Issue 4: two guests at once, each raising interrupts on its vectors; the host e1000e on
# 00:07.0 runs in legacy INTx mode on the line alpha shares, so that alpha's INTx during a
# NORESIZE window (6.1) meets a handler that says IRQ_NONE.
guests() {
    echo vfio-pci > /sys/bus/pci/devices/$ALPHA/driver_override
    echo vfio-pci > /sys/bus/pci/devices/$E1000E/driver_override
    load vfio-pci
    start_irqscope guests || return 1
    # a second exporter with a ring buffer of one page: it must count what it drops
    irqscope serve --web.listen-address=127.0.0.1:10342 --debug.ring-buffer-bytes=4096 > $R/guests.drops.serve.log 2>&1 &
    DROPS=$!
    wait_for 120 timeout 10 wget -q -O /dev/null http://127.0.0.1:10342/healthz || log "the small-ring exporter did not start"
    load e1000e IntMode=0
    netdev_up $SPARE
    sleep 1
    vmm -name guest=alpha --device $ALPHA --bind --raise 3 --raise-in-windows --hold 120 > $R/guests.alpha.log 2>&1 &
    A=$!
    # beta behaves like QEMU before 8.2: disable and re-enable to grow, even on a kernel with dynamic MSI-X
    vmm -name guest=beta --device $E1000E --bind --raise 3 --always-reenable --hold 120 > $R/guests.beta.log 2>&1 &
    B=$!
    wait_for 120 grep -q READY $R/guests.alpha.log || log "alpha never ready"
    wait_for 120 grep -q READY $R/guests.beta.log || log "beta never ready"
    sleep 1
    truth guests $ALPHA $E1000E $SPARE
    line=$(cat /sys/bus/pci/devices/$ALPHA/irq)
    echo "line=$line shared_with=$SPARE $(tr '\n' ' ' < /proc/irq/$line/spurious)" > $R/guests.line
    scrape guests.metrics
    timeout 60 wget -q -O $R/guests.drops.metrics http://127.0.0.1:10342/metrics
    kill -TERM $DROPS; wait $DROPS
    kill -USR1 $A $B
    wait $A; echo "exit=$?" >> $R/guests.alpha.log
    wait $B; echo "exit=$?" >> $R/guests.beta.log
    sleep 1
    scrape guests-after.metrics
    stop_irqscope guests
}

# Issue 12: alpha again, its line now without a handler (the host e1000e that shared it
# unloaded; vfio-pci keeps INTx off): the kernel keeps the line masked, so what alpha's device
# raises while MSI-X is off leaves no trace on the host. Runs after guests, in the same boot.
unshared() {
    rmmod e1000e 2>/dev/null
    line=$(cat /sys/bus/pci/devices/$ALPHA/irq)
    start_irqscope unshared || return 1
    vmm -name guest=alpha --device $ALPHA --bind --raise 3 --raise-in-windows --hold 120 > $R/unshared.alpha.log 2>&1 &
    A=$!
    wait_for 120 grep -q READY $R/unshared.alpha.log || log "alpha never ready"
    sleep 1
    echo "line=$line actions=$(cat /sys/kernel/irq/$line/actions 2>/dev/null) $(tr '\n' ' ' < /proc/irq/$line/spurious)" > $R/unshared.line
    scrape unshared.metrics
    kill -USR1 $A
    wait $A; echo "exit=$?" >> $R/unshared.alpha.log
    stop_irqscope unshared
}

# Issue 5: 'irqscope trace --json -- VMM' around a VFIO guest, an exporter serving the same run.
trace_vmm() {
    load vfio-pci
    start_irqscope trace || return 1
    # the exporter started above records to trace.rec: the trace's own recording is trace-cli.rec
    irqscope trace --json --record $R/trace-cli.rec -- \
        sh -c "vmm -name guest=gamma --device $ALPHA --bind --raise 1 --hold 4 > $R/trace.vmm.log 2>&1" \
        > $R/trace.json 2> $R/trace.err &
    T=$!
    wait_for 120 grep -q READY $R/trace.vmm.log || log "vmm never ready"
    sleep 0.5
    scrape trace.metrics
    wait $T
    echo "exit=$?" >> $R/trace.err
    irqscope replay $R/trace-cli.rec > $R/trace.replay.txt 2>&1
    echo "exit=$?" >> $R/trace.replay.txt
    stop_irqscope trace
}

# Scenario 3: on one CPU, a VMM enables vectors of a 400-vector nvme until the host runs out.
exhaustion() {
    load vfio-pci
    start_irqscope exhaustion || return 1
    vmm -name guest=hog --device $NVME --bind --vectors 400 --failures 3 --batches --hold 120 > $R/exhaustion.vmm.log 2>&1 &
    VMM=$!
    wait_for 600 grep -q READY $R/exhaustion.vmm.log || { log "vmm never ready"; tail $R/exhaustion.vmm.log; }
    sleep 1
    truth exhaustion $NVME
    scrape exhaustion.metrics
    kill -USR1 $VMM
    wait $VMM
    echo "exit=$?" >> $R/exhaustion.vmm.log
    stop_irqscope exhaustion
}

# Issue 13: a host of 256 possible CPUs (2 online; possible_cpus=256) and 2,000+ irqs: vfio-pci allocates
# an irq for each of the nvme's 2048 MSI-X entries, two of them requested (all would exhaust two
# CPUs' vectors). Then what irqscope's maps take, by the kernel's own account (the exporter's
# fdinfo, bpftool), and scrape times of irqscope and node_exporter's interrupts collector side by
# side. The exporter starts after the allocation, so that its counts map has a slot for each irq.
scale() {
    load vfio-pci
    msix-alloc --device $NVME --vectors 2048 --request 2 --hold 3000 > $R/scale.alloc.log 2>&1 &
    A=$!
    wait_for 900 grep -q READY $R/scale.alloc.log || { log "msix-alloc never ready: $(tail -1 $R/scale.alloc.log)"; return 1; }
    {
        echo "irqs=$(ls /sys/kernel/irq | wc -l)"
        echo "highest_irq=$(ls /sys/kernel/irq | sort -n | tail -1)"
        echo "device_irqs=$(ls /sys/bus/pci/devices/$NVME/msi_irqs | wc -l)"
        echo "requested=$(for i in $(ls /sys/bus/pci/devices/$NVME/msi_irqs); do cat /sys/kernel/irq/$i/actions; done | grep -c .)"
        echo "possible=$(cat /sys/devices/system/cpu/possible)"
        echo "online=$(cat /sys/devices/system/cpu/online)"
    } > $R/scale.kernel
    dmesg | grep -iE 'smpboot|possible|hotplug CPU' > $R/scale.dmesg
    start_irqscope scale || return 1
    prometheus-node-exporter --collector.disable-defaults --collector.interrupts --web.listen-address=127.0.0.1:9100 > $R/scale.node_exporter.log 2>&1 &
    NE=$!
    wait_for 120 timeout 10 wget -q -O /dev/null http://127.0.0.1:9100/metrics || log "node_exporter did not start"
    scrape scale.metrics
    timeout 60 wget -q -O $R/scale.node_exporter.metrics http://127.0.0.1:9100/metrics
    # the kernel's account of the exporter's maps: its fdinfo, and bpftool's view of the same ids
    for fd in /proc/$IRQSCOPE_PID/fd/*; do
        [ "$(readlink $fd)" = anon_inode:bpf-map ] || continue
        echo "fd=${fd##*/} $(grep -E '^(map_type|max_entries|memlock|map_id):' /proc/$IRQSCOPE_PID/fdinfo/${fd##*/} | tr -d '\t' | tr ':\n' '= ')"
    done > $R/scale.fdinfo
    bpftool -j map show > $R/scale.bpftool.json 2> $R/scale.bpftool.err
    log "timing scrapes"
    irqscope-bench scrapes --target irqscope=$PORT --target node_exporter=9100 --scrapes ${SCALE_SCRAPES:-300} > $R/scale.scrapes 2>&1
    echo "exit=$?" >> $R/scale.scrapes
    grep -E '^(VmRSS|Threads)' /proc/$IRQSCOPE_PID/status > $R/scale.irqscope.status
    grep -E '^(VmRSS|Threads)' /proc/$NE/status > $R/scale.node_exporter.status
    scrape scale-after.metrics
    kill -TERM $NE; wait $NE
    stop_irqscope scale
    # the knob: the kernel's account of the counts map with the slots capped below the irqs
    irqscope doctor --json --bpf.max-irq-slots=1024 > $R/scale-capped.doctor.json 2> $R/scale-capped.doctor.err
    kill -USR1 $A; wait $A; echo "exit=$?" >> $R/scale.alloc.log
}

# Issue 10: a real QEMU booting a real guest (Tests/Lab/guest/realvmm.sh)
. /bin/realvmm.sh

for scenario in $(echo "$1" | tr ',' ' '); do
    log "scenario $scenario"
    start=$(cut -d' ' -f1 /proc/uptime)
    case "$scenario" in
    doctor) irqscope doctor > $R/doctor.txt 2>&1; irqscope doctor --debug.libbpf > /dev/null 2> $R/doctor.libbpf.log ;;
    hostdrivers) host_drivers hostdrivers ;;
    hostdrivers-kprobe) host_drivers hostdrivers-kprobe --attach=kprobe,tp_btf ;;
    tracepoints-only) tracepoints_only ;;
    vfio) vfio_one ;;
    guests) guests ;;
    unshared) unshared ;;
    trace) trace_vmm ;;
    exhaustion) exhaustion ;;
    scale) scale ;;
    realvmm) real_vmm "$(cat /vmm/NAME)"; real_vmm_raise "$(cat /vmm/NAME)" ;;
    *) log "unknown scenario $scenario" ;;
    esac
    echo "$scenario start=$start end=$(cut -d' ' -f1 /proc/uptime)" >> $R/timings
done
