import IrqscopeABI
import Testing
import IrqscopeDecode

/// A record as the BPF side writes it: the C struct from the shared header, as bytes.
func record(_ type: irqscope_event_type, irq: Int32 = -1, device: String = "", comm: String = "qemu-system-x86",
            result: Int64 = 0, source: irqscope_source = IRQSCOPE_SRC_TRACEPOINT,
            _ fill: (inout irqscope_event) -> Void = { _ in }) -> [UInt8] {
    var raw = irqscope_event()
    raw.type = type.rawValue
    raw.source = source.rawValue
    raw.time_ns = 123_456_789
    raw.tgid = 4242
    raw.pid = 4243
    raw.cpu = 1
    raw.irq = irq
    raw.result = result
    setCString(&raw.comm, comm)
    setCString(&raw.device, device)
    fill(&raw)
    return withUnsafeBytes(of: raw) { Array($0) }
}

func setCString<T>(_ field: inout T, _ value: String) {
    withUnsafeMutableBytes(of: &field) { buf in
        buf.initializeMemory(as: UInt8.self, repeating: 0)
        for (i, b) in value.utf8.prefix(buf.count - 1).enumerated() { buf[i] = b }
    }
}

func decode(_ bytes: [UInt8]) throws -> Event {
    try bytes.withUnsafeBytes { try Event(record: $0) }
}

@Suite struct EventDecoderTests {
    @Test func commonHeader() throws {
        let e = try decode(record(IRQSCOPE_EV_MSIX_DISABLE, device: "0000:00:03.0", source: IRQSCOPE_SRC_PCI_MSIX_SHUTDOWN))
        #expect(e.kind == .msixDisable)
        #expect(e.timeNs == 123_456_789)
        #expect(e.tgid == 4242 && e.pid == 4243 && e.cpu == 1)
        #expect(e.comm == "qemu-system-x86")
        #expect(e.device == "0000:00:03.0")
        #expect(e.irq == nil)
        #expect(e.source == .pciMSIXShutdown)
    }

    @Test func requestIRQCarriesNameAndResult() throws {
        let e = try decode(record(IRQSCOPE_EV_REQUEST_IRQ, irq: 57, result: -28, source: IRQSCOPE_SRC_REQUEST_THREADED_IRQ) {
            setCString(&$0.u.irq_request.name, "vfio-msix[3](0000:00:03.0)")
            $0.u.irq_request.flags = 0
        })
        #expect(e.kind == .requestIRQ(name: "vfio-msix[3](0000:00:03.0)", flags: 0))
        #expect(e.irq == 57)
        #expect(e.result == -28)
        #expect(e.device == nil)
    }

    @Test func msiDomainRangeUnknownWhenKernelDoesNotSay() throws {
        let old = try decode(record(IRQSCOPE_EV_MSI_ALLOC) {
            $0.u.msi_domain.first = UInt32.max
            $0.u.msi_domain.last = UInt32.max
            $0.u.msi_domain.count = 4
        })
        #expect(old.kind == .msiAlloc(MSIRange(first: nil, last: nil, count: 4)))
        let new = try decode(record(IRQSCOPE_EV_MSI_FREE) {
            $0.u.msi_domain.first = 2
            $0.u.msi_domain.last = 5
            $0.u.msi_domain.count = 4
        })
        #expect(new.kind == .msiFree(MSIRange(first: 2, last: 5, count: 4)))
    }

    @Test func matrixGlobalAndPerCPU() throws {
        let global = try decode(record(IRQSCOPE_EV_MATRIX) {
            $0.u.matrix.op = IRQSCOPE_MATRIX_RESERVE.rawValue
            $0.u.matrix.bit = -1
            $0.u.matrix.global_reserved = 7
            $0.u.matrix.total_allocated = 30
        })
        guard case .matrix(let g) = global.kind else { Issue.record("not a matrix event"); return }
        #expect(g.op == .reserve && g.perCPU == nil && g.bit == nil && g.globalReserved == 7 && g.totalAllocated == 30)

        let cpu = try decode(record(IRQSCOPE_EV_MATRIX) {
            $0.u.matrix.op = IRQSCOPE_MATRIX_ALLOC.rawValue
            $0.u.matrix.bit = 34
            $0.u.matrix.cpu = 1
            $0.u.matrix.has_cpu = 1
            $0.u.matrix.online = 1
            $0.u.matrix.available = 180
            $0.u.matrix.allocated = 20
        })
        guard case .matrix(let c) = cpu.kind else { Issue.record("not a matrix event"); return }
        #expect(c.op == .alloc && c.bit == 34)
        #expect(c.perCPU == MatrixUpdate.PerCPU(cpu: 1, online: true, available: 180, allocated: 20, managed: 0))
    }

    @Test func msixAddSplitsIndexAndFailure() throws {
        let ok = try decode(record(IRQSCOPE_EV_MSIX_ADD, irq: 60, result: 60) {
            $0.u.msix_add.index_requested = 5
            $0.u.msix_add.index_allocated = 5
        })
        #expect(ok.kind == .msixAdd(indexRequested: 5, indexAllocated: 5))
        let failed = try decode(record(IRQSCOPE_EV_MSIX_ADD, result: -28) {
            $0.u.msix_add.index_requested = 190
            $0.u.msix_add.index_allocated = -1
        })
        #expect(failed.kind == .msixAdd(indexRequested: 190, indexAllocated: nil))
        #expect(failed.result == -28)
    }

    @Test func everyEventTypeDecodes() throws {
        for t in 1..<IRQSCOPE_EV_TYPE_MAX.rawValue {
            var bytes = record(irqscope_event_type(rawValue: t))
            // matrix events need a valid op
            if t == IRQSCOPE_EV_MATRIX.rawValue {
                bytes = record(IRQSCOPE_EV_MATRIX) { $0.u.matrix.op = IRQSCOPE_MATRIX_ONLINE.rawValue }
            }
            _ = try decode(bytes)
        }
    }

    @Test func rejectsTruncatedAndUnknown() {
        let full = record(IRQSCOPE_EV_MSIX_DISABLE)
        #expect(throws: DecodeError.truncated(got: 40, want: Event.recordSize)) { try decode(Array(full.prefix(40))) }
        #expect(throws: DecodeError.unknownType(999)) { try decode(record(irqscope_event_type(rawValue: 999))) }
        #expect(throws: DecodeError.unknownSource(77)) {
            try decode(record(IRQSCOPE_EV_MSIX_DISABLE, source: irqscope_source(rawValue: 77)))
        }
    }
}
