# shellcheck shell=bash
# realvmm-boot.sh, sourced by run-lab.sh and stability.sh (issue 10, real VMMs): the lab guest
# runs Debian's real QEMU (KVM, on the SVM that the lab's TCG emulates), which boots a Debian
# 6.12 guest whose own e1000e driver owns the lab guest's e1000e through vfio-pci. Defines
#   realvmm_boots KERNEL_SHORT KERNEL_ROOT VERSION VMLINUZ
# which, per QEMU realvmm_wanted gives that kernel (IRQSCOPE_LAB_VMMS),
# packs that QEMU (binary, its libraries, firmware: a root of its own, chrooted into in the lab
# guest) and the inner guest into the lab initramfs, boots the lab guest, and unpacks its results
# to $out/<kernel>/realvmm-<qemu>/. QEMUs come from Debian's archive only:
#   qemu7.2   bookworm's (this host's qemu-system-x86): grows MSI-X by disable and re-enable
#   qemu10    trixie's, in a minimal trixie root made by debootstrap (cached): dynamic MSI-X
#   qemu11    sid's, likewise (not in the default matrix)
# Uses from the caller, when set: out, irqscope, cache, work; otherwise defaults.

realvmm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# CPU models. The inner guest runs under KVM inside the lab guest: QEMU's TCG emulates AMD's SVM
# with nested paging (npt), so the lab kernel's kvm_amd works on an AMD-vendor CPU model (qemu64
# is one, and has SVM and CX16, which irqscope's Swift runtime needs), and the inner guest then
# runs one level of emulation deep instead of two. Measured on 6.12 x QEMU 7.2: the inner kernel
# reached init 13-15 s after QEMU started (189 s under nested TCG), the whole boot took 96 s
# (571 s). Under nested TCG (REALVMM_INNER_ACCEL=tcg) the inner kernel double-faulted at a
# `cmpxchg16b` in SLUB (2 of 2 runs with Nehalem on both levels; the inner QEMU's emulation left
# corrupt flags): an inner CPU without CX16 (Nehalem,-cx16) avoids it there. Under KVM the
# inner guest's instructions are the lab guest's own, emulated once, as for every lab boot.
REALVMM_OUTER_CPU=${REALVMM_OUTER_CPU:-qemu64,+npt,+ssse3,+sse4.1,+sse4.2,+popcnt}
REALVMM_INNER_CPU=${REALVMM_INNER_CPU:-host}
REALVMM_INNER_ACCEL=${REALVMM_INNER_ACCEL:-kvm}
REALVMM_OUTER_ACCEL=${REALVMM_OUTER_ACCEL:-tcg}
# One vCPU in the lab guest: with two (MTTCG, one host thread each) the 7.3 lab kernel died of an
# int3 in __schedule while KVM's start patched a static branch there (a vCPU ran a stale
# translation of the patched code), and a 6.12 inner guest died silently early in its boot.
REALVMM_OUTER_SMP=${REALVMM_OUTER_SMP:-1}
REALVMM_OUTER_MEM=${REALVMM_OUTER_MEM:-3072}
# The inner kernel's command line: skip what costs most under nested TCG and the guest does not
# need (measured with initcall_debug): crypto self-tests, jitter entropy, certificate loading.
REALVMM_INNER_APPEND=${REALVMM_INNER_APPEND:-"mitigations=off nokaslr no_timer_check cryptomgr.notests initcall_blacklist=jent_mod_init,load_system_certificate_list,bpf_tcp_ca_kfunc_init,bpf_dummy_struct_ops_init,trace_eval_init,crypto_kdf108_init,init_msg_buckets,init_user_buckets,cec_init,lockup_detector_check,init_encrypted"}

realvmm_default() { # the QEMUs the matrix gives a lab kernel
    case $1 in
        6.1) echo qemu7.2 ;;
        6.12) echo qemu7.2 qemu10 ;;
        7.*) echo qemu10 ;;
    esac
}

