import Glibc
import IrqscopeDecode
import IrqscopeHost
import Testing

@Suite struct CapabilitiesTests {
    // include/uapi/linux/capability.h
    static let capSysPtrace: UInt64 = 1 << 19, capBPF: UInt64 = 1 << 39

    @Test func parsesListsAndKeywords() throws {
        #expect(try Capabilities.mask("bpf,sys_ptrace") == Self.capBPF | Self.capSysPtrace)
        #expect(try Capabilities.mask("CAP_BPF,Cap_Sys_Ptrace") == Self.capBPF | Self.capSysPtrace)
        #expect(try Capabilities.mask("all") == nil)
        #expect(try Capabilities.mask("none") == 0)
        #expect(try Capabilities.mask("auto") == 0)
        #expect(Capabilities.names(Self.capBPF | Self.capSysPtrace) == ["bpf", "sys_ptrace"])
    }

    /// A list that does not parse is refused with what is wrong, never read as "keep nothing" or "keep all".
    @Test func refusesWhatItCannotParse() {
        #expect(throws: CapabilityError.emptyList) { try Capabilities.mask("") }
        #expect(throws: CapabilityError.unknown("nope")) { try Capabilities.mask("bpf,nope") }
        #expect(throws: CapabilityError.unknown("cap_")) { try Capabilities.mask("cap_") }
        #expect(throws: CapabilityError.unknown("all")) { try Capabilities.mask("bpf,all") }
        #expect(CapabilityError.unknown("nope").description == "unknown capability 'nope'")
    }

    @Test func aFailedDropSaysWhichStepAndWhy() {
        let error = CapabilityError.dropFailed(Errno(-EPERM, "setresuid"))
        #expect(error.description == "cannot drop capabilities: setresuid: EPERM (\(String(cString: strerror(EPERM))))")
    }
}

@Suite struct ErrnoTests {
    /// The written-out table against this libc's constants.
    @Test func namesMatchTheLibc() {
        let libc: [(Int32, String)] = [(EPERM, "EPERM"), (ENOENT, "ENOENT"), (EACCES, "EACCES"), (EBUSY, "EBUSY"),
                                       (EINVAL, "EINVAL"), (ENOSPC, "ENOSPC"), (ENOSYS, "ENOSYS"),
                                       (EOPNOTSUPP, "EOPNOTSUPP"), (EADDRINUSE, "EADDRINUSE"), (ETIMEDOUT, "ETIMEDOUT")]
        for (code, name) in libc {
            #expect(Errno.name(code) == name)
            #expect(Errno.name(-code) == name)
            #expect(Errno(-code, "x").code == code)
        }
        #expect(Errno.name(4095) == "errno4095")
        #expect(Errno.name(result: Int64.min) == "errno\(Int32.max)")
    }
}
