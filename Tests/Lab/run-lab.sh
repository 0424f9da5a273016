#!/usr/bin/env bash
# run-lab.sh OUTDIR [KERNELS [BOOTS]]
# The kernel lab: boots Debian's kernels (5.10, 6.1, 6.12, 6.18 and the newest 7.x, resolved by
# kernels.sh) under QEMU (TCG, q35, an IOMMU with interrupt remapping: Intel VT-d, or AMD-Vi on
# some boots) with nvme, e1000e and virtio-net devices, runs irqscope's scenarios in the guest
# and unpacks their results to OUTDIR/<kernel>/<boot>/. Tests/LabTests checks them.
#
# KERNELS (or IRQSCOPE_LAB_KERNELS): short names to boot, e.g. "6.1 7.3" (7.x: the newest 7);
#   empty: all. BOOTS (or IRQSCOPE_LAB_SCENARIOS): boot names, e.g. "main guests"; empty: all.
# IRQSCOPE_LAB_VMMS: the real-VMM cells (Tests/Lab/realvmm-boot.sh): "all" (its matrix: QEMU 7.2
#   on 6.1 and 6.12, QEMU 10 on 6.12 and 7.x), "none", or QEMU names, e.g. "qemu7.2"; empty: all
#   when no BOOTS are named, none otherwise.
# IRQSCOPE_LAB_JOBS: lab VMs run at once (default 1). Two at a time took 1.8-1.9x less wall time
#   on 2 cores, but one 6.12 guests boot under a loaded host then stalled for 15 min (a vCPU never
#   ran again, soft lockups in the guest): until that is understood, one at a time.
# IRQSCOPE_LAB_APPEND: more kernel command line, e.g. lab.heartbeat (the guest prints its busiest
#   processes and the exporter's last log line to the console every 15 s).
# IRQSCOPE_BENCH_BIN: the irqscope-bench release build the scale boot times scrapes with
#   (default: beside IRQSCOPE_BIN); the scale boot also takes node_exporter and bpftool from here.
# Each boot dir gets: console.log, the guest's results, boot-seconds, iommu (intel|amd), kernel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:?usage: run-lab.sh OUTDIR [KERNELS [BOOTS]]}
kernels=${2:-${IRQSCOPE_LAB_KERNELS:-}}
boots_wanted=${3:-${IRQSCOPE_LAB_SCENARIOS:-}}
if [ -z "${IRQSCOPE_LAB_VMMS:-}" ]; then
    if [ -z "$boots_wanted" ]; then IRQSCOPE_LAB_VMMS=all; else IRQSCOPE_LAB_VMMS=none; fi
fi
export IRQSCOPE_LAB_VMMS
jobs=${IRQSCOPE_LAB_JOBS:-1}
cache=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}
irqscope=${IRQSCOPE_BIN:-$top/.build/release/irqscope}
[ -x "$irqscope" ] || { echo "lab: no irqscope release build at $irqscope (run 'make release')" >&2; exit 1; }
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lab_start=$SECONDS

gcc -O2 -Wall -Werror -static "$here/vmm.c" -o "$work/vmm"

# The boots, each NAME:SMP:SCENARIOS[:KERNELS]. A boot runs on every kernel unless KERNELS
# (comma-separated short names) limits it: the scenarios' expectations follow what each kernel
# does (NORESIZE before 6.5, dynamic MSI-X after; hooks a kernel lacks are asserted absent from
# irqscope doctor's report by Tests/LabChecks). scale measures rather than covers kernels: once,
# on 6.1, whose possible_cpus= sets the possible CPUs (256; from 6.9 it only lowers them, and a
# 6.12 guest of QEMU 7.2 with -smp 2,maxcpus=255 had 2: no hotplug CPUs in its MADT; 256 needs
# x2APIC, which QEMU 7.2 emulates only with KVM's in-kernel irqchip).
all_boots=${IRQSCOPE_LAB_BOOTS:-"main:2:hostdrivers,vfio,trace guests:2:guests,unshared kprobe:2:hostdrivers-kprobe,tracepoints-only exhaustion:1:exhaustion scale:2:scale:6.1"}

