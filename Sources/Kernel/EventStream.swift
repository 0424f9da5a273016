import Dispatch
import Glibc
import Synchronization

/// Reads the event ring buffer on a thread of its own: `ring_buffer__poll` blocks, and the
/// Swift concurrency pool (one thread per core) must not be parked on it.
final class EventStream: Sendable {
    private let object: BPFObject
    private let running = Atomic<Bool>(true)
    private let finished = DispatchSemaphore(value: 0)
    private let failure = Atomic<Int32>(0)

    /// Why the stream stopped on its own (poll's negative errno), 0 while it runs.
    var failedWith: Int32 { failure.load(ordering: .relaxed) }

    init(object: BPFObject, mapFD: Int32, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(KernelError) {
        self.object = object
        try object.openRing(map: mapFD, sink: sink)
        let thread = DispatchQueue(label: "irqscope.events")
        thread.async { [self] in
            while running.load(ordering: .relaxed) {
                let n = object.pollRing(timeoutMs: 100)
                if n < 0 && n != -EINTR {
                    failure.store(-n, ordering: .relaxed)
                    break
                }
            }
            finished.signal()
        }
    }

    /// Delivers what is already in the ring without waiting.
    func drain() { _ = object.pollRing(timeoutMs: 0) }

    func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        finished.wait()
        _ = object.pollRing(timeoutMs: 0)
        object.closeRing()
    }
}
