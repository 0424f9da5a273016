import CSys
import Glibc

/// Hands memory start-up used back to the kernel:
/// - malloc's free pages: start-up frees megabytes (the kernel's BTF parsed twice, /proc files
///   read whole) that otherwise stay resident in malloc's arenas for the whole run;
/// - irqscope's own code pages: start-up runs argument parsing, BTF planning and libbpf's loader
///   once (16.2 MB of the static binary resident after start-up, 13.9 MB after 1,500 scrapes
///   when they are dropped: the kernel maps file pages in blocks around each one touched, with
///   MADV_RANDOM as well). They are dropped from the page tables, not from the page cache: what
///   a scrape runs faults back in, minor faults. Only the executable mapping: code is never
///   written, while a writable or relocated page would lose its contents.
public func releaseFreedMemory() {
    _ = malloc_trim(0)
    var exe = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &exe, exe.count - 1)
    guard n > 0, let maps = readFile("/proc/self/maps") else { return }
    let path = String(decoding: exe[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    for line in maps.split(separator: "\n") {
        // "start-end perms offset dev inode path"
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 6, f[1] == "r-xp", f[5...].joined(separator: " ") == path else { continue }
        let range = f[0].split(separator: "-").compactMap { UInt(String($0), radix: 16) }
        guard range.count == 2, range[1] > range[0], let start = UnsafeMutableRawPointer(bitPattern: range[0]) else { continue }
        _ = madvise(start, Int(range[1] - range[0]), MADV_DONTNEED)
    }
}

/// The same, on a thread of its own once `microseconds` have passed. Serve calls it after its first
/// scrape, so that neither start-up nor that scrape waits the 2 ms it takes, or faults back in
/// the code it would drop. The thread exits after: no wake-up is left behind.
public func releaseFreedMemory(afterMicroseconds microseconds: UInt32) {
    if case .failure = spawnThread(detached: true, {
        usleep(microseconds)
        releaseFreedMemory()
    }) { releaseFreedMemory() }
}