# iommu SHORT BOOT: the interrupt remapping a boot uses. Intel VT-d everywhere, except AMD-Vi for
# the kprobe boot of 6.12 and the main boot of 6.18: AMD's irq_remapping_alloc is then checked
# through kprobes and through fentry/fexit, Intel's on every kernel. Not on 7.x: with QEMU 7.2's
# IVRS, 7.3 finds the IOAPIC entry (DEV_SPECIAL(IOAPIC[0]) 00:14.0) yet says "No southbridge
# IOAPIC found" and disables interrupt remapping.
iommu() {
    case "$1/$2" in
    6.12/kprobe | 6.18/main) echo amd ;;
    *) echo intel ;;
    esac
}

# boot SHORT VERSION VMLINUZ INITRD NAME SMP SCENARIOS IOMMU QEMU-DEVICE-ARGS...
boot() {
    local kernel=$1 version=$2 vmlinuz=$3 initrd=$4 name=$5 smp=$6 scenarios=$7 iommu=$8; shift 8
    local dir="$out/$kernel/$name" iommu_args cmdline
    rm -rf "$dir" && mkdir -p "$dir"
    case $iommu in
    # AMD-Vi remaps interrupts by default ("amd_iommu=on" is no option: "AMD-Vi: Unknown option")
    amd) iommu_args=(-device amd-iommu,intremap=on) cmdline="" ;;
    *) iommu_args=(-device intel-iommu,intremap=on,caching-mode=on) cmdline="intel_iommu=on" ;;
    esac
    echo "$iommu" > "$dir/iommu"
    echo "$version" > "$dir/kernel"
    local start=$SECONDS
    # no_timer_check: a TCG guest on a busy host can miss the IO-APIC timer test, and with
    # interrupt remapping on the kernel then panics ("timer doesn't work through
    # Interrupt-remapped IO-APIC": seen on 5.10 with VT-d and on 6.18 with AMD-Vi)
    local attempt
    for attempt in 1 2; do
        timeout 900 qemu-system-x86_64 -machine q35,kernel-irqchip=split -accel tcg -cpu max -smp "$smp" -m 1536 \
            -nographic -no-reboot -nodefaults -serial stdio \
            "${iommu_args[@]}" \
            "$@" -kernel "$vmlinuz" -initrd "$initrd" \
            -append "console=ttyS0 quiet panic=-1 no_timer_check $cmdline ${BOOT_APPEND:-} ${IRQSCOPE_LAB_APPEND:-} lab.scenario=$scenarios" \
            < /dev/null > "$dir/console.log" 2>&1 || echo "lab: qemu exited $? ($kernel/$name)" >> "$dir/console.log"
        # A kernel panic before the lab's init ran (seen once on 6.12 with 2 vCPUs on a loaded
        # host: sched_clock_cpu in start_secondary, 3.5 s into the boot) says nothing about
        # irqscope, which never started: that boot is run once more, its console kept.
        if [ "$attempt" = 1 ] && grep -q "Kernel panic" "$dir/console.log" && ! grep -q "^lab: kernel" "$dir/console.log"; then
            mv "$dir/console.log" "$dir/console.panic-before-init.log"
            echo "lab: $kernel $name: kernel panic before the lab's init; booting once more" >&2
            continue
        fi
        break
    done
    sed -n '/=== LAB RESULTS BEGIN ===/,/=== LAB RESULTS END ===/p' "$dir/console.log" | sed '1d;$d' | tr -d '\r' \
        | base64 -d 2>/dev/null | tar -x -C "$dir" 2>/dev/null || true
    echo "$((SECONDS - start))" > "$dir/boot-seconds"
    if [ -f "$dir/scenario.log" ]; then
        echo "lab: $kernel $name ($iommu): $((SECONDS - start)) s"
    else
        echo "lab: $kernel $name ($iommu): no results after $((SECONDS - start)) s; console tail:" >&2
        tail -20 "$dir/console.log" >&2
    fi
}

