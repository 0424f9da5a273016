import Glibc
import IrqscopeHost

/// A value computed on a thread of its own while the caller goes on; `join` waits for it.
/// A plain thread: start-up must not wake libdispatch's workers or Swift concurrency's pool
/// for one piece of work (each brings threads that stay).
final class Background<T>: @unchecked Sendable {
    private var result: T?
    private var thread: pthread_t?
    private let body: () -> T

    private init(_ body: @escaping () -> T) { self.body = body }

    static func start(_ body: @escaping () -> T) -> Background<T> {
        let work = Background(body)
        work.thread = try? spawnThread { work.result = work.body() }.get()
        return work
    }

    /// The value; computed here when no thread could be started.
    func join() -> T {
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
        if result == nil { result = body() }
        return result!
    }
}
