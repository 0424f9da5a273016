import IrqscopeHost
import Synchronization

/// Which CPUs' slices of the counts array a read sums. Only a CPU that has been online has
/// counted anything, and hosts often have many more possible CPUs than online ones (a 2-CPU
/// guest with maxcpus=256: 128 times less to read). A CPU that came online and went offline
/// again between two reads is not in the online list at either: each read also sums one other
/// possible CPU in turn, and keeps any whose slice has counted, so its counts appear within as
/// many reads as there are possible CPUs. Sums only grow: a CPU once summed always is.
final class SummedCPUs: Sendable {
    private let state: Mutex<(summed: [Bool], next: Int)>
    let possible: Int

    init(possible: Int) {
        self.possible = possible
        state = Mutex((Array(repeating: false, count: possible), 0))
    }

    /// The CPUs to sum now, and the one read in turn (nil when every CPU is summed already).
    /// `online`: the kernel's online list; nil (unreadable) sums every possible CPU.
    func forRead(online: [Int]?) -> (cpus: [Int], probe: Int?) {
        state.withLock { s in
            for cpu in online ?? Array(0..<possible) where cpu < possible { s.summed[cpu] = true }
            var probe: Int?
            for step in 0..<possible {
                let cpu = (s.next + step) % possible
                if !s.summed[cpu] {
                    probe = cpu
                    s.next = (cpu + 1) % possible
                    break
                }
            }
            return ((0..<possible).filter { s.summed[$0] || $0 == probe }, probe)
        }
    }

    /// The CPU read in turn had counted: summed from now on.
    func keep(_ cpu: Int) {
        state.withLock { s in s.summed[cpu] = true }
    }
}
