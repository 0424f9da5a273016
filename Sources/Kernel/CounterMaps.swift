import CLibbpf
import Glibc
import IrqscopeABI
import IrqscopeDecode

extension KernelSession {
    /// Interrupt counts since attach, summed over CPUs. Map fds are used without the object
    /// lock: lookups are plain syscalls, safe beside the event thread.
    public func readDelivery() throws(KernelError) -> DeliverySnapshot {
        var snapshot = DeliverySnapshot()
        let counts = try readPerCPUArray(fd: maps.irqCounts, entries: maps.irqSlots,
                                         valueSize: MemoryLayout<irqscope_irq_count>.size)
        counts.forEachKey { key, perCPU in
            var total = IRQCount(interrupts: 0, unhandled: 0)
            for v in perCPU {
                let c = v.loadUnaligned(as: irqscope_irq_count.self)
                total.interrupts &+= c.interrupts
                total.unhandled &+= c.unhandled
            }
            if total.interrupts > 0 { snapshot.irqs[key] = total }
        }
        let spurious = try readPerCPUArray(fd: maps.spurious, entries: UInt32(IRQSCOPE_SPURIOUS_VECTORS),
                                           valueSize: 8)
        spurious.forEachKey { vector, perCPU in
            let n = perCPU.reduce(UInt64(0)) { $0 &+ $1.loadUnaligned(as: UInt64.self) }
            if n > 0 { snapshot.spurious[vector] = n }
        }
        let counters = try readPerCPUArray(fd: maps.counters, entries: UInt32(IRQSCOPE_CTR_MAX.rawValue), valueSize: 8)
        counters.forEachKey { slot, perCPU in
            let n = perCPU.reduce(UInt64(0)) { $0 &+ $1.loadUnaligned(as: UInt64.self) }
            switch UInt32(slot) {
            case IRQSCOPE_CTR_EVENTS_DROPPED.rawValue: snapshot.eventsDropped = n
            case IRQSCOPE_CTR_IRQ_UNTRACKED.rawValue: snapshot.untracked = n
            case IRQSCOPE_CTR_ARGS_MISSED.rawValue: snapshot.kretprobesMissed = n
            default: break
            }
        }
        return snapshot
    }
}

/// The whole of a per-CPU array, key-major: values[key][cpu].
struct PerCPUArray {
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

func readPerCPUArray(fd: Int32, entries: UInt32, valueSize: Int) throws(KernelError) -> PerCPUArray {
    let cpus = Int(libbpf_num_possible_cpus())
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
        return PerCPUArray(bytes: values, entries: Int(entries), cpus: cpus, stride: stride)
    }
    // Older kernels without batch lookups on arrays: one lookup per key.
    var one = [UInt8](repeating: 0, count: cpus * stride)
    for key in 0..<entries {
        var k = key
        guard bpf_map_lookup_elem(fd, &k, &one) == 0 else { throw .errno("cannot read BPF map") }
        let base = Int(key) * cpus * stride
        values.replaceSubrange(base..<(base + one.count), with: one)
    }
    return PerCPUArray(bytes: values, entries: Int(entries), cpus: cpus, stride: stride)
}
