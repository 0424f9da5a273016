import IrqscopeDecode
import IrqscopeModel

/// The host model as Prometheus metric families. Built per scrape from the model: nothing
/// here keeps state.
public enum HostMetrics {
    public struct Build: Sendable {
        public var version: String
        public var libbpf: String
        public var kernel: String
        public init(version: String, libbpf: String, kernel: String) {
            self.version = version
            self.libbpf = libbpf
            self.kernel = kernel
        }
    }

    /// `programCosts`: nil while the kernel's BPF statistics are off (then the families are absent).
    public static func families(_ model: HostModel, report: ProbeReport, build: Build,
                                scrapeSeconds: Double, programCosts: [ProgramCost]? = nil,
                                irqs filter: IRQSeriesFilter = .all) -> [MetricFamily] {
        var out: [MetricFamily] = []
        out += delivery(model, filter)
        out += vectorSpace(model.vectors)
        out += deviceFamilies(model)
        out += probes(report)
        out += PostureMetrics.families(model, posture: report.posture)
        out += selfMetrics(model, build: build, scrapeSeconds: scrapeSeconds)
        if let programCosts { out += costs(programCosts) }
        if !report.mapBytes.isEmpty {
            var maps = MetricFamily("irqscope_bpf_map_bytes", .gauge,
                help: "Kernel memory of irqscope's BPF maps, per map, as the kernel states it (memlock in the map's /proc/PID/fdinfo, read at start: the maps are preallocated). The per-interrupt counts take about irq slots x possible CPUs x 48 bytes; --bpf.max-irq-slots caps the slots.")
            for (name, bytes) in report.mapBytes.sorted(by: { $0.key < $1.key }) { maps.add([("map", name)], Double(bytes)) }
            out.append(maps)
        }
        return out
    }

    /// irqscope's own cost in the kernel, per program, as ebpf_exporter reports it.
    static func costs(_ costs: [ProgramCost]) -> [MetricFamily] {
        var runs = MetricFamily("irqscope_bpf_program_runs", .counter,
            help: "Runs of each attached irqscope BPF program, counted by the kernel (kernel.bpf_stats_enabled=1; absent when off).")
        var time = MetricFamily("irqscope_bpf_program_run_seconds", .counter,
            help: "Time spent in each attached irqscope BPF program, counted by the kernel (kernel.bpf_stats_enabled=1; absent when off).")
        for c in costs.sorted(by: { $0.program < $1.program }) {
            runs.add([("program", c.program)], Double(c.runs))
            time.add([("program", c.program)], Double(c.runTimeNs) / 1e9)
        }
        return [runs, time]
    }

    static func delivery(_ model: HostModel, _ filter: IRQSeriesFilter = .all) -> [MetricFamily] {
        var total = MetricFamily("irqscope_interrupts", .counter,
            help: "Interrupts whose handlers ran, per irq, since irqscope attached (irq:irq_handler_exit, once per interrupt however many actions share the line). device is the PCI address for MSI/MSI-X vectors.")
        var unhandled = MetricFamily("irqscope_interrupts_unhandled", .counter,
            help: "Interrupts every handler of the irq returned IRQ_NONE for: the count the kernel's spurious-irq detector acts on.")
        for (s, t) in model.delivery.series.sorted(by: { $0.key.irq < $1.key.irq }) where filter.keeps(name: s.name, device: s.device) {
            let labels = [("irq", String(s.irq)), ("name", s.name), ("device", s.device ?? "")]
            total.add(labels, Double(t.interrupts))
            unhandled.add(labels, Double(t.unhandled))
        }
        var spurious = MetricFamily("irqscope_spurious_interrupts", .counter,
            help: "Interrupts on a CPU vector without a handler (irq_vectors:spurious_apic_entry), per vector; 239 (0xef) is where allocated but not requested MSI entries are parked.")
        // the catch-all vector is known in advance: its series exists at 0
        var spuriousByVector = model.kernel.spurious
        spuriousByVector[HostModel.catchAllVector, default: 0] += 0
        for (vector, n) in spuriousByVector.sorted(by: { $0.key < $1.key }) {
            spurious.add([("vector", String(vector))], Double(n))
        }
        return [total, unhandled, spurious]
    }

