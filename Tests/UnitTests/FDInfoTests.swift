import IrqscopeHost
import Testing

/// A map's fdinfo as 6.12 writes it: the memlock figure is the kernel's, irqscope only reads it.
@Suite struct FDInfoTests {
    static let map = """
        pos:\t0
        flags:\t02000002
        mnt_id:\t15
        ino:\t1057
        map_type:\t2
        key_size:\t4
        value_size:\t48
        max_entries:\t2048
        map_flags:\t0x400
        map_extra:\t0x0
        memlock:\t102400
        map_id:\t291
        frozen:\t0

        """

    @Test func readsTheNamedField() {
        #expect(fdinfoField(Self.map, "memlock") == 102_400)
        #expect(fdinfoField(Self.map, "map_id") == 291)
        #expect(fdinfoField(Self.map, "max_entries") == 2048)
    }

    /// A kernel that writes no memlock (or a file that is no map's) gives nil, never 0.
    @Test func absentOrMalformedIsNil() {
        #expect(fdinfoField("pos:\t0\nflags:\t02\n", "memlock") == nil)
        #expect(fdinfoField("memlock:\tmany\n", "memlock") == nil)
        #expect(fdinfoField("memlock_extra:\t5\n", "memlock") == nil)
        #expect(fdinfoField("", "memlock") == nil)
    }
}
