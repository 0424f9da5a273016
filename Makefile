# The two commands of the README:
#   make serve   installs what is missing, builds a release irqscope and serves metrics
#   make test    installs what is missing, builds, and runs the whole test suite
SHELL := /bin/bash
PORT_ADDRESS ?= :10341
DEBIAN_PACKAGES := libbpf-dev libelf-dev zlib1g-dev bpftool prometheus curl util-linux \
	qemu-system-x86 busybox-static cpio kmod xz-utils zstd gcc libc6-dev linux-libc-dev python3-yaml python3-prometheus-client systemd \
	debootstrap binutils prometheus-node-exporter strace
LAB_RESULTS ?= .lab/results
# 'make lab' filters, empty for everything: KERNELS="6.1 7.3" (5.10 6.1 6.12 6.18 7.x), SCENARIOS="main guests"
# (boots: main guests kprobe exhaustion scale; scale on 6.1 only), VMMS (the real-VMM cells, Tests/Lab/realvmm-boot.sh: all, none or
# QEMU names such as qemu7.2; empty: all, or none when SCENARIOS names boots)
KERNELS ?=
SCENARIOS ?=
VMMS ?=
RELEASE_FLAGS := -c release --static-swift-stdlib
RELEASE_ENV := IRQSCOPE_STATIC_LIBBPF=1

.PHONY: deps build release serve test lab fixtures bench fuzz clean

# Installs only what is missing, so a prepared machine pays nothing.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# the Debian prometheus package starts a server on :9090 where systemd runs; tests start their own
	@if pidof systemd >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi

build: deps
	swift build

# A self-contained binary: Swift runtime and libbpf linked in, runs when copied anywhere.
release: deps
	$(RELEASE_ENV) swift build $(RELEASE_FLAGS) --product irqscope
	$(RELEASE_ENV) swift build $(RELEASE_FLAGS) --product irqscope-bench

serve: release
	exec .build/release/irqscope serve --web.listen-address=$(PORT_ADDRESS)

test: release build lab
	swift test

# The kernel lab: Debian's 5.10, 6.1, 6.12, 6.18 and newest 7.x kernels under QEMU (resolved
# with apt, downloaded and cached in /var/cache/irqscope-lab), every scenario on each;
# Tests/LabTests checks the results.
lab: release
	rm -rf $(LAB_RESULTS)
	IRQSCOPE_LAB_KERNELS="$(KERNELS)" IRQSCOPE_LAB_SCENARIOS="$(SCENARIOS)" IRQSCOPE_LAB_VMMS="$(VMMS)" \
		Tests/Lab/run-lab.sh $(LAB_RESULTS)

# Keeps the recordings and ground truth of the last lab run as replay fixtures for UnitTests.
fixtures:
	rm -rf Tests/Fixtures/lab
	cd $(LAB_RESULTS) && find . -type f \( -name '*.rec' -o -name '*.truth' -o -name '*.vmm.log' -o -name '*.metrics' \
		-o -name '*.promtool' -o -name '*.doctor.json' -o -name '*.cli-doctor.json' -o -name timings -o -name '*.line' -o -name 'guests.*.log' -o -name 'unshared.*.log' -o -name '*.serve.log' \
		-o -name 'trace.json' -o -name 'trace.err' -o -name '*.replay.txt' -o -name iommu -o -name kernel -o -name 'realvmm*' -o -name 'scale*' \) \
		-exec install -D -m 644 {} $(CURDIR)/Tests/Fixtures/lab/{} \;
	gzip -9 Tests/Fixtures/lab/*/*/*.rec Tests/Fixtures/lab/*/*/*.kvm-trace

# Per-interrupt BPF cost against an empty program, then serving against node_exporter's
# interrupts collector (irqscope-bench serve alone runs the second); both in full, then fails
# if either missed a goal.
bench: release
	status=0; .build/release/irqscope-bench bpf || status=1; .build/release/irqscope-bench serve || status=1; .build/release/irqscope-bench counts || status=1; \
	rec=$$(mktemp); gzip -dc Tests/Fixtures/lab/6.1/scale/scale.rec.gz > $$rec && .build/release/irqscope-bench scale $$rec || status=1; rm -f $$rec; exit $$status

# libFuzzer over the recording decoder (replay) and the web config parser, from Tests/Fuzz/seeds;
# FUZZ_SECONDS=600 by default.
fuzz:
	Tests/Fuzz/fuzz.sh

clean:
	rm -rf .build
