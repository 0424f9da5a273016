#!/usr/bin/env bash
# apt.sh apt-get|apt-cache ARGS...: runs apt against a private state that knows Debian's other
# suites (bullseye to sid), reusing the mirror this machine's apt already uses. The system's own
# apt state is never touched; no mirror host is written here. Lists are refreshed once a day.
# Where the system also uses a security archive, its <suite>-security suites are added too (the
# newest point releases of 5.10, 6.1 and bookworm's 6.12 are published there).
set -euo pipefail
state=${IRQSCOPE_LAB_CACHE:-/var/cache/irqscope-lab}/apt
suites=${IRQSCOPE_LAB_SUITES:-"bullseye bookworm trixie trixie-backports sid"}
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$uri" ] || { echo "lab: no Debian mirror configured in /etc/apt" >&2; exit 1; }
security=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep security | head -1)
[ -n "$security" ] || security=$(awk '$1 == "deb" && $0 ~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
: > "$state/sources.list.new"
for s in $suites; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $s main" >> "$state/sources.list.new"
    case $s in
    bullseye|bookworm|trixie) [ -z "$security" ] || echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security $s-security main" >> "$state/sources.list.new" ;;
    esac
done
cmp -s "$state/sources.list.new" "$state/sources.list" || { mv "$state/sources.list.new" "$state/sources.list"; rm -f "$state/updated"; }
opts=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" -o Dir::State::Status=/var/lib/dpkg/status
      -o APT::Get::List-Cleanup=0 -o Acquire::Check-Valid-Until=false -o Debug::NoLocking=1)
if [ -z "$(find "$state/updated" -mmin -1440 2>/dev/null)" ]; then
    apt-get "${opts[@]}" update -qq >&2 || { echo "lab: apt-get update of the lab's suites failed" >&2; exit 1; }
    touch "$state/updated"
fi
tool=$1; shift
exec "$tool" "${opts[@]}" "$@"
