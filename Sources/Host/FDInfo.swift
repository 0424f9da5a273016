/// A numeric field of /proc/PID/fdinfo/FD ("memlock:\t98304"), nil when the kernel does not
/// write it.
public func fdinfoField(_ text: String, _ key: String) -> UInt64? {
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == key else { continue }
        return UInt64(parts[1].drop { $0 == " " || $0 == "\t" })
    }
    return nil
}

/// The kernel memory a BPF map of this process is charged for, as the kernel states it in the
/// map's fdinfo (4.10 and later; since 6.4 each map type's own estimate of what it allocated).
public func bpfMapMemlock(fd: Int32) -> UInt64? {
    readFile("/proc/self/fdinfo/\(fd)").flatMap { fdinfoField($0, "memlock") }
}
