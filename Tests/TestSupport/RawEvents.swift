import IrqscopeABI

/// A ring-buffer record as the kernel writes it (pid and tgid 42), for recordings a test crafts.
public func rawEvent(_ type: irqscope_event_type, irq: Int32 = -1, at time: UInt64 = 1_000_000, result: Int64 = 0,
                     device: String = "", _ setup: (inout irqscope_event) -> Void = { _ in }) -> [UInt8] {
    var e = irqscope_event()
    e.type = type.rawValue
    e.result = result
    e.irq = irq
    e.time_ns = time
    e.tgid = 42
    e.pid = 42
    withUnsafeMutableBytes(of: &e.device) { d in for (i, c) in device.utf8.prefix(15).enumerated() { d[i] = c } }
    setup(&e)
    return withUnsafeBytes(of: e) { Array($0) }
}
