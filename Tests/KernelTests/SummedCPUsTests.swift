@testable import IrqscopeKernel
import Testing

/// Which CPUs' counts a read sums: every CPU that has been online, plus one other in turn, so
/// that no CPU that ever counted is left out for more reads than there are possible CPUs.
@Suite struct SummedCPUsTests {
    @Test func onlineCPUsAndOneOtherInTurn() {
        let s = SummedCPUs(possible: 8)
        let first = s.forRead(online: [0, 1])
        #expect(first.cpus == [0, 1, 2] && first.probe == 2)
        #expect(s.forRead(online: [0, 1]).probe == 3)
        // a CPU once online stays summed after it goes offline
        #expect(s.forRead(online: [0, 4]).cpus == [0, 1, 4, 5])
    }

    /// A CPU that came and went between two reads: found when its turn comes, summed from then on.
    @Test func aCPUThatCountedWhileNoReadSawItOnlineIsKept() {
        let s = SummedCPUs(possible: 4)
        var found = false
        for _ in 0..<4 {
            let read = s.forRead(online: [0])
            if read.probe == 3 {
                s.keep(3)
                found = true
            }
        }
        #expect(found, "CPU 3 never read in 4 reads of a 4-CPU host")
        #expect(s.forRead(online: [0]).cpus.contains(3))
    }

    @Test func everyCPUWhenOnlineIsUnknownOrAllAreSummed() {
        let s = SummedCPUs(possible: 3)
        let read = s.forRead(online: nil)
        #expect(read.cpus == [0, 1, 2] && read.probe == nil)
    }
}
