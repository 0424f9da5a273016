#!/usr/bin/env bash
# run-lab.sh OUTDIR [KERNEL-FILTER] [SCENARIO-FILTER]
# The kernel lab: boots Debian's 6.1 and 6.12 kernels under QEMU (TCG, q35, Intel IOMMU with
# interrupt remapping) with nvme, e1000e and virtio-net devices, runs irqscope's scenarios in
# the guest and unpacks their results to OUTDIR/<kernel>/<boot>/. Tests/LabTests checks them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:?usage: run-lab.sh OUTDIR}
kernel_filter=${2:-}
boot_filter=${3:-}
cache=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}
irqscope=${IRQSCOPE_BIN:-$top/.build/release/irqscope}
[ -x "$irqscope" ] || { echo "lab: no irqscope release build at $irqscope (run 'make release')" >&2; exit 1; }
mkdir -p "$out" "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -O2 -Wall -Werror -static "$here/vmm.c" -o "$work/vmm"
dd if=/dev/zero of="$work/nvme.img" bs=1M count=16 status=none

# boot NAME SMP "SCENARIOS" QEMU-DEVICE-ARGS...
boot() {
    local kernel=$1 vmlinuz=$2 initrd=$3 name=$4 smp=$5 scenarios=$6; shift 6
    local dir="$out/$kernel/$name"
    rm -rf "$dir" && mkdir -p "$dir"
    local start=$SECONDS
    timeout 900 qemu-system-x86_64 -machine q35,kernel-irqchip=split -accel tcg -cpu max -smp "$smp" -m 1536 \
        -nographic -no-reboot -nodefaults -serial stdio \
        -device intel-iommu,intremap=on,caching-mode=on \
        "$@" -kernel "$vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 quiet panic=-1 intel_iommu=on lab.scenario=$scenarios" \
        < /dev/null > "$dir/console.log" 2>&1 || echo "lab: qemu exited $? ($kernel/$name)" >> "$dir/console.log"
    sed -n '/=== LAB RESULTS BEGIN ===/,/=== LAB RESULTS END ===/p' "$dir/console.log" | sed '1d;$d' | tr -d '\r' \
        | base64 -d 2>/dev/null | tar -x -C "$dir" 2>/dev/null || true
    echo "$((SECONDS - start))" > "$dir/boot-seconds"
    if [ -f "$dir/scenario.log" ]; then
        echo "lab: $kernel $name: $((SECONDS - start)) s"
    else
        echo "lab: $kernel $name: no results after $((SECONDS - start)) s; console tail:" >&2
        tail -20 "$dir/console.log" >&2
    fi
}

# issue 10: real QEMUs booting a real guest through vfio-pci (realvmm_boots)
source "$here/realvmm-boot.sh"

nic() { echo "-device e1000e,netdev=$1,addr=$2 -netdev user,id=$1,restrict=on"; }

"$here/kernels.sh" | while read -r package version root; do
    [ -n "$kernel_filter" ] && [[ "$package" != *"$kernel_filter"* ]] && continue
    short=$(echo "$version" | cut -d- -f1 | cut -d. -f1,2)    # 6.1, 6.12
    initrd="$work/initramfs-$short.cpio"
    "$here/initramfs.sh" "$root" "$version" "$initrd" "$irqscope" "$work/vmm"
    vmlinuz="$root/boot/vmlinuz-$version"
    devices="-drive file=$work/nvme.img,if=none,id=nvm,format=raw -device nvme,drive=nvm,serial=lab,addr=0x4
             $(nic n0 0x5) $(nic n1 0x6) $(nic n2 0xe)
             -device virtio-net-pci,netdev=n3,mq=on,vectors=6,addr=0x8 -netdev user,id=n3,restrict=on"
    for spec in ${IRQSCOPE_LAB_BOOTS:-"main:2:hostdrivers,vfio,trace" "guests:2:guests" "kprobe:2:hostdrivers-kprobe,tracepoints-only" "exhaustion:1:exhaustion"}; do
        IFS=: read -r name smp scenarios <<< "$spec"
        [ -n "$boot_filter" ] && [[ "$name" != *"$boot_filter"* ]] && continue
        case $name in
            exhaustion) args="-drive file=$work/nvme.img,if=none,id=nvm,format=raw -device nvme,drive=nvm,serial=lab,addr=0x4,msix_qsize=400" ;;
            *) args=$devices ;;
        esac
        # shellcheck disable=SC2086
        boot "$short" "$vmlinuz" "$initrd" "$name" "$smp" "$scenarios" $args
    done
    if [ -z "$boot_filter" ] || [[ realvmm == *"$boot_filter"* ]]; then
        realvmm_boots "$short" "$root" "$version" "$vmlinuz"
    fi
done