    static func vectorSpace(_ space: VectorSpace) -> [MetricFamily] {
        var available = MetricFamily("irqscope_cpu_vectors_available", .gauge,
            help: "Free CPU vectors on this CPU, as the irq_matrix tracepoints last reported (absent until one fired for the CPU).")
        var allocated = MetricFamily("irqscope_cpu_vectors_allocated", .gauge,
            help: "Allocated (non-managed) CPU vectors on this CPU.")
        var managed = MetricFamily("irqscope_cpu_vectors_managed", .gauge,
            help: "CPU vectors reserved for managed interrupts on this CPU.")
        for (cpu, c) in space.cpus.sorted(by: { $0.key < $1.key }) {
            let labels = [("cpu", String(cpu))]
            available.add(labels, Double(c.available))
            allocated.add(labels, Double(c.allocated))
            managed.add(labels, Double(c.managed))
        }
        var failures = MetricFamily("irqscope_vector_space_failures", .counter,
            help: "CPU vector reservations (step=reserve) and allocations (step=alloc) the x86 vector domain refused, by errno: ENOSPC means the vector space ran out.")
        for (f, n) in space.failures.sorted(by: { ($0.key.step, $0.key.errno) < ($1.key.step, $1.key.errno) }) {
            failures.add([("step", f.step), ("errno", Errno.name(f.errno))], Double(n))
        }
        var out = [available, allocated, managed, failures]
        if let g = space.global {
            out.append(MetricFamily("irqscope_vector_space_available", .gauge,
                help: "Free CPU vectors across online CPUs (irq_matrix global_available).",
                samples: [.init([], Double(g.available))]))
            out.append(MetricFamily("irqscope_vector_space_reserved", .gauge,
                help: "CPU vectors promised to MSI entries that are allocated but not requested (reservation mode; irq_matrix global_reserved).",
                samples: [.init([], Double(g.reserved))]))
            out.append(MetricFamily("irqscope_vector_space_allocated", .gauge,
                help: "CPU vectors allocated across all CPUs (irq_matrix total_allocated).",
                samples: [.init([], Double(g.allocated))]))
            out.append(MetricFamily("irqscope_vector_space_online_cpus", .gauge,
                help: "CPUs whose vector maps are online (irq_matrix online_maps).",
                samples: [.init([], Double(g.onlineCPUs))]))
        }
        return out
    }

