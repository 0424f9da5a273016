import Foundation
import IrqscopeDecode
@testable import IrqscopeKernel
import Testing

extension Host {
    /// Which program a failed load blames, and why, on the real kernel: loads of a program the
    /// kernel accepts next to one it refuses.
    @Suite struct LoadFailure {
        /// The refused program and what the loader says about it: its own log buffer when the
        /// verifier ran, libbpf's global log when the kernel refused it before.
        func load(refusing program: String) throws -> (code: Int32, named: [String: String], byVerifier: Bool) {
            LibbpfLog.install(verbose: false)
            let object = try BPFObject(image: base64Decode(EmbeddedBPF.irqscope), name: "irqscope_refused")
            defer { object.close() }
            object.setAutoload(["raw_tp__vector_alloc", program])
            _ = LibbpfLog.drain()
            let (code, refused) = object.load()
            return (code, refused.isEmpty ? LibbpfLog.refusedPrograms(in: LibbpfLog.drain()) : refused, !refused.isEmpty)
        }

        static var trampolinesRefused: Bool { !KernelFacts.gather().trampolines.ok }
        static var vfioAbsent: Bool { !FileManager.default.fileExists(atPath: "/sys/kernel/btf/vfio_pci_core") }

        /// Without vfio_pci_core's BTF, libbpf cannot relocate the handler's read of
        /// vfio_pci_core_device.pdev and poisons it: the verifier refuses the program.
        @Test(.enabled(if: vfioAbsent, "vfio_pci_core's BTF is present: the program loads"))
        func theVerifiersComplaintFromTheProgramsOwnBuffer() throws {
            let r = try load(refusing: "kretprobe__vfio_pci_set_irqs_ioctl")
            #expect(r.code == EINVAL)
            #expect(r.byVerifier)
            #expect(Array(r.named.keys) == ["kretprobe__vfio_pci_set_irqs_ioctl"])
            let why = try #require(r.named["kretprobe__vfio_pci_set_irqs_ioctl"])
            #expect(why.hasPrefix("load failed: Invalid argument (verifier: ") && why.contains("vfio_pci_core_device"), "\(why)")
        }

        /// A kernel that refuses trampolines does so before the verifier runs: the program's
        /// buffer stays empty and libbpf's own line names it.
        @Test(.enabled(if: trampolinesRefused, "this kernel loads trampolines"))
        func aRefusalBeforeTheVerifierIsNamedByLibbpf() throws {
            let r = try load(refusing: "fexit__free_irq")
            #expect(r.code != 0)
            #expect(!r.byVerifier)
            #expect(r.named == ["fexit__free_irq": "load failed: \(String(cString: strerror(r.code)))"])
        }
    }
}
