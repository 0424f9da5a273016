import CSys
import NIOCore
import NIOPosix

/// Swift concurrency's jobs (the service group's tasks) on an event loop of their own instead of
/// libdispatch's worker threads. The first such worker starts libdispatch's workqueue monitor,
/// a one-second timer on its manager thread that wakes an idle exporter for ever (measured:
/// 10-11 wake-ups in 10 s, all on that thread). The same trick as NIO's
/// unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor, which cannot find
/// the hook in a binary with a static Swift runtime. The loop is never shut down: jobs run on
/// it until the process exits.
public enum ConcurrencyOnEventLoop {
    typealias Hook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    nonisolated(unsafe) private static var loop: (any EventLoop)?

    /// Before any job is enqueued on the global executor; once. Returns the loop, or nil (the
    /// default executor stays) when something else holds the hook.
    public static func install() -> (any EventLoop)? {
        let slot = irqscope_enqueue_global_hook()!
        guard slot.pointee == nil else { return nil }
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        Self.loop = loop
        withUnsafeTemporaryAllocation(of: Hook.self, capacity: 1) { hook in
            hook.baseAddress!.initialize(to: { job, _ in
                let loop = ConcurrencyOnEventLoop.loop!
                loop.execute { job.runSynchronously(on: loop.executor.asUnownedSerialExecutor()) }
            })
            // a thin function is one code pointer, what the runtime's hook variable holds
            hook.baseAddress!.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 1) { slot.pointee = $0.pointee }
        }
        return loop
    }
}
