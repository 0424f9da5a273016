#!/usr/bin/env bash
# initramfs.sh KERNEL_ROOT VERSION OUT.cpio IRQSCOPE VMM [EXTRA_DIR]
# A busybox initramfs holding irqscope (release build, with the shared libraries it needs),
# promtool, the VMM test program, the lab's guest scripts and this kernel's modules for the
# devices the scenarios use, uncompressed (.ko.xz and .ko.zst inflated) and listed in load order.
set -euo pipefail
root=$1 version=$2 out=$3 irqscope=$4 vmm=$5 overlay=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,sbin,lib,lib64,proc,sys,dev,tmp,results,run,lib/modules}

cp /bin/busybox "$work/bin/busybox"
for applet in $("$work/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$work/bin/$applet"; done

install -m 755 "$irqscope" "$work/bin/irqscope"
strip "$work/bin/irqscope"
install -m 755 "$(command -v promtool)" "$work/bin/promtool"
install -m 755 "$vmm" "$work/bin/vmm"
for binary in "$irqscope" "$(command -v promtool)"; do
    for lib in $(ldd "$binary" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
        mkdir -p "$work$(dirname "$lib")"
        cp -L "$lib" "$work$lib"
    done
done

# per target module, its dependency chain in load order (deps/<target>); .ko.xz / .ko.zst inflated
mkdir -p "$work/lib/modules/deps"
for target in nvme e1000e virtio_net vfio-pci ${LAB_EXTRA_MODULES:-}; do
    extra=""
    [ "$target" = virtio_net ] && extra=virtio_pci        # a module on 6.1, built in on 6.12
    [ "$target" = vfio-pci ] && extra=vfio_iommu_type1    # a soft dependency
    for m in $extra $target; do
        modprobe -d "$root" -S "$version" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}' || true   # built in, and 7.x ships no modules.builtin
    done | awk '!seen[$0]++' | while read -r ko; do
        name=$(basename "${ko%.xz}" .zst)
        [ -f "$work/lib/modules/$name" ] || case "$ko" in
            *.xz) xz -dc "$ko" > "$work/lib/modules/$name" ;;
            *.zst) zstd -q -dc "$ko" > "$work/lib/modules/$name" ;;
            *) cp "$ko" "$work/lib/modules/$name" ;;
        esac
        echo "$name" >> "$work/lib/modules/deps/$target"
    done
    # a target that is neither a module nor built in would make its scenario fail far from here
    [ -s "$work/lib/modules/deps/$target" ] || modprobe -d "$root" -S "$version" --show-depends "$target" >/dev/null 2>&1 \
        || echo "lab: $version: no module $target (built in?)" >&2
done

install -m 755 "$here/guest/init" "$work/init"
cp "$here"/guest/*.sh "$work/bin/"
chmod 755 "$work"/bin/*.sh
# an optional payload laid over the root (realvmm-boot.sh: a QEMU and its guest under /vmm)
[ -z "$overlay" ] || cp -a "$overlay/." "$work/"
(cd "$work" && find . | cpio -o -H newc --quiet) > "$out"
