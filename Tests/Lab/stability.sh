#!/usr/bin/env bash
# stability.sh OUTDIR RUNS KERNEL QEMU
# Runs one cell of the real-VMM matrix (Tests/Lab/realvmm-boot.sh) RUNS times in a row, e.g.
# 'stability.sh /tmp/st 10 6.12 qemu7.2', and says how many runs were clean: the inner guest
# printed its ground truth and powered off, QEMU exited 0, no oops/panic/double fault at either
# level. Results of run i go to OUTDIR/run-i/<kernel>/realvmm-<qemu>/ (OUTDIR/<kernel>/... when
# RUNS is 1, as run-lab.sh lays them out); the summary to OUTDIR/stability.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
outdir=${1:?usage: stability.sh OUTDIR RUNS KERNEL QEMU}
runs=${2:?} kernel=${3:?} qemu=${4:?}
irqscope=${IRQSCOPE_BIN:-$top/.build/release/irqscope}
cache=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}
[ -x "$irqscope" ] || { echo "lab: no irqscope release build at $irqscope" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=realvmm-boot.sh
source "$here/realvmm-boot.sh"
line=$("$here/kernels.sh" "$kernel" | awk -v k="$kernel" '$1 == k' | tail -1)
[ -n "$line" ] || { echo "lab: no kernel $kernel in kernels.sh's list" >&2; exit 1; }
read -r _ _ version root vmlinuz <<< "$line"
mkdir -p "$outdir"
summary=$outdir/stability.txt
echo "cell kernel=$kernel ($version) qemu=$qemu outer_cpu=$REALVMM_OUTER_CPU outer_smp=$REALVMM_OUTER_SMP outer_accel=$REALVMM_OUTER_ACCEL inner_cpu=$REALVMM_INNER_CPU inner_accel=$REALVMM_INNER_ACCEL load_before=$(cut -d' ' -f1-3 /proc/loadavg)" > "$summary"
clean=0
for i in $(seq 1 "$runs"); do
    if [ "$runs" = 1 ]; then out=$outdir; else out=$outdir/run-$i; fi
    IRQSCOPE_LAB_VMMS=$qemu realvmm_boots "$kernel" "$root" "$version" "$vmlinuz"
    dir=$out/$kernel/realvmm-$qemu
    problems=""
    grep -q inner-truth "$dir/realvmm.console" 2>/dev/null || problems="$problems no-ground-truth"
    grep -q "powering off" "$dir/realvmm.console" 2>/dev/null || problems="$problems no-poweroff"
    grep -q "exited with status 0" "$dir/realvmm.trace.err" 2>/dev/null || problems="$problems qemu-exit"
    for f in "$dir/console.log" "$dir/realvmm.console"; do
        grep -qiE "double fault|kernel panic|oops|BUG:|general protection|invalid opcode" "$f" 2>/dev/null && problems="$problems fault-in-$(basename "$f")"
    done
    [ -z "$problems" ] && clean=$((clean + 1))
    echo "run=$i boot_seconds=$(cat "$dir/boot-seconds" 2>/dev/null) $(tail -1 "$dir/realvmm.timings" 2>/dev/null) load=$(cut -d' ' -f1 /proc/loadavg) ${problems:-clean}" | tee -a "$summary"
done
echo "clean=$clean of $runs" | tee -a "$summary"
