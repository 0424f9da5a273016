import IrqscopeDecode
import IrqscopeModel
import Testing

/// Whose an event is, as a real QEMU showed it: a VMM's INTx/ERR/REQ set-up is its guest's even
/// before it owns an MSI-X vector, and an interrupt that stops a vCPU thread is not the guest's.
@Suite struct GuestNamingTests {
    let nic = "0000:00:05.0"
    let qemu: UInt32 = 4242

    func event(_ kind: Event.Kind, irq: Int32? = nil, device: String? = nil, tgid: UInt32, result: Int64 = 0) -> Event {
        Event(timeNs: 1, result: result, tgid: tgid, pid: tgid + 1, irq: irq, comm: "qemu-system-x86", device: device, kind: kind)
    }

    func modelWithQEMU() -> HostModel {
        var model = HostModel()
        model.note(process: ProcessIdentity(tgid: qemu, name: "real", source: .qemuName))
        // the NIC was a host driver's before it went to vfio-pci: the model has seen it
        model.apply(event(.irqAlloc(count: 1, msiIndex: 0), irq: 30, device: nic, tgid: 1))
        model.apply(event(.irqFree(count: 1), irq: 30, tgid: 1))
        return model
    }

    @Test func everyVFIOCallOfTheVMMIsItsGuests() {
        let model = modelWithQEMU()
        // INTx trigger set-up, ERR and REQ indices, and the count-0 MSI-X probe that fails EINVAL
        let calls: [(UInt32, UInt32, Int64)] = [(0, 0, 0), (3, 1, 0), (4, 1, 0), (2, 0, -22)]
        for (index, count, result) in calls {
            let e = event(.vfioSetIRQs(VFIOSetIRQs(flags: 0x24, index: index, start: 0, count: count)),
                          device: nic, tgid: qemu, result: result)
            #expect(model.guestName(of: e) == "real", "index \(index) count \(count)")
        }
        #expect(model.guestName(of: event(.requestIRQ(name: "vfio-intx(\(nic))", flags: 0), irq: 11, tgid: qemu)) == "real")
    }

    @Test func hostDevicesStayTheHostsForOtherProcesses() {
        let model = modelWithQEMU()
        let e = event(.msixDisable, device: nic, tgid: 77)
        #expect(model.guestName(of: e) == "host")
    }

    @Test func anInterruptThatStopsAVCPUThreadIsNotTheGuests() {
        var model = modelWithQEMU()
        // the guest owns irq 40 through VFIO
        model.apply(event(.irqAlloc(count: 1, msiIndex: 0), irq: 40, device: nic, tgid: qemu))
        model.apply(event(.requestIRQ(name: "vfio-msix[0](\(nic))", flags: 0), irq: 40, tgid: qemu))
        // irq 4 (a host serial port) returns IRQ_NONE while a QEMU vCPU thread is current
        let serial = event(.unhandled(count: 3), irq: 4, tgid: qemu)
        #expect(model.guestName(of: serial) == nil)
        // the guest's own vector is still the guest's, by irq -> device -> owner
        #expect(model.guestName(of: event(.unhandled(count: 1), irq: 40, tgid: 1)) == "real")
        // a vector the VMM's own allocation set up is the guest's before its first request_irq
        model.apply(event(.irqAlloc(count: 1, msiIndex: 1), irq: 41, device: nic, tgid: qemu))
        #expect(model.guestName(of: event(.vectorConfig(vector: 35, cpu: 0, apicDestination: 0), irq: 41, tgid: 1)) == "real")
        // a vector moved by the IRQ machinery, with no device behind it, is nobody's
        #expect(model.guestName(of: event(.vectorConfig(vector: 34, cpu: 1, apicDestination: 1), irq: 5, tgid: qemu)) == nil)
    }
}