realvmm_mirror() { # the Debian mirror this machine's apt already uses (never written down here)
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    echo "$uri"
}

# realvmm_source QEMU: prints the root QEMU's files come from ("/" for this host's own)
realvmm_source() {
    local suite
    case $1 in
        qemu7.2)
            qemu-system-x86_64 --version | grep -q 'version 7\.2\.' || { echo "lab: this host's QEMU is not 7.2" >&2; return 1; }
            echo /; return ;;
        qemu10) suite=trixie ;;
        qemu11) suite=sid ;;
        *) echo "lab: unknown VMM $1" >&2; return 1 ;;
    esac
    local root=$cache/vmm/$suite-root
    if [ ! -f "$root/.ready" ]; then
        local mirror
        mirror=$(realvmm_mirror)
        [ -n "$mirror" ] || { echo "lab: no Debian mirror configured in /etc/apt" >&2; return 1; }
        echo "lab: debootstrap $suite with qemu-system-x86 into $root (once)" >&2
        rm -rf "$root" "$root.tmp" && mkdir -p "$cache/vmm"
        debootstrap --variant=minbase --include=qemu-system-x86 "$suite" "$root.tmp" "$mirror" > "$cache/vmm/$suite.debootstrap.log" 2>&1 \
            || { echo "lab: debootstrap $suite failed (see $cache/vmm/$suite.debootstrap.log)" >&2; return 1; }
        mv "$root.tmp" "$root" && touch "$root/.ready"
    fi
    echo "$root"
}

# realvmm_payload QEMU: prints a directory (cached) holding only what that QEMU needs to boot a
# Linux guest with TCG: its binary, the libraries ldd names, its TCG module where TCG is one,
# SeaBIOS and the option ROMs of -kernel boots; laid out as a root to chroot into.
realvmm_payload() {
    local q=$1 src dst
    src=$(realvmm_source "$q") || return 1
    dst=$cache/vmm/payload-$q
    if [ ! -f "$dst/.ready" ] || [ "$src/usr/bin/qemu-system-x86_64" -nt "$dst/.ready" ]; then
        rm -rf "$dst" && mkdir -p "$dst"
        mkdir -p "$dst/usr/lib" "$dst/usr/lib64" "$dst/usr/sbin"
        for d in bin sbin lib lib64; do [ -L "$src/$d" ] && ln -s "$(readlink "$src/$d")" "$dst/$d"; done
        mkdir -p "$dst/usr/bin" "$dst/inner" "$dst/dev" "$dst/proc" "$dst/sys" "$dst/tmp" "$dst/results"
        local files=(/usr/bin/qemu-system-x86_64 /usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin
                     /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin)
        [ -f "$src/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so" ] && files+=(/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so)
        local f libs
        for f in "${files[@]}"; do
            [ -e "$src$f" ] || { echo "lab: $q has no $f" >&2; return 1; }
            mkdir -p "$(dirname "$dst$f")" && cp -L "$src$f" "$dst$f"
            case $f in *.so|*/qemu-system-x86_64)
                libs=$(chroot "$src" ldd "$f" | awk '/=>/ {print $3} /ld-linux/ {print $1}')
                for lib in $libs; do
                    [ -e "$dst$lib" ] || { mkdir -p "$(dirname "$dst$lib")" && cp -L "$src$lib" "$dst$lib"; } || return 1
                done ;;
            esac
        done
        strip "$dst/usr/bin/qemu-system-x86_64" 2>/dev/null || true
        chroot "$src" qemu-system-x86_64 --version | head -1 > "$dst/VERSION"
        touch "$dst/.ready"
    fi
    echo "$dst"
}

