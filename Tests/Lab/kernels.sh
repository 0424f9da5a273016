#!/usr/bin/env bash
# Resolves, downloads (cached) and unpacks the Debian kernels the lab boots. Prints one line per
# kernel: NAME VERSION ROOT. Package names move: resolve them with apt, never pin a build.
set -euo pipefail
cache=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}
mkdir -p "$cache/debs" "$cache/kernels"
resolve() { apt-cache search --names-only "$1" | awk '{print $1}' | sort -V | tail -1; }
packages=("$(resolve '^linux-image-6\.1\.0-[0-9]+-amd64$')" "$(resolve '^linux-image-6\.12\.[0-9.]+\+deb12-amd64$')")
for p in "${packages[@]}"; do
    if [ -z "$p" ]; then
        echo "lab: apt knows no Debian 6.1 or 6.12 kernel image (run apt-get update?)" >&2
        exit 1
    fi
done
cd "$cache/debs"
for p in "${packages[@]}"; do
    ls "$p"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" >/dev/null 2>&1 || { echo "lab: cannot download $p" >&2; exit 1; }
done
for p in "${packages[@]}"; do
    root="$cache/kernels/$p"
    if [ ! -f "$root/.ready" ]; then
        rm -rf "$root"
        dpkg -x "$(ls "$p"_*.deb | head -1)" "$root"
        version=$(ls "$root/lib/modules")
        depmod -b "$root" "$version"
        touch "$root/.ready"
    fi
    echo "$p $(ls "$root/lib/modules") $root"
done
