import Glibc
import Synchronization

/// The per-interrupt counts array, mapped read-only into irqscope (the map is BPF_F_MMAPABLE,
/// 5.5+): a scrape sums it in place. A batch lookup copied the whole array through the kernel on
/// every scrape (at 32768 slots and 256 CPUs, 400 MB), 44% of a scrape's CPU.
///
/// Mapped CPU slice by CPU slice, each when first read: the kernel maps a BPF array's pages
/// whole at mmap, so every mapped page is in irqscope's RSS, and a host's possible CPUs can far
/// outnumber those that ever count (the lab's 2-CPU guest with 256 possible: 129 MB of RSS with
/// the whole array mapped). Slices not page-aligned (fewer than 256 slots) share one mapping of
/// the whole array, which is small then.
final class CountsMapping: Sendable {
    private struct Mapping { var address: UInt, length: Int }
    /// Per CPU (key -1: the whole array); the lock keeps a read from racing the unmap at close.
    private let mappings: Mutex<(open: Bool, byCPU: [Int: Mapping])>
    private let fd: Int32, sliceBytes: Int, cpus: Int, page: Int

    /// nil when the kernel refuses the mapping: the caller reads the map with lookups instead.
    init?(fd: Int32, sliceBytes: Int, cpus: Int) {
        self.fd = fd
        self.sliceBytes = sliceBytes
        self.cpus = cpus
        page = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappings = Mutex((true, [:]))
        guard read(cpu: 0, { _ in true }) == true else { return nil }
    }

    private var bySlice: Bool { sliceBytes % page == 0 }

    private func map(offset: Int, length: Int) -> Mapping? {
        let address = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(offset))
        guard let address, address != MAP_FAILED else { return nil }
        return Mapping(address: UInt(bitPattern: address), length: length)
    }

    /// CPU `cpu`'s slice, mapped from now on; nil once unmapped or if the kernel refuses.
    func read<T>(cpu: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        mappings.withLock { m in
            guard m.open else { return nil }
            let key = bySlice ? cpu : -1
            if m.byCPU[key] == nil {
                let whole = (sliceBytes * cpus + page - 1) / page * page
                m.byCPU[key] = bySlice ? map(offset: cpu * sliceBytes, length: sliceBytes) : map(offset: 0, length: whole)
            }
            guard let s = m.byCPU[key], let base = UnsafeRawPointer(bitPattern: s.address) else { return nil }
            return body(UnsafeRawBufferPointer(start: base + (bySlice ? 0 : cpu * sliceBytes), count: sliceBytes))
        }
    }

    /// CPU `cpu`'s slice, mapped only for this read (a CPU looked at in turn, SummedCPUs).
    func peek<T>(cpu: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        guard bySlice else { return read(cpu: cpu, body) }
        return mappings.withLock { m in
            guard m.open else { return nil }
            if let s = m.byCPU[cpu], let base = UnsafeRawPointer(bitPattern: s.address) {
                return body(UnsafeRawBufferPointer(start: base, count: sliceBytes))
            }
            guard let s = map(offset: cpu * sliceBytes, length: sliceBytes), let base = UnsafeMutableRawPointer(bitPattern: s.address) else { return nil }
            defer { munmap(base, s.length) }
            return body(UnsafeRawBufferPointer(start: base, count: sliceBytes))
        }
    }

    func unmap() {
        mappings.withLock { m in
            for s in m.byCPU.values { munmap(UnsafeMutableRawPointer(bitPattern: s.address), s.length) }
            m = (false, [:])
        }
    }

    deinit { unmap() }
}