# realvmm_vmlinux VMLINUZ OUT: the ELF kernel inside a bzImage (zstd, xz or gzip). QEMU boots
# it through its PVH entry point: no decompression in the guest, which costs seconds under TCG
# and half a minute nested.
realvmm_vmlinux() {
    local vmlinuz=$1 out=$2 magic tool offset
    for magic in '\x28\xb5\x2f\xfd:zstd' '\xfd\x37\x7a\x58\x5a\x00:xz' '\x1f\x8b\x08:gzip'; do
        tool=${magic##*:}
        for offset in $(LC_ALL=C grep -obUaP "${magic%:*}" "$vmlinuz" | cut -d: -f1); do
            tail -c +$((offset + 1)) "$vmlinuz" | $tool -dcq 2>/dev/null > "$out"
            [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ] && readelf -n "$out" 2>/dev/null | grep -q 'Xen.*0x00000012' && return 0
        done
    done
    rm -f "$out"
    return 1
}

# realvmm_inner DIR VMM: the inner guest: Debian's 6.12 kernel from the lab's cache (as an ELF with a
# PVH entry point when it has one, else the bzImage) and a busybox initramfs with e1000e,
# Tests/Lab/guest/inner-init, and for its raising run vfio-pci and the lab's VMM program VMM;
# writes DIR/vmlinuz and DIR/initrd.cpio
realvmm_inner() {
    local dir=$1 vmm=$2 line root version
    line=$("$realvmm_here/kernels.sh" 6.12 | awk '$1 == "6.12"' | tail -1)
    [ -n "$line" ] || { echo "lab: no 6.12 kernel for the inner guest" >&2; return 1; }
    read -r _ _ version root _ <<< "$line"
    local vmlinuz=$root/boot/vmlinuz-$version
    [ -f "$vmlinuz" ] || vmlinuz=$root/usr/lib/modules/$version/vmlinuz
    mkdir -p "$dir"
    realvmm_vmlinux "$vmlinuz" "$dir/vmlinuz" || cp "$vmlinuz" "$dir/vmlinuz"
    local w
    w=$(mktemp -d)
    mkdir -p "$w"/{bin,proc,sys,dev,modules}
    cp /bin/busybox "$w/bin/busybox"
    for applet in $("$w/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$w/bin/$applet"; done
    local module order
    for module in e1000e:order vfio-pci:vfio-order vfio_iommu_type1:vfio-order; do
        order=${module#*:}
        modprobe -d "$root" -S "$version" --show-depends "${module%:*}" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
            name=$(basename "$ko" .xz)
            case "$ko" in *.xz) xz -dc "$ko" > "$w/modules/$name" ;; *) cp "$ko" "$w/modules/$name" ;; esac
            grep -qx "$name" "$w/modules/$order" 2>/dev/null || echo "$name" >> "$w/modules/$order"
        done
    done
    cp "$vmm" "$w/bin/vmm"
    install -m 755 "$realvmm_here/guest/inner-init" "$w/init"
    (cd "$w" && find . | cpio -o -H newc --quiet) > "$dir/initrd.cpio"
    rm -rf "$w"
    echo "$version" > "$dir/VERSION"
}

# realvmm_boot KERNEL_SHORT VMLINUZ INITRD QEMU: one lab boot, results to $out/<kernel>/realvmm-<qemu>/
realvmm_boot() {
    local kernel=$1 vmlinuz=$2 initrd=$3 q=$4
    local dir=$out/$kernel/realvmm-$q
    rm -rf "$dir" && mkdir -p "$dir"
    # the interrupt remapping this boot uses (as run-lab.sh writes it for the other boots)
    echo intel > "$dir/iommu"
    local start=$SECONDS
    timeout "${REALVMM_TIMEOUT:-2400}" qemu-system-x86_64 -machine q35,kernel-irqchip=split -accel "$REALVMM_OUTER_ACCEL" -cpu "$REALVMM_OUTER_CPU" \
        -smp "$REALVMM_OUTER_SMP" -m "$REALVMM_OUTER_MEM" -nographic -no-reboot -nodefaults -serial stdio \
        -device intel-iommu,intremap=on,caching-mode=on \
        -device e1000e,netdev=n0,addr=0x5,romfile= -netdev user,id=n0,restrict=on,net=192.0.2.0/24 \
        -device e1000e,netdev=n1,addr=0xd,romfile= -netdev user,id=n1,restrict=on \
        -kernel "$vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 quiet panic=-1 intel_iommu=on no_timer_check ${IRQSCOPE_LAB_APPEND:-} lab.scenario=realvmm" \
        < /dev/null > "$dir/console.log" 2>&1 || echo "lab: qemu exited $? ($kernel/realvmm-$q)" >> "$dir/console.log"
    sed -n '/=== LAB RESULTS BEGIN ===/,/=== LAB RESULTS END ===/p' "$dir/console.log" | sed '1d;$d' | tr -d '\r' \
        | base64 -d 2>/dev/null | tar -x -C "$dir" 2>/dev/null || true
    echo "$((SECONDS - start))" > "$dir/boot-seconds"
    echo "outer_cpu=$REALVMM_OUTER_CPU outer_smp=$REALVMM_OUTER_SMP outer_accel=$REALVMM_OUTER_ACCEL outer_mem=$REALVMM_OUTER_MEM inner_cpu=$REALVMM_INNER_CPU inner_accel=$REALVMM_INNER_ACCEL" > "$dir/realvmm.settings"
    if [ -f "$dir/scenario.log" ]; then
        echo "lab: $kernel realvmm-$q: $((SECONDS - start)) s ($(tail -1 "$dir/realvmm.timings" 2>/dev/null))"
    else
        echo "lab: $kernel realvmm-$q: no results after $((SECONDS - start)) s; console tail:" >&2
        tail -20 "$dir/console.log" >&2
    fi
}

# realvmm_wanted KERNEL_SHORT: the QEMUs to run on that kernel. IRQSCOPE_LAB_VMMS: "all" (the
# matrix of realvmm_default), "none", or QEMU names (run on every kernel selected).
realvmm_wanted() {
    case ${IRQSCOPE_LAB_VMMS:-none} in
        none) ;;
        all) realvmm_default "$1" ;;
        *) echo "$IRQSCOPE_LAB_VMMS" ;;
    esac
}