# romfile= : no iPXE option ROM for SeaBIOS to run at every boot (the kernel is -kernel's)
nic() { echo "-device e1000e,netdev=$1,addr=$2,romfile= -netdev user,id=$1,restrict=on"; }

# lab_boot SHORT VERSION VMLINUZ INITRD NAME SMP SCENARIOS: one normal boot, with its own disk image
lab_boot() {
    local short=$1 version=$2 vmlinuz=$3 initrd=$4 name=$5 smp=$6 scenarios=$7
    local img="$work/nvme-$short-$name.img" args
    dd if=/dev/zero of="$img" bs=1M count=16 status=none
    case $name in
    exhaustion) args="-drive file=$img,if=none,id=nvm,format=raw -device nvme,drive=nvm,serial=lab,addr=0x4,msix_qsize=400" ;;
    # QEMU's largest MSI-X table for nvme: vfio-pci allocates an irq for each entry
    scale) args="-drive file=$img,if=none,id=nvm,format=raw -device nvme,drive=nvm,serial=lab,addr=0x4,msix_qsize=2048"
           local BOOT_APPEND=possible_cpus=256 ;;
    *) args="-drive file=$img,if=none,id=nvm,format=raw -device nvme,drive=nvm,serial=lab,addr=0x4
             $(nic n0 0x5) $(nic n1 0x6) $(nic n2 0xe)
             -device virtio-net-pci,netdev=n3,mq=on,vectors=6,addr=0x8,romfile= -netdev user,id=n3,restrict=on" ;;
    esac
    # shellcheck disable=SC2086
    boot "$short" "$version" "$vmlinuz" "$initrd" "$name" "$smp" "$scenarios" "$(iommu "$short" "$name")" $args
    rm -f "$img"
}

# selected LIST WORD: WORD is in the space-separated LIST, or LIST is empty
selected() { [ -z "$1" ] || [[ " $1 " == *" $2 "* ]]; }

