import Foundation

/// A fabricated file tree (sysfs, /proc) under a fresh temporary root, removed with the value.
public final class FakeTree {
    public let root: String

    public init(_ name: String) { root = NSTemporaryDirectory() + "irqscope-\(name)-\(UUID().uuidString)" }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Writes `text` at `path` under the root, creating the directories on the way.
    public func write(_ path: String, _ text: String) throws {
        let full = root + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
}
