import CLibbpf

/// The type ids of a few names in one BTF object, found in one pass. libbpf's
/// btf__find_by_name_kind scans every type per call: 1-1.5 ms each in vmlinux's 126,700 types
/// on this machine, and planning asks for some fifty names (70 ms of a 145 ms start-up).
struct BTFIndex {
    private var ids: [Key: Int32] = [:]

    private struct Key: Hashable {
        var name: String
        var kind: UInt32
    }

    init(_ btf: OpaquePointer, names: Set<String>) {
        // Strings are made only for names whose byte hash is one of the wanted names' hashes.
        let wanted = Set(names.map { name in name.utf8.withContiguousStorageIfAvailable { Self.hash($0) } ?? Self.hash(Array(name.utf8)) })
        let base = btf__base_btf(btf)
        let first = base.map { btf__type_cnt($0) } ?? 1
        for id in first..<btf__type_cnt(btf) {
            guard let t = btf__type_by_id(btf, id), t.pointee.name_off != 0,
                  let cName = btf__name_by_offset(btf, t.pointee.name_off) else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(cName).assumingMemoryBound(to: UInt8.self), count: strlen(cName))
            guard wanted.contains(Self.hash(bytes)) else { continue }
            let key = Key(name: String(decoding: bytes, as: UTF8.self), kind: (t.pointee.info >> 24) & 0x1f)
            if names.contains(key.name), ids[key] == nil { ids[key] = Int32(id) }
        }
    }

    func id(_ name: String, kind: UInt32) -> Int32? { ids[Key(name: name, kind: kind)] }

    /// FNV-1a
    private static func hash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