realvmm_boots() { # realvmm_boots KERNEL_SHORT KERNEL_ROOT VERSION VMLINUZ
    local short=$1 root=$2 version=$3 vmlinuz=$4 q vmms
    vmms=$(realvmm_wanted "$short")
    [ -n "$vmms" ] || return 0
    : "${out:?}" "${irqscope:?}"
    cache=${cache:-${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}}
    local w=${work:-$(mktemp -d)}
    [ -x "$w/vmm" ] || gcc -O2 -Wall -Werror -static "$realvmm_here/vmm.c" -o "$w/vmm"
    [ -f "$w/realvmm-inner/initrd.cpio" ] || realvmm_inner "$w/realvmm-inner" "$w/vmm" || return 1
    for q in $vmms; do
        local payload extra="$w/realvmm-extra-$q" initrd="$w/initramfs-$short-realvmm-$q.cpio"
        payload=$(realvmm_payload "$q") || { echo "lab: $short realvmm-$q: no payload" >&2; continue; }
        rm -rf "$extra" && mkdir -p "$extra/vmm"
        cp -a "$payload" "$extra/vmm/root"
        cp "$w/realvmm-inner/vmlinuz" "$w/realvmm-inner/initrd.cpio" "$extra/vmm/root/inner/"
        echo "$q" > "$extra/vmm/NAME"
        echo "$REALVMM_INNER_CPU" > "$extra/vmm/inner-cpu"
        echo "$REALVMM_INNER_ACCEL" > "$extra/vmm/inner-accel"
        echo "$REALVMM_INNER_APPEND" > "$extra/vmm/inner-append"
        LAB_EXTRA_MODULES=$([ "$REALVMM_INNER_ACCEL" = kvm ] && echo kvm_amd) "$realvmm_here/initramfs.sh" "$root" "$version" "$initrd" "$irqscope" "$w/vmm" "$extra"
        realvmm_boot "$short" "$vmlinuz" "$initrd" "$q"
        rm -rf "$extra" "$initrd"
    done
}
