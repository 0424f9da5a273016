import IrqscopeHost
import Testing

@Suite struct CPUListTests {
    @Test func rangesAndSingles() {
        #expect(parseCPUList("0-1\n") == [0, 1])
        #expect(parseCPUList("0-255\n")?.count == 256)
        #expect(parseCPUList("0,2-3,7\n") == [0, 2, 3, 7])
        #expect(parseCPUList("\n") == [])
    }

    /// A list irqscope cannot read makes it sum every possible CPU, never fewer.
    @Test func malformedIsNil() {
        #expect(parseCPUList("0-") == nil)
        #expect(parseCPUList("3-1") == nil)
        #expect(parseCPUList("a") == nil)
        #expect(parseCPUList("0-1-2") == nil)
    }
}
