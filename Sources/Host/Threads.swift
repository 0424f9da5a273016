import Glibc
import IrqscopeDecode

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts `run` on a new plain thread (not libdispatch's or Swift concurrency's pools, whose
/// workers stay and wake); `detached`: nobody joins it.
public func spawnThread(detached: Bool = false, _ run: @escaping () -> Void) -> Result<pthread_t, Errno> {
    var id = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(run)).toOpaque()
    let rc = pthread_create(&id, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return .failure(Errno(rc, "cannot start a thread"))
    }
    if detached { pthread_detach(id) }
    return .success(id)
}
