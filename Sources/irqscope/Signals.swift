import Glibc
import Synchronization

/// SIGINT and SIGTERM as a flag, for the stretches where nothing else listens: trace's whole run,
/// and serve's start-up (ServiceLifecycle takes the signals over once the service runs).
enum Interrupted {
    static let flag = Atomic<Bool>(false)

    static var raised: Bool { flag.load(ordering: .relaxed) }

    static func install() {
        signal(SIGINT) { _ in Interrupted.flag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in Interrupted.flag.store(true, ordering: .relaxed) }
    }
}
