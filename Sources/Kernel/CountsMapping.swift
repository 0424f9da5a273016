import Glibc
import Synchronization

/// The per-interrupt counts array, mapped read-only into irqscope (the map is BPF_F_MMAPABLE,
/// 5.5+): a scrape sums it in place. A batch lookup copied the whole array through the kernel on
/// every scrape (at 32768 slots and 256 CPUs, 400 MB), 44% of a scrape's CPU.
final class CountsMapping: Sendable {
    /// Address and length while mapped; the lock keeps a read from racing the unmap at close.
    private let mapping: Mutex<(address: UInt, length: Int)>

    /// nil when the kernel refuses the mapping: the caller reads the map with lookups instead.
    init?(fd: Int32, bytes: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (bytes + page - 1) / page * page
        let address = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else { return nil }
        mapping = Mutex((UInt(bitPattern: address), length))
    }

    /// The mapped bytes, nil once unmapped.
    func read<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T? {
        mapping.withLock { m in
            guard m.length > 0, let base = UnsafeRawPointer(bitPattern: m.address) else { return nil }
            return body(UnsafeRawBufferPointer(start: base, count: m.length))
        }
    }

    func unmap() {
        mapping.withLock { m in
            guard m.length > 0 else { return }
            munmap(UnsafeMutableRawPointer(bitPattern: m.address), m.length)
            m = (0, 0)
        }
    }

    deinit { unmap() }
}
