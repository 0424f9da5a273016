import CLibbpf
import CSys
import Glibc

/// The lifecycle events' BPF ring buffer, read through a window mapped for each read. The
/// kernel maps a ring's pages whole at mmap: libbpf's reader, which keeps the data area mapped
/// (twice, back to back, so that a record wrapping the end reads as one piece), held 8 MiB of
/// irqscope's RSS for a 4 MiB ring that is nearly always empty. Only the two position pages stay
/// mapped here. The kernel's own mapping of the ring has the data area twice too: a window
/// starting anywhere in the first copy reads across the end without copying.
final class EventRing {
    private let consumer: UnsafeMutableRawPointer
    private let producer: UnsafeMutableRawPointer
    private let page: Int
    let fd: Int32
    let bytes: Int
    /// The most the ring held when the reader looked (it may have held more in between).
    private(set) var peak = 0

    init(mapFD: Int32) throws(KernelError) {
        var info = bpf_map_info()
        var len = UInt32(MemoryLayout<bpf_map_info>.size)
        guard bpf_obj_get_info_by_fd(mapFD, &info, &len) == 0 else { throw .errno("cannot read the event ring buffer's size") }
        page = Int(sysconf(Int32(_SC_PAGESIZE)))
        bytes = Int(info.max_entries)
        fd = mapFD
        let c = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, mapFD, 0)
        guard let c, c != MAP_FAILED else { throw .errno("cannot map the event ring buffer's consumer page") }
        let p = mmap(nil, page, PROT_READ, MAP_SHARED, mapFD, off_t(page))
        guard let p, p != MAP_FAILED else {
            let e = errno
            munmap(c, page)
            throw .errno("cannot map the event ring buffer's producer page", e)
        }
        consumer = c
        producer = p
    }

    /// Where the records between two positions lie in the ring's mapping: the window's offset
    /// (page-aligned, behind the two position pages), its length, and where the first record
    /// starts in it. The window may run into the data area's second copy, never beyond it.
    static func window(from position: UInt64, to end: UInt64, size: Int, page: Int) -> (offset: Int, length: Int, skip: Int) {
        let at = Int(position & UInt64(size - 1))
        let first = at / page * page
        let length = (at - first + Int(end - position) + page - 1) / page * page
        return (2 * page + first, length, at - first)
    }

    /// Hands every committed record to `deliver`, in order, and gives its space back to the
    /// kernel; stops at a record still being written. Returns how many were delivered, or
    /// -errno when the window cannot be mapped.
    func consume(_ deliver: (UnsafeRawBufferPointer) -> Void) -> Int {
        var count = 0
        while true {
            let position = irqscope_load_acquire_u64(consumer)
            let end = irqscope_load_acquire_u64(producer)
            guard position < end else { return count }
            peak = max(peak, Int(end - position))
            let w = EventRing.window(from: position, to: end, size: bytes, page: page)
            let base = mmap(nil, w.length, PROT_READ, MAP_SHARED, fd, off_t(w.offset))
            guard let base, base != MAP_FAILED else { return -Int(errno) }
            let read = EventRing.records(UnsafeRawPointer(base) + w.skip, from: position, to: end, consumer: consumer, deliver)
            munmap(base, w.length)
            count += read.count
            if read.busy { return count }
        }
    }

    /// The records in `records` (laid out from `position` on, as the kernel wrote them: 8-byte
    /// headers with a length and BUSY and DISCARD bits, 8-byte aligned), up to `end` or the
    /// first one still being written.
    static func records(_ records: UnsafeRawPointer, from position: UInt64, to end: UInt64, consumer: UnsafeMutableRawPointer,
                        _ deliver: (UnsafeRawBufferPointer) -> Void) -> (count: Int, busy: Bool) {
        let busy: UInt32 = 1 << 31, discard: UInt32 = 1 << 30, header = 8
        var at = position, count = 0
        while at < end {
            let record = records + Int(at - position)
            let word = irqscope_load_acquire_u32(record)
            if word & busy != 0 { return (count, true) }
            let length = Int(word & ~(busy | discard))
            if word & discard == 0 {
                deliver(UnsafeRawBufferPointer(start: record + header, count: length))
                count += 1
            }
            at += UInt64((length + header + 7) & ~7)
            // Given back record by record, as libbpf does: a producer has the space at once.
            irqscope_store_release_u64(consumer, at)
        }
        return (count, false)
    }

    func unmap() {
        munmap(consumer, page)
        munmap(producer, page)
    }
}
