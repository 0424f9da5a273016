import IrqscopeDecode
import Testing
import IrqscopeModel

@Suite struct DeliveryCountersTests {
    func count(_ n: UInt64, _ u: UInt64 = 0) -> IRQCount { IRQCount(interrupts: n, unhandled: u) }

    @Test func creditsDeltasToTheCurrentName() {
        var d = DeliveryCounters()
        let nic = [40: IRQInfo(name: "eth0-rx", device: "0000:00:04.0")]
        d.update(kernel: [40: count(100, 1)], irqs: nic)
        d.update(kernel: [40: count(250, 3)], irqs: nic)
        let s = DeliveryCounters.Series(irq: 40, name: "eth0-rx", device: "0000:00:04.0")
        #expect(d.series[s] == .init(interrupts: 250, unhandled: 3))
    }

    @Test func reusedIrqNumberStartsAFreshSeriesAndDropsTheOld() {
        var d = DeliveryCounters()
        d.update(kernel: [50: count(1000)], irqs: [50: IRQInfo(name: "vfio-msix[0](0000:00:03.0)", device: "0000:00:03.0")])
        // the guest freed it; another device got irq 50 and took 30 interrupts since
        d.update(kernel: [50: count(1030)], irqs: [50: IRQInfo(name: "nvme0q1", device: "0000:00:05.0")])
        #expect(d.series.count == 1)
        #expect(d.series[.init(irq: 50, name: "nvme0q1", device: "0000:00:05.0")]?.interrupts == 30)
    }

    @Test func settlingAFreedIrqTakesInOnlyWhatCameSinceTheLastUpdate() {
        var d = DeliveryCounters()
        let nic = [40: IRQInfo(name: "eth0-rx", device: "0000:00:04.0")]
        d.update(kernel: [40: count(100)], irqs: nic)
        #expect(d.settle(irq: 40, interrupts: 130) == 30)
        #expect(d.settle(irq: 40, interrupts: 130) == 0, "settled twice")
        #expect(d.series[.init(irq: 40, name: "eth0-rx", device: "0000:00:04.0")]?.interrupts == 130)
        // the next update no longer lists it (gone) and sees the same kernel total: nothing more
        #expect(d.update(kernel: [40: count(130)], irqs: [:]).values.reduce(0, +) == 0)
    }

    @Test func freedIrqLeavesNoStaleSeries() {
        var d = DeliveryCounters()
        d.update(kernel: [60: count(5)], irqs: [60: IRQInfo(name: "x"), 61: IRQInfo(name: "y")])
        d.update(kernel: [60: count(5)], irqs: [61: IRQInfo(name: "y")])
        #expect(d.series.keys.map(\.irq) == [61])
    }

    @Test func requestedIrqsShowZeroUnrequestedSilentOnesAreOmitted() {
        var d = DeliveryCounters()
        d.update(kernel: [:], irqs: [70: IRQInfo(name: "requested"), 71: IRQInfo(name: "")])
        #expect(d.series.keys.map(\.irq) == [70])
        #expect(d.series.values.first?.interrupts == 0)
    }

    @Test func smallerKernelTotalIsARestartNotANegativeDelta() {
        var d = DeliveryCounters()
        let irqs = [80: IRQInfo(name: "a")]
        d.update(kernel: [80: count(500)], irqs: irqs)
        d.update(kernel: [80: count(20)], irqs: irqs)
        #expect(d.series[.init(irq: 80, name: "a", device: nil)]?.interrupts == 520)
    }

    @Test func withoutSysfsEveryCountedIrqIsLive() {
        var d = DeliveryCounters()
        d.update(kernel: [90: count(3)], irqs: [:])
        #expect(d.series[.init(irq: 90, name: "", device: nil)]?.interrupts == 3)
    }
}

@Suite struct VectorSpaceTests {
    @Test func unknownUntilTheKernelSaysSo() {
        var v = VectorSpace()
        #expect(v.global == nil && v.cpus.isEmpty)
        v.apply(MatrixUpdate(op: .reserve, onlineMaps: 2, globalAvailable: 390, globalReserved: 3, totalAllocated: 40))
        #expect(v.global?.reserved == 3)
        #expect(v.cpus.isEmpty)
        v.apply(MatrixUpdate(op: .alloc, bit: 35, perCPU: .init(cpu: 1, online: true, available: 190, allocated: 12, managed: 2),
                             onlineMaps: 2, globalAvailable: 389, globalReserved: 2, totalAllocated: 41))
        #expect(v.cpus[1]?.available == 190)
        #expect(v.cpus[0] == nil)
        #expect(v.global?.allocated == 41)
    }
}
