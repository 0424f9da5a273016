#!/bin/sh
# Issue 10: a real VMM. Sourced by scenarios.sh (busybox sh, in the lab guest). Debian's QEMU,
# packed by Tests/Lab/realvmm-boot.sh into /vmm/root (a root of its own: the host's QEMU 7.2 or
# trixie's), boots a Debian kernel (/vmm/root/inner) whose own e1000e driver owns the lab guest's
# e1000e through vfio-pci. irqscope serves and records the whole run, 'irqscope trace' follows
# QEMU, QEMU traces its own vfio_msi* events; the inner guest prints its ground truth on its
# serial console (Tests/Lab/guest/inner-init) and waits for "go" before powering off.

REALVMM_DEVICE=0000:00:05.0
REALVMM_GUEST=inner
# an e1000e on the line of REALVMM_DEVICE's INTx pin (slots 5 and 13 share PIRQF on q35), driven by
# the lab kernel's e1000e in INTx mode for the raising run: what the NIC raises while QEMU has
# MSI-X off then meets a handler that says IRQ_NONE, evidence the host can count
REALVMM_SPARE=0000:00:0d.0

# progress on the lab guest's console (the host's console.log), besides the scenario log
progress() { echo "realvmm: $* (uptime $(cut -d' ' -f1 /proc/uptime))" | tee -a $R/realvmm.progress > /dev/console; }

wait_line() { # wait_line FILE PATTERN SECONDS [PID]: polling once a second (each poll costs under
    n=$3          # TCG); gives up early when PID (QEMU's tracer) is gone
    while [ $n -gt 0 ]; do
        grep -q "$2" $1 2>/dev/null && return 0
        [ -n "${4:-}" ] && ! kill -0 $4 2>/dev/null && return 1
        sleep 1; n=$((n - 1))
    done
    return 1
}

