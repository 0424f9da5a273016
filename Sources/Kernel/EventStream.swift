import Glibc
import IrqscopeHost
import Synchronization

/// Reads the event ring buffer on a thread of its own, which sleeps in poll(2) on the ring's
/// descriptor and a stop descriptor: no timer, so an idle host wakes irqscope for nothing. The
/// Swift concurrency pool (one thread per core) must not be parked on it, nor a Dispatch worker
/// (a block that never returns holds one of libdispatch's pool for the whole run).
final class EventStream: Sendable {
    /// Separate from the object's lock: the reader thread consumes while scrapes read maps.
    private let ring: Mutex<EventRing?>
    private let sink: @Sendable (UnsafeRawBufferPointer) -> Void
    /// A pipe: the stream's thread waits on its read end, stop() writes to the other.
    private let stopPipe: (read: Int32, write: Int32)
    private let thread: Mutex<pthread_t?> = Mutex(nil)
    private let failure = Atomic<Int32>(0)
    private let peak = Atomic<Int>(0)
    let bytes: Int
    private let stopped = Atomic<Bool>(false)

    /// Why the stream stopped on its own (a negative errno's magnitude), 0 while it runs.
    var failedWith: Int32 { failure.load(ordering: .relaxed) }

    init(mapFD: Int32, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(KernelError) {
        self.sink = sink
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw .errno("cannot create the ring buffer's stop pipe") }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        stopPipe = (ends[0], ends[1])
        do {
            let opened = try EventRing(mapFD: mapFD)
            bytes = opened.bytes
            ring = Mutex(opened)
        } catch {
            Glibc.close(ends[0])
            Glibc.close(ends[1])
            throw error
        }
        let stopFD = ends[0]
        // A ring's descriptor polls readable while records wait (level, not edge: none is missed
        // between a consume and the next wait).
        let ringFD = mapFD
        let run: @Sendable () -> Void = { [self] in
            var fds = [pollfd(fd: ringFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            while true {
                let n = poll(&fds, 2, -1)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failure.store(errno, ordering: .relaxed); break }
                if fds[1].revents != 0 { break }
                if fds[0].revents & Int16(POLLERR | POLLNVAL) != 0 { failure.store(EIO, ordering: .relaxed); break }
                if fds[0].revents != 0 {
                    let n = consume()
                    if n < 0 { failure.store(Int32(-n), ordering: .relaxed); break }
                }
            }
        }
        switch spawnThread(run) {
        case .success(let id): thread.withLock { $0 = id }
        case .failure(let error):
            unmap()
            Glibc.close(ends[0])
            Glibc.close(ends[1])
            throw KernelError("the ring buffer's reader: \(error)")
        }
    }

    /// Delivers what is already in the ring without waiting.
    func drain() { consume() }

    /// The most the ring held when its reader looked: a lower bound of its fill.
    var peakBytes: Int { peak.load(ordering: .relaxed) }

    /// How many records were delivered, or -errno.
    @discardableResult
    private func consume() -> Int {
        let (n, seen) = ring.withLock { ring -> (Int, Int) in
            guard let ring else { return (-Int(EBADF), 0) }
            return (ring.consume(sink), ring.peak)
        }
        peak.store(seen, ordering: .relaxed)
        return n
    }

    private func unmap() {
        ring.withLock { ring in
            ring?.unmap()
            ring = nil
        }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
        if let id = thread.withLock({ $0 }) { pthread_join(id, nil) }
        consume()
        unmap()
        Glibc.close(stopPipe.read)
        Glibc.close(stopPipe.write)
    }
}