# The scale boot's tools, laid over its own initramfs (40 MB that the other boots need not
# unpack): with_libs BINARY puts BINARY and the shared libraries it needs there.
with_libs() {
    install -m 755 "$1" "$work/overlay-scale/bin/"
    for lib in $(ldd "$1" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
        mkdir -p "$work/overlay-scale$(dirname "$lib")"
        cp -L "$lib" "$work/overlay-scale$lib"
    done
}
scale_kernels=-
for spec in $all_boots; do
    IFS=: read -r name _ _ only <<< "$spec"
    [ "$name" = scale ] && selected "$boots_wanted" scale && scale_kernels=${only//,/ }
done
if [ "$scale_kernels" != - ]; then
    bench=${IRQSCOPE_BENCH_BIN:-$(dirname "$irqscope")/irqscope-bench}
    [ -x "$bench" ] || { echo "lab: the scale boot needs irqscope-bench (release build) at $bench: set IRQSCOPE_BENCH_BIN" >&2; exit 1; }
    mkdir -p "$work/overlay-scale/bin"
    gcc -O2 -Wall -Werror -static "$here/msix-alloc.c" -o "$work/overlay-scale/bin/msix-alloc"
    for tool in /usr/bin/prometheus-node-exporter "$(command -v bpftool)"; do
        [ -x "$tool" ] || { echo "lab: the scale boot needs $tool (apt-get install prometheus-node-exporter bpftool)" >&2; exit 1; }
        with_libs "$tool"
    done
    with_libs "$bench"
    strip "$work/overlay-scale/bin/irqscope-bench"
fi

# shellcheck disable=SC2086
"$here/kernels.sh" $kernels > "$work/kernels"
while read -r short package version root vmlinuz; do
    "$here/initramfs.sh" "$root" "$version" "$work/initramfs-$short.cpio" "$irqscope" "$work/vmm"
    if [ "$scale_kernels" != - ] && selected "$scale_kernels" "$short"; then
        "$here/initramfs.sh" "$root" "$version" "$work/initramfs-$short-scale.cpio" "$irqscope" "$work/vmm" "$work/overlay-scale"
    fi
    echo "lab: $short is $package"
done < "$work/kernels"

# The normal boots, IRQSCOPE_LAB_JOBS at a time, boot by boot across the kernels: main (the
# longest) first, so that the pool does not end on one long boot alone.
: > "$work/queue"
for spec in $all_boots; do
    IFS=: read -r name smp scenarios only <<< "$spec"
    selected "$boots_wanted" "$name" || continue
    while read -r short package version root vmlinuz; do
        if ! selected "${only//,/ }" "$short"; then
            [ -z "$boots_wanted" ] || echo "lab: $name runs on ${only//,/ } only, not on $short" >&2
            continue
        fi
        initrd=$work/initramfs-$short.cpio
        [ "$name" = scale ] && initrd=$work/initramfs-$short-scale.cpio
        echo "$short $version $vmlinuz $initrd $name $smp $scenarios" >> "$work/queue"
    done < "$work/kernels"
done
# shellcheck source=realvmm-boot.sh
. "$here/realvmm-boot.sh"
# the plan, for Tests/LabTests: a boot planned here and without results fails there
{
    if [ -z "$kernels" ] && [ -z "$boots_wanted" ] && [ "$IRQSCOPE_LAB_VMMS" = all ]; then echo "# full matrix"
    else echo "# KERNELS=$kernels BOOTS=$boots_wanted VMMS=$IRQSCOPE_LAB_VMMS"; fi
    while read -r short _ _ _ name _; do echo "$short $name $(iommu "$short" "$name")"; done < "$work/queue"
    while read -r short _; do
        for q in $(realvmm_wanted "$short"); do echo "$short realvmm-$q intel"; done
    done < "$work/kernels"
} > "$out/plan"
running=0
while read -r short version vmlinuz initrd name smp scenarios; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    lab_boot "$short" "$version" "$vmlinuz" "$initrd" "$name" "$smp" "$scenarios" &
    running=$((running + 1))
done < "$work/queue"
wait

# The real-VMM cells (Tests/Lab/realvmm-boot.sh), after the normal boots, one at a time; each
# writes $out/SHORT/realvmm-QEMU/ with a boot-seconds file, so the summary below lists them.
while read -r short package version root vmlinuz; do
    realvmm_boots "$short" "$root" "$version" "$vmlinuz"
done < "$work/kernels"

# Summary: seconds per boot (wall clock, under whatever else the machine was running)
{
    printf '%-8s' kernel
    names=$(cd "$out" && ls -d */*/ 2>/dev/null | cut -d/ -f2 | sort -u)
    for n in $names; do printf '%12s' "$n"; done
    printf '%8s\n' total
    while read -r short _; do
        printf '%-8s' "$short"
        total=0
        for n in $names; do
            s=$(cat "$out/$short/$n/boot-seconds" 2>/dev/null || echo -)
            [ -f "$out/$short/$n/scenario.log" ] || [ "$s" = - ] || s="$s!"
            [ "$s" = - ] || [ -z "$(cat "$out/$short/$n/iommu" 2>/dev/null | grep amd)" ] || s="$s(amd)"
            printf '%12s' "$s"
            seconds=${s%%[!0-9]*}
            total=$((total + ${seconds:-0}))
        done
        printf '%8s\n' "$total"
    done < "$work/kernels"
    echo "lab: $(( SECONDS - lab_start )) s in all, $jobs VMs at a time ('!': no results)"
} | tee "$out/summary.txt"