real_vmm() { # real_vmm QEMU_NAME
    q=$1
    root=/vmm/root
    dev=$REALVMM_DEVICE
    g=$REALVMM_GUEST
    t0=$(cut -d' ' -f1 /proc/uptime)
    echo "qemu=$q guest=$g device=$dev outer_cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' _) inner_cpu=$(cat /vmm/inner-cpu) lab_kernel=$(uname -r)" > $R/realvmm.info
    echo vfio-pci > /sys/bus/pci/devices/$dev/driver_override
    load vfio-pci
    [ "$(basename "$(readlink /sys/bus/pci/devices/$dev/driver)")" = vfio-pci ] || { log "$dev not bound to vfio-pci"; return 1; }
    vmm_root_mount $root
    mkfifo /tmp/inner.in /tmp/inner.out
    (cat /tmp/inner.out | tee $R/realvmm.console | grep -E "^inner|Kernel panic|Oops|BUG:|double fault|Power down" > /dev/console) &
    CAT=$!
    exec 3<>/tmp/inner.in
    progress "$dev bound to vfio-pci; starting irqscope"
    start_irqscope realvmm || return 1
    inner_cpu=$(cat /vmm/inner-cpu 2>/dev/null || echo max)
    accel=$(cat /vmm/inner-accel 2>/dev/null || echo tcg)
    if [ "$accel" = kvm ]; then
        load kvm_amd
        [ -c /dev/kvm ] || { log "no /dev/kvm after loading kvm_amd: $(dmesg | grep -iE 'kvm|svm' | tail -3)"; return 1; }
        # KVM's own count of what reached the guest: each MSI it was handed (kvm_msi_set_irq) and
        # each interrupt it injected into the vCPU (kvm_inj_virq); an MSI whose vector is still
        # pending in the guest's APIC merges into it and is never injected on its own
        tr=/sys/kernel/tracing
        echo 0 > $tr/tracing_on; echo > $tr/trace; echo 4096 > $tr/buffer_size_kb
        echo 1 > $tr/events/kvm/kvm_msi_set_irq/enable
        echo 1 > $tr/events/kvm/kvm_inj_virq/enable
        echo 1 > $tr/tracing_on
    fi
    # QEMU as the lab's VMM: KVM (the lab guest's CPU emulates AMD SVM) or TCG, one vCPU, the passed-through NIC as its only added PCI device
    set -- chroot $root /usr/bin/qemu-system-x86_64 -name guest=$g -machine q35 -accel $accel -cpu $inner_cpu \
        -m 512 -smp 1 -nodefaults -display none -no-reboot -monitor none \
        -serial pipe:/tmp/inner -pidfile /tmp/qemu.pid \
        -device vfio-pci,host=$dev,rombar=0 \
        -kernel /inner/vmlinuz -initrd /inner/initrd.cpio \
        -append "console=ttyS0 quiet panic=-1 $(cat /vmm/inner-append 2>/dev/null)" \
        -trace 'vfio_msi*' -trace 'vfio_intx*'
    echo "$*" > $R/realvmm.qemu.cmdline
    t1=$(cut -d' ' -f1 /proc/uptime)
    # QEMU's own output to a log of its own (the trace's stdout is JSON); exec keeps one pid.
    # --qemu-trace hands QEMU its log as -D /proc/self/fd/N (a pipe to irqscope): the wrapper puts
    # a tee on the way, so QEMU's own bytes land in realvmm.qemu-trace.log too, the ground truth
    # the checks hold irqscope's merged steps against
    cat > /tmp/logged <<'EOF'
#!/bin/sh
log=$1; tracelog=$2; shift 2
n=; prev=
for a in "$@"; do [ "$prev" = -D ] && n=${a#/proc/self/fd/}; prev=$a; done
[ -n "$n" ] || { echo "logged: no -D /proc/self/fd/N in $*" >&2; exit 1; }
rm -f /tmp/qemu-trace.fifo; mkfifo /tmp/qemu-trace.fifo
eval "tee $tracelog < /tmp/qemu-trace.fifo >&$n &"
eval "exec \"\$@\" > \"\$log\" 2>&1 $n> /tmp/qemu-trace.fifo"
EOF
    chmod 755 /tmp/logged
    irqscope trace --json --record $R/realvmm.trace.rec --qemu-trace -- /tmp/logged $R/realvmm.qemu.log $R/realvmm.qemu-trace.log "$@" \
        > $R/realvmm.trace.json 2> $R/realvmm.trace.err &
    T=$!
    progress "started $q"
    # (QEMU removes its pid file when it exits: the checks get a copy)
    wait_line /tmp/qemu.pid . 120 && cp /tmp/qemu.pid $R/realvmm.qemu.pid || log "QEMU wrote no pid file"
    wait_line $R/realvmm.console "inner: init" 900 $T; t2=$(cut -d' ' -f1 /proc/uptime)
    if wait_line $R/realvmm.console inner-truth 600 $T; then
        t3=$(cut -d' ' -f1 /proc/uptime)
        # the guest is quiet now (its interface down): what irqscope and the kernel say meanwhile
        truth realvmm $dev
        scrape realvmm.metrics
    else
        t3=-
        log "the inner guest printed no ground truth"; tail -20 $R/realvmm.console
    fi
    progress "scraped; telling the inner guest to power off"
    echo go >&3
    # the guest powers off; QEMU exits
    n=600; while [ $n -gt 0 ] && kill -0 $T 2>/dev/null; do sleep 1; n=$((n - 1)); done
    kill -0 $T 2>/dev/null && { log "QEMU still running: killing it"; kill $(cat $R/realvmm.qemu.pid); }
    wait $T
    echo "exit=$?" >> $R/realvmm.trace.err
    t4=$(cut -d' ' -f1 /proc/uptime)
    [ "$accel" = kvm ] && { echo 0 > $tr/tracing_on; grep -E 'kvm_msi_set_irq|kvm_inj_virq' $tr/trace > $R/realvmm.kvm-trace; }
    progress "QEMU exited: $(tail -2 $R/realvmm.trace.err | tr '\n' ' ')"
    sleep 1
    truth realvmm-after $dev
    scrape realvmm-after.metrics
    irqscope replay $R/realvmm.trace.rec > $R/realvmm.replay.txt 2>&1
    echo "exit=$?" >> $R/realvmm.replay.txt
    stop_irqscope realvmm
    exec 3>&-
    kill $CAT 2>/dev/null
    vmm_root_umount $root
    echo "setup=$t0 qemu_start=$t1 inner_init=$t2 inner_truth=$t3 qemu_exit=$t4" > $R/realvmm.timings
    # (read whole before appending: awk reading the file it appends to never ends)
    since=$(awk -v s=$t1 '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[2] != "-" && kv[1] != "setup" && kv[1] != "qemu_start") printf "%s_after_qemu_start=%.1f ", kv[1], kv[2] - s } }' $R/realvmm.timings)
    echo "$since" >> $R/realvmm.timings
}

vmm_root_mount() { for d in dev proc sys tmp results; do mkdir -p $1/$d; mount --bind /$d $1/$d; done; }
vmm_root_umount() { for d in results tmp sys proc dev; do umount $1/$d; done; }

# Issue 12: the same QEMU boots the inner kernel again, now with a vIOMMU (so that the inner guest
# can run vfio-pci itself) and two vCPUs: the lab's VMM program in the inner guest keeps the NIC
# raising interrupts on vector 0 while it adds vectors 1-4 (Tests/Lab/vmm.c --raise-while-growing).
# The vIOMMU has the lab guest's 39 address bits (QEMU 10 defaults to 48, then refuses the device:
# "aw-bits 48 > host aw-bits 39").
# Each add unmasks a vector QEMU has not allocated on this host yet: QEMU < 8.2 disables MSI-X and
# enables it again, and what the NIC raises meanwhile is lost. The inner guest counts what it
# raised and what arrived; irqscope serves its view of the same run.
real_vmm_raise() { # real_vmm_raise QEMU_NAME
    q=$1
    root=/vmm/root
    dev=$REALVMM_DEVICE
    g=raiser
    [ -e /sys/bus/pci/devices/$REALVMM_SPARE ] || { log "no $REALVMM_SPARE to share $dev's line"; return 1; }
    load e1000e IntMode=0
    netdev_up $REALVMM_SPARE
    sleep 1
    line=$(cat /sys/bus/pci/devices/$dev/irq)
    echo "line=$line shared_with=$REALVMM_SPARE actions=$(cat /sys/kernel/irq/$line/actions 2>/dev/null) $(tr '\n' ' ' < /proc/irq/$line/spurious)" > $R/realvmm-raise.line-before
    vmm_root_mount $root
    mkfifo /tmp/raise.in /tmp/raise.out
    (cat /tmp/raise.out | tee $R/realvmm-raise.console | grep -E "^inner|Kernel panic|Oops|BUG:|double fault|Power down" > /dev/console) &
    CAT=$!
    exec 4<>/tmp/raise.in
    start_irqscope realvmm-raise || return 1
    accel=$(cat /vmm/inner-accel 2>/dev/null || echo tcg)
    [ "$accel" = kvm ] && load kvm_amd
    set -- chroot $root /usr/bin/qemu-system-x86_64 -name guest=$g -machine q35,kernel-irqchip=split -accel $accel \
        -cpu "$(cat /vmm/inner-cpu 2>/dev/null || echo max)" -m 512 -smp 2 -nodefaults -display none -no-reboot -monitor none \
        -serial pipe:/tmp/raise -pidfile /tmp/qemu-raise.pid \
        -device intel-iommu,intremap=on,caching-mode=on,aw-bits=39 -device vfio-pci,host=$dev,rombar=0 \
        -kernel /inner/vmlinuz -initrd /inner/initrd.cpio \
        -append "console=ttyS0 quiet panic=-1 intel_iommu=on inner.raise $(cat /vmm/inner-append 2>/dev/null)" \
        -trace 'vfio_msi*' -trace 'vfio_intx*' -D /results/realvmm-raise.qemu-trace.log
    echo "$*" > $R/realvmm-raise.qemu.cmdline
    "$@" > $R/realvmm-raise.qemu.log 2>&1 &
    Q=$!
    progress "raising run: started $q"
    wait_line /tmp/qemu-raise.pid . 120 && cp /tmp/qemu-raise.pid $R/realvmm-raise.qemu.pid
    if wait_line $R/realvmm-raise.console inner-raise-done 900 $Q; then
        sleep 1
        echo "line=$line $(tr '\n' ' ' < /proc/irq/$line/spurious)" > $R/realvmm-raise.line
        scrape realvmm-raise.metrics
    else
        log "the raising run printed no result"; tail -20 $R/realvmm-raise.console
    fi
    echo go >&4
    n=300; while [ $n -gt 0 ] && kill -0 $Q 2>/dev/null; do sleep 1; n=$((n - 1)); done
    kill -0 $Q 2>/dev/null && { log "QEMU still running: killing it"; kill $Q; }
    wait $Q
    echo "exit=$?" >> $R/realvmm-raise.qemu.log
    progress "raising run: QEMU exited"
    stop_irqscope realvmm-raise
    exec 4>&-
    kill $CAT 2>/dev/null
    vmm_root_umount $root
}
