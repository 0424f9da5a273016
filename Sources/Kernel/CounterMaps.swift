import CLibbpf
import Glibc
import IrqscopeABI
import IrqscopeDecode
import IrqscopeHost

extension KernelSession {
    /// Interrupt counts since attach, summed over CPUs: the per-interrupt array read in place
    /// (mapped), the small arrays by lookups. Map fds are used without the object lock: lookups
    /// are plain syscalls, safe beside the event thread.
    /// `irqsBelow`: no irq at or above it exists (the rest of each CPU's slice is not read).
    public func readDelivery(irqsBelow: Int? = nil) throws(KernelError) -> DeliverySnapshot {
        var snapshot = DeliverySnapshot()
        let slots = Int(maps.irqSlots)
        let read = min(slots, irqsBelow ?? slots)
        let stride = MemoryLayout<irqscope_irq_count>.stride
        let (cpus, probe) = summedCPUs.forRead(online: readFile("/sys/devices/system/cpu/online").flatMap(parseCPUList))
        var totals = [IRQCount](repeating: IRQCount(interrupts: 0, unhandled: 0), count: slots)
        func add(_ slice: UnsafeRawBufferPointer) -> Bool { Self.add(slice, irqs: read, to: &totals) }
        var mapped = counts != nil
        for cpu in cpus where mapped {
            // the CPU looked at in turn is mapped only for this read: it has most likely never
            // counted, and a mapped slice stays in the RSS
            let counted = cpu == probe ? counts?.peek(cpu: cpu, add) : counts?.read(cpu: cpu, add)
            if counted == nil { mapped = false } else if cpu == probe && counted == true { summedCPUs.keep(cpu) }
        }
        if !mapped {
            totals = [IRQCount](repeating: IRQCount(interrupts: 0, unhandled: 0), count: slots)
            let copy = try readArray(fd: maps.irqCounts, entries: maps.irqSlots * maps.cpus, valueSize: stride, cpus: 1)
            copy.bytes.withUnsafeBytes { raw in
                for cpu in cpus where add(UnsafeRawBufferPointer(rebasing: raw[(cpu * slots * stride)..<((cpu + 1) * slots * stride)])) && cpu == probe {
                    summedCPUs.keep(cpu)
                }
            }
        }
        for (irq, total) in totals.enumerated() where total.interrupts > 0 { snapshot.irqs[irq] = total }
        let inPlace: Void? = spuriousCounts?.read(cpu: 0) { values in
            for vector in 0..<Int(IRQSCOPE_SPURIOUS_VECTORS) {
                let n = values.loadUnaligned(fromByteOffset: vector * 8, as: UInt64.self)
                if n > 0 { snapshot.spurious[vector] = n }
            }
        }
        if inPlace == nil {
            let spurious = try readArray(fd: maps.spurious, entries: UInt32(IRQSCOPE_SPURIOUS_VECTORS), valueSize: 8, cpus: 1)
            spurious.forEachKey { vector, perCPU in
                let n = perCPU.reduce(UInt64(0)) { $0 &+ $1.loadUnaligned(as: UInt64.self) }
                if n > 0 { snapshot.spurious[vector] = n }
            }
        }
        let counters = try readArray(fd: maps.counters, entries: UInt32(IRQSCOPE_CTR_MAX.rawValue), valueSize: 8)
        counters.forEachKey { slot, perCPU in
            let n = perCPU.reduce(UInt64(0)) { $0 &+ $1.loadUnaligned(as: UInt64.self) }
            switch UInt32(slot) {
            case IRQSCOPE_CTR_EVENTS_DROPPED.rawValue: snapshot.eventsDropped = n
            case IRQSCOPE_CTR_IRQ_UNTRACKED.rawValue: snapshot.untracked = n
            case IRQSCOPE_CTR_ARGS_MISSED.rawValue: snapshot.kretprobesMissed = n
            default: break
            }
        }
        if let stream {
            snapshot.ringBytes = UInt64(stream.bytes)
            snapshot.ringPeakBytes = UInt64(stream.peakBytes)
        }
        return snapshot
    }
}

extension KernelSession {
    /// Adds a CPU's slice of the counts (its first `irqs` slots) to `totals`; whether it counted
    /// anything. Public for the benchmark of a scrape's reads at many CPUs.
    public static func add(_ slice: UnsafeRawBufferPointer, irqs: Int, to totals: inout [IRQCount]) -> Bool {
        let stride = MemoryLayout<irqscope_irq_count>.stride
        var counted = false
        for irq in 0..<irqs {
            let c = slice.loadUnaligned(fromByteOffset: irq * stride, as: irqscope_irq_count.self)
            totals[irq].interrupts &+= c.interrupts
            totals[irq].unhandled &+= c.unhandled
            counted = counted || c.interrupts > 0
        }
        return counted
    }

    public static var countSlotBytes: Int { MemoryLayout<irqscope_irq_count>.stride }
}

/// The whole of an array map, key-major: values[key][cpu] (one value per key for a plain array).
struct ArrayValues {
    var bytes: [UInt8]
    var entries: Int
    var cpus: Int
    var stride: Int

    func forEachKey(_ body: (Int, [UnsafeRawBufferPointer.SubSequence]) -> Void) {
        bytes.withUnsafeBytes { raw in
            for key in 0..<entries {
                let base = key * cpus * stride
                body(key, (0..<cpus).map { raw[(base + $0 * stride)..<(base + $0 * stride + stride)] })
            }
        }
    }
}

/// `cpus`: how many values each key has (possible CPUs for a per-CPU array, 1 for a plain one);
/// nil counts the possible CPUs.
func readArray(fd: Int32, entries: UInt32, valueSize: Int, cpus perKey: Int? = nil) throws(KernelError) -> ArrayValues {
    let cpus = perKey ?? Int(libbpf_num_possible_cpus())
    guard cpus > 0 else { throw KernelError("cannot count possible CPUs") }
    let stride = (valueSize + 7) & ~7
    var values = [UInt8](repeating: 0, count: Int(entries) * cpus * stride)
    var keys = [UInt32](repeating: 0, count: Int(entries))
    var count = entries
    var outBatch: UInt32 = 0
    var opts = bpf_map_batch_opts()
    opts.sz = MemoryLayout<bpf_map_batch_opts>.size
    // One syscall for the whole array; ENOENT means "reached the end", which is success here.
    let rc = values.withUnsafeMutableBytes { v in
        keys.withUnsafeMutableBytes { k in
            bpf_map_lookup_batch(fd, nil, &outBatch, k.baseAddress, v.baseAddress, &count, &opts)
        }
    }
    if rc == 0 || errno == ENOENT, count == entries {
        return ArrayValues(bytes: values, entries: Int(entries), cpus: cpus, stride: stride)
    }
    // Older kernels without batch lookups on arrays: one lookup per key.
    var one = [UInt8](repeating: 0, count: cpus * stride)
    for key in 0..<entries {
        var k = key
        guard bpf_map_lookup_elem(fd, &k, &one) == 0 else { throw .errno("cannot read BPF map") }
        let base = Int(key) * cpus * stride
        values.replaceSubrange(base..<(base + one.count), with: one)
    }
    return ArrayValues(bytes: values, entries: Int(entries), cpus: cpus, stride: stride)
}
