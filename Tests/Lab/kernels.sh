#!/usr/bin/env bash
# kernels.sh [SHORT...]: resolves, downloads (cached) and unpacks the Debian kernels the lab boots:
# the newest 5.10 (bullseye), 6.1 and 6.12 (bookworm), 6.18 and the newest 7.x (trixie-backports,
# sid). With SHORT names (5.10 6.1 6.12 6.18 7.x or the 7.x kernel's own, e.g. 7.3), only those.
# Prints one line per kernel: SHORT PACKAGE VERSION ROOT VMLINUZ, SHORT being the kernel's
# major.minor (5.10, 6.1, 6.12, 6.18, 7.3), which names its results directory.
# Package names and versions move: resolved with apt (Tests/Lab/apt.sh) each time, never pinned.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}
mkdir -p "$cache/debs" "$cache/kernels"
wanted=" $* "

# the kernel series, each as a regular expression over linux-image package names
series=(
    '5.10|^linux-image-5\.10\.0-[0-9]+-amd64$'
    '6.1|^linux-image-6\.1\.0-[0-9]+-amd64$'
    '6.12|^linux-image-6\.12\.[0-9]+\+deb12-amd64$'
    '6.18|^linux-image-6\.18\.[0-9]+\+deb[0-9]+-amd64$'
    '7.x|^linux-image-7\.[0-9]+\.[0-9]+\+deb[0-9]+-amd64$'
)
names=$("$here/apt.sh" apt-cache search --names-only '^linux-image-[0-9]' | awk '{print $1}')
short_of() { sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/' <<< "$1"; }

packages=()
for s in "${series[@]}"; do
    label=${s%%|*} regex=${s#*|}
    p=$(grep -E -- "$regex" <<< "$names" | sort -V | tail -1 || true)
    if [ -z "$p" ]; then
        echo "lab: apt knows no Debian $label kernel image (matching $regex)" >&2
        exit 1
    fi
    short=$(short_of "$p")
    if [ -n "${*:-}" ] && [[ "$wanted" != *" $short "* ]] && [[ "$wanted" != *" $label "* ]]; then continue; fi
    packages+=("$p")
done
[ ${#packages[@]} -gt 0 ] || { echo "lab: no kernel matches '$*' (known: 5.10 6.1 6.12 6.18 7.x)" >&2; exit 1; }

# download PACKAGE: into the cache, once
download() {
    (cd "$cache/debs" && { ls "$1"_*.deb >/dev/null 2>&1 || "$here/apt.sh" apt-get download -q "$1" >/dev/null 2>&1; }) \
        || { echo "lab: cannot download $1" >&2; exit 1; }
}

for p in "${packages[@]}"; do
    root="$cache/kernels/$p"
    if [ ! -f "$root/.ready" ]; then
        download "$p"
        # from 7.x linux-image-X is a metapackage over linux-binary-X (vmlinuz) and linux-modules-X
        parts=$("$here/apt.sh" apt-cache depends "$p" 2>/dev/null | awk '$1 == "Depends:" {print $2}' \
            | grep -Fx -e "linux-binary-${p#linux-image-}" -e "linux-modules-${p#linux-image-}" || true)
        for part in $parts; do download "$part"; done
        rm -rf "$root"
        for deb in $p $parts; do dpkg -x "$(ls "$cache/debs/$deb"_*.deb | head -1)" "$root"; done
        # trixie-era packages keep modules under /usr/lib/modules
        if [ ! -d "$root/lib/modules" ] && [ -d "$root/usr/lib/modules" ]; then
            mkdir -p "$root/lib"
            ln -s ../usr/lib/modules "$root/lib/modules"
        fi
        version=$(ls "$root/lib/modules" | head -1)
        # no package ships modules.dep
        depmod -b "$root" "$version"
        touch "$root/.ready"
    fi
    version=$(ls "$root/lib/modules" | head -1)
    vmlinuz=$root/boot/vmlinuz-$version
    [ -f "$vmlinuz" ] || vmlinuz=$root/lib/modules/$version/vmlinuz
    [ -f "$vmlinuz" ] || { echo "lab: no vmlinuz in $p" >&2; exit 1; }
    echo "$(short_of "$p") $p $version $root $vmlinuz"
done
