import IrqscopeDecode
import Testing

/// VFIO_DEVICE_SET_IRQS as the trace names it, for the flag combinations QEMU 7.2 and 10 sent in
/// the real-VMM lab (include/uapi/linux/vfio.h: DATA_NONE 1, DATA_BOOL 2, DATA_EVENTFD 4,
/// ACTION_MASK 8, ACTION_UNMASK 16, ACTION_TRIGGER 32).
@Suite struct VFIONamesTests {
    func set(_ flags: UInt32, index: UInt32, count: UInt32 = 1) -> VFIOSetIRQs {
        VFIOSetIRQs(flags: flags, index: index, start: 0, count: count)
    }

    @Test func actionsAsQEMUSendsThem() {
        #expect(set(0x9, index: 0).actionName == "mask")
        #expect(set(0x11, index: 0).actionName == "unmask")
        #expect(set(0x14, index: 0).actionName == "unmask (eventfd)")
        #expect(set(0x24, index: 2).actionName == "eventfds")
        #expect(set(0x21, index: 2, count: 0).actionName == "disable")
        #expect(set(0x21, index: 2, count: 1).actionName == "trigger")
        #expect(set(0x22, index: 2).actionName == "trigger (bool)")
        #expect(set(0x40, index: 2).actionName == "flags 0x40")
    }

    @Test func indexNamesIncludeVFIOsNone() {
        #expect((0...6).map { set(0x21, index: $0).indexName } == ["INTx", "MSI", "MSI-X", "ERR", "REQ", "none", "index 6"])
    }

    /// Only the failures vfio-pci's code makes harmless are called so.
    @Test func harmlessOnlyWhereNothingChanged() {
        let ENOTTY: Int32 = 25, EINVAL: Int32 = 22, ENOSPC: Int32 = 28
        #expect(set(0x21, index: 5, count: 0).harmlessFailure(errno: ENOTTY) != nil)
        #expect(set(0x21, index: 2, count: 0).harmlessFailure(errno: EINVAL) != nil)
        #expect(set(0x24, index: 3).harmlessFailure(errno: ENOTTY) != nil)
        #expect(set(0x24, index: 2).harmlessFailure(errno: EINVAL) == nil, "an enable refused is a real failure")
        #expect(set(0x24, index: 2).harmlessFailure(errno: ENOSPC) == nil)
        #expect(set(0x24, index: 4).harmlessFailure(errno: ENOTTY) == nil, "vfio-pci always has REQ")
    }
}
