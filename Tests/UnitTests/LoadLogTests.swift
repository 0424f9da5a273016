import IrqscopeKernel
import Testing

@Suite struct LoadLogTests {
    @Test func namesTheProgramAndTheVerifiersComplaint() {
        // libbpf 1.1 on Linux 6.1: the log is one message with embedded newlines
        let log = [
            "prog 'fexit__free_irq': BPF program load failed: Permission denied\n",
            "prog 'fexit__free_irq': -- BEGIN PROG LOAD LOG --\nreg type unsupported for arg#0 function fexit__free_irq#238\n0: R1=ctx(off=0,imm=0) R10=fp0\n1: (79) r6 = *(u64 *)(r1 +16)\nfunc 'free_irq' arg2 type UNKNOWN is not a struct\nprocessed 2 insns (limit 1000000)\n-- END PROG LOAD LOG --\n",
            "prog 'fexit__free_irq': failed to load: -13\n",
            "failed to load object 'irqscope'\n",
        ]
        let failed = KernelSession.failedPrograms(in: log)
        #expect(failed.keys.sorted() == ["fexit__free_irq"])
        #expect(failed["fexit__free_irq"] == "load failed: Permission denied (verifier: func 'free_irq' arg2 type UNKNOWN is not a struct)")
    }
}