    /// Per device and guest: what a recording alone determines.
    public static func deviceFamilies(_ model: HostModel) -> [MetricFamily] {
        var vectors = MetricFamily("irqscope_msix_vectors", .gauge,
            help: "MSI-X vectors per device: allocated (the device holds an irq), requested (request_irq took a CPU vector), posted (delivered straight to a vCPU), unbacked (the guest enabled it but the host's request_irq failed). guest is the VMM driving the device through VFIO, empty for host drivers.")
        var irtes = MetricFamily("irqscope_irte_entries", .gauge,
            help: "Interrupt remapping table entries held for the device's vectors.")
        var grows = MetricFamily("irqscope_msix_grows", .counter,
            help: "MSI-X tables grown: mode=dynamic added a vector to a live table, mode=reenable switched MSI-X off and on again with more vectors.")
        var windows = MetricFamily("irqscope_msix_disabled_windows", .counter,
            help: "Times MSI-X was switched off while the guest had live vectors, and switched on again (a window where interrupts can be lost).")
        var windowSeconds = MetricFamily("irqscope_msix_disabled_window_seconds", .histogram,
            help: "How long MSI-X stayed off in those windows.")
        var failures = MetricFamily("irqscope_request_irq_failures", .counter,
            help: "Host request_irq failures for the device's vectors, by errno: a guest vector the host could not back.")
        var lost = MetricFamily("irqscope_interrupts_lost_min", .counter,
            help: "A lower bound on interrupts lost, by cause, counting only what the host can prove: line_while_msix_off counts 1 per MSI-X-off window (the guest's vectors live) in which, or within 10 ms after which, the device's legacy line fired and no handler took it; catch_all_vector counts hits on vector 0xef, where allocated but not requested entries are parked (device empty when not attributable). The host cannot see: a vector whose request_irq failed (irqscope_msix_vectors{state=\"unbacked\"}), a window in which the device's line has no handler to fire (an unshared line with INTx off), posted interrupts, SR-IOV VFs (no INTx).")
        var lossWindows = MetricFamily("irqscope_msix_loss_windows", .counter,
            help: "MSI-X-off windows (the guest's vectors live) with evidence of loss: the device's legacy line fired unhandled during them, or within 10 ms after (its interrupt arriving late). At most irqscope_msix_disabled_windows_total.")
        var blindWindows = MetricFamily("irqscope_msix_blind_windows", .counter,
            help: "MSI-X-off windows (the guest's vectors live) in which no loss could have been seen: when MSI-X went off, the device's legacy line had no handler (or the device has none), so the kernel kept it masked and an interrupt raised then left no trace on the host. Losses in them are possible and not in irqscope_interrupts_lost_min_total.")
        var lineRefires = MetricFamily("irqscope_line_unhandled_in_windows", .counter,
            help: "Unhandled interrupts of the device's legacy line reported during its MSI-X-off windows (reports batch up to 100 us). A level-triggered line refires until serviced: this counts refires, not interrupts lost.")
        var delivered = MetricFamily("irqscope_device_interrupts", .counter,
            help: "Interrupts of the device's MSI/MSI-X vectors that ran a host handler (remapped delivery; posted interrupts go straight to a vCPU and are not counted here).")
        var enableFailures = MetricFamily("irqscope_msix_enable_failures", .counter,
            help: "MSI-X enables or dynamic adds the kernel refused, by errno (IRTE or irq exhaustion fails here).")
        for (address, d) in model.devices.devices.sorted(by: { $0.key < $1.key }) {
            let guest = d.owner.map(model.guestName(owner:)) ?? ""
            let labels = [("guest", guest), ("driver", model.drivers[address] ?? ""), ("device", address)]
            vectors.add(labels + [("state", "allocated")], Double(d.vectors.count))
            vectors.add(labels + [("state", "requested")], Double(d.requested))
            // absent rather than 0 while the look at start could not tell (an IOMMU may remap)
            if d.irtesKnown { vectors.add(labels + [("state", "posted")], Double(d.posted)) }
            vectors.add(labels + [("state", "unbacked")], Double(d.unbacked))
            delivered.add(labels, Double(d.delivered))
            for cause in Devices.LossCause.allCases where d.owner != nil || d.lost[cause] != nil {
                lost.add(labels + [("cause", cause.rawValue)], Double(d.lost[cause] ?? 0))
            }
            if d.irtesKnown { irtes.add(labels, Double(d.irtes)) }
            for mode in Devices.GrowMode.allCases {
                grows.add(labels + [("mode", mode.rawValue)], Double(d.grows[mode] ?? 0))
            }
            if d.owner != nil {
                windows.add(labels, Double(d.windows.count))
                lossWindows.add(labels, Double(d.lossWindows))
                blindWindows.add(labels, Double(d.blindWindows))
                lineRefires.add(labels, Double(d.lineUnhandledInWindows))
                windowSeconds.addHistogram(labels, buckets: Array(zip(d.windows.bounds, d.windows.counts)),
                                           sum: d.windows.sum, count: d.windows.count)
            }
            for (code, n) in d.requestFailures.sorted(by: { $0.key < $1.key }) {
                failures.add(labels + [("errno", Errno.name(code))], Double(n))
            }
            for (code, n) in d.enableFailures.sorted(by: { $0.key < $1.key }) {
                enableFailures.add(labels + [("errno", Errno.name(code))], Double(n))
            }
        }
        for (cause, n) in model.devices.unattributedLost.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lost.add([("guest", ""), ("driver", ""), ("device", ""), ("cause", cause.rawValue)], Double(n))
        }
        var guests = MetricFamily("irqscope_guest", .info,
            help: "Maps guest names to the processes (VMMs) they run as, and says where the name came from. vmm is qemu (found by its version banner) or the executable's name, vmm_version QEMU's version, both read from /proc/PID/exe; empty when unknown.")
        for tgid in model.owners.sorted() {
            let process = model.processes[tgid]
            // an unknown VMM leaves the labels out (empty, to Prometheus): replays of older
            // recordings, which did not record the VMM, give the series they gave live
            var labels = [("guest", model.guestName(owner: tgid)), ("pid", String(tgid)),
                          ("source", process?.source.rawValue ?? "unknown")]
            if let vmm = process?.vmm { labels.append(("vmm", vmm)) }
            if let version = process?.vmmVersion { labels.append(("vmm_version", version)) }
            guests.add(labels, 1)
        }
        return [vectors, irtes, grows, windows, windowSeconds, lossWindows, blindWindows, lineRefires, failures, enableFailures, lost, delivered, guests]
    }

    static func probes(_ report: ProbeReport) -> [MetricFamily] {
        var attached = MetricFamily("irqscope_probe_attached", .gauge,
            help: "1 if the kernel hook is attached (mechanism says how), 0 if it could not be (irqscope doctor says why). Hooks on standby, covered by another variant, are not listed.")
        var families = MetricFamily("irqscope_probe_family_available", .gauge,
            help: "1 if at least one hook of the probe family is attached; 0 means the family's metrics are absent.")
        for family in report.families {
            families.add([("family", family.name)], family.available ? 1 : 0)
            for hook in family.hooks {
                switch hook.state {
                case .attached(let mechanism, _): attached.add([("probe", hook.name), ("mechanism", mechanism)], 1)
                case .unavailable: attached.add([("probe", hook.name), ("mechanism", "none")], 0)
                case .standby: break
                }
            }
        }
        return [attached, families]
    }

    static func selfMetrics(_ model: HostModel, build: Build, scrapeSeconds: Double) -> [MetricFamily] {
        [
            MetricFamily("irqscope_build", .info, help: "irqscope version, the libbpf it runs with, and the kernel release.",
                samples: [.init([("version", build.version), ("libbpf", build.libbpf), ("kernel", build.kernel)], 1)]),
            MetricFamily("irqscope_scrape_duration_seconds", .gauge,
                help: "Time taken to read the kernel maps and sysfs and build this scrape.",
                samples: [.init([], scrapeSeconds)]),
            MetricFamily("irqscope_events_received", .counter,
                help: "Lifecycle events read from the kernel ring buffer.",
                samples: [.init([], Double(model.eventsReceived))]),
            MetricFamily("irqscope_events_dropped", .counter,
                help: "Lifecycle events lost because the ring buffer was full (counted in the kernel).",
                samples: [.init([], Double(model.kernel.eventsDropped))]),
            MetricFamily("irqscope_events_undecodable", .counter,
                help: "Ring buffer records irqscope could not decode.",
                samples: [.init([], Double(model.eventsUndecodable))]),
            MetricFamily("irqscope_interrupts_untracked", .counter,
                help: "Interrupts on irq numbers beyond irqscope's counting array; they are in no irqscope_interrupts_total series.",
                samples: [.init([], Double(model.kernel.untracked))]),
            MetricFamily("irqscope_kretprobe_misses", .counter,
                help: "Returns seen by a kretprobe whose entry arguments were not saved (attached mid-call, or the stash was full).",
                samples: [.init([], Double(model.kernel.kretprobesMissed))]),
        ] + ring(model.kernel)
    }

    /// Absent where unknown (recordings from before it was kept).
    static func ring(_ kernel: DeliverySnapshot) -> [MetricFamily] {
        guard kernel.ringBytes > 0 else { return [] }
        return [
            MetricFamily("irqscope_events_ring_bytes", .gauge,
                help: "Size of the lifecycle event ring buffer (--debug.ring-buffer-bytes).",
                samples: [.init([], Double(kernel.ringBytes))]),
            MetricFamily("irqscope_events_ring_peak_bytes", .gauge,
                help: "The most the lifecycle event ring buffer held when irqscope read it, since start: a lower bound of its fill (it may have held more between reads). Events are dropped when it is full.",
                samples: [.init([], Double(kernel.ringPeakBytes))]),
        ]
    }
}
