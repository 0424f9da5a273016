import Glibc

// include/uapi/linux/btf.h's BTF_KIND_*: the macros import ambiguously (the enum and its #define).
let btfKindStruct: UInt32 = 4
let btfKindTypedef: UInt32 = 8
let btfKindFunc: UInt32 = 12
let btfKindDatasec: UInt32 = 15

/// A kernel BTF object (vmlinux, or a module's split BTF on top of it) read raw from
/// /sys/kernel/btf, for planning's few questions: which names exist, as what kind, and with
/// what members. Not libbpf's btf__load_vmlinux_btf: bpf_object__load parses vmlinux BTF again
/// itself (libbpf 1.1 takes no parsed BTF from outside), and the parse planning did besides was
/// 15-26 ms of a start-up now under 100 ms, reading 5.5 MB through kernfs into fresh pages.
/// Where the kernel lets the file be mapped (6.16+) nothing is copied.
final class KernelBTF {
    private let data: UnsafeRawPointer
    private let length: Int
    private let mapped: Bool
    private let types: Range<Int>, strings: Range<Int>
    /// vmlinux, for a module's split BTF: its strings come first, its types' ids first.
    let base: KernelBTF?
    /// The id of the first type here (1 for vmlinux: 0 is void).
    let firstID: UInt32
    /// One past the last type id.
    private(set) var endID: UInt32 = 0
    /// Where each type starts, by id - firstID.
    private var offsets: [Int32] = []

    /// nil when the file is missing or is not BTF this reader knows.
    convenience init?(path: String, base: KernelBTF? = nil) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 24 else { return nil }
        let size = Int(st.st_size)
        if let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED {
            self.init(owning: UnsafeRawPointer(m), size: size, mapped: true, base: base)
            return
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        var got = 0
        while got < size {
            let n = read(fd, buffer + got, size - got)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        guard got == size else {
            buffer.deallocate()
            return nil
        }
        self.init(owning: UnsafeRawPointer(buffer), size: size, mapped: false, base: base)
    }

    /// A copy of BTF libbpf found elsewhere (vmlinux without /sys/kernel/btf: an ELF in /boot).
    convenience init?(copying raw: UnsafeRawBufferPointer) {
        guard let from = raw.baseAddress, raw.count >= 24 else { return nil }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: raw.count, alignment: 8)
        buffer.copyMemory(from: from, byteCount: raw.count)
        self.init(owning: UnsafeRawPointer(buffer), size: raw.count, mapped: false, base: nil)
    }

    /// Takes `data` (mapped, or allocated), and releases it if it is not BTF this reader knows.
    private init?(owning data: UnsafeRawPointer, size: Int, mapped: Bool, base: KernelBTF?) {
        // struct btf_header: magic u16, version u8, flags u8, hdr_len, type_off, type_len, str_off, str_len
        let hdrLen = Int(data.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let typeOff = Int(data.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let typeLen = Int(data.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let strOff = Int(data.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        let strLen = Int(data.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        let types = hdrLen + typeOff ..< hdrLen + typeOff + typeLen
        let strings = hdrLen + strOff ..< hdrLen + strOff + strLen
        guard data.loadUnaligned(as: UInt16.self) == 0xeb9f, types.upperBound <= size, strings.upperBound <= size,
              let offsets = Self.index(data, types) else {
            if mapped { munmap(UnsafeMutableRawPointer(mutating: data), size) } else { data.deallocate() }
            return nil
        }
        self.data = data
        self.mapped = mapped
        length = size
        self.types = types
        self.strings = strings
        self.base = base
        firstID = base?.endID ?? 1
        self.offsets = offsets
        endID = firstID + UInt32(offsets.count)
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: data), length) } else { data.deallocate() }
    }

    /// Where each type record starts; nil at a kind this reader does not know the size of.
    private static func index(_ data: UnsafeRawPointer, _ types: Range<Int>) -> [Int32]? {
        var offsets: [Int32] = []
        offsets.reserveCapacity((types.count) / 16)
        var at = types.lowerBound
        while at + 12 <= types.upperBound {
            offsets.append(Int32(at))
            let info = data.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)
            let vlen = Int(info & 0xffff)
            let extra: Int
            switch (info >> 24) & 0x1f {
            case 1, 14, 17: extra = 4                        // INT, VAR, DECL_TAG
            case 3: extra = 12                               // ARRAY
            case 4, 5, 15, 19: extra = vlen * 12             // STRUCT, UNION, DATASEC, ENUM64
            case 6, 13: extra = vlen * 8                     // ENUM, FUNC_PROTO
            case 2, 7, 8, 9, 10, 11, 12, 16, 18: extra = 0   // PTR, FWD, TYPEDEF, modifiers, FUNC, FLOAT, TYPE_TAG
            default: return nil
            }
            at += 12 + extra
        }
        return at == types.upperBound ? offsets : nil
    }

    /// A name's bytes (NUL-terminated), from here or, in split BTF, from the base.
    private func name(_ offset: UInt32) -> UnsafePointer<CChar>? {
        if let base {
            let baseLength = UInt32(base.strings.count)
            if offset < baseLength { return base.name(offset) }
            return name(local: Int(offset - baseLength))
        }
        return name(local: Int(offset))
    }

    private func name(local offset: Int) -> UnsafePointer<CChar>? {
        guard offset < strings.count else { return nil }
        return (data + strings.lowerBound + offset).assumingMemoryBound(to: CChar.self)
    }

    /// The ids of `names` here, by (name, kind), found in one pass.
    func index(names: Set<String>) -> BTFIndex { BTFIndex(self, names: names) }

    fileprivate func forEachType(_ body: (_ id: UInt32, _ record: UnsafeRawPointer, _ name: UnsafePointer<CChar>?) -> Void) {
        for (i, at) in offsets.enumerated() {
            let record = data + Int(at)
            let nameOff = record.loadUnaligned(as: UInt32.self)
            body(firstID + UInt32(i), record, nameOff == 0 ? nil : name(nameOff))
        }
    }

    /// Whether the struct has the member; nil when the struct is not here at all.
    func hasMember(struct structName: String, member: String) -> Bool? {
        var found: Bool?
        forEachType { _, record, name in
            guard found == nil, let name, (record.loadUnaligned(fromByteOffset: 4, as: UInt32.self) >> 24) & 0x1f == btfKindStruct,
                  String(cString: name) == structName else { return }
            let vlen = Int(record.loadUnaligned(fromByteOffset: 4, as: UInt32.self) & 0xffff)
            // struct btf_type (12 bytes), then vlen struct btf_member {name_off, type, offset}
            found = (0..<vlen).contains { i in
                self.name(record.loadUnaligned(fromByteOffset: 12 + i * 12, as: UInt32.self)).map { String(cString: $0) == member } ?? false
            }
        }
        return found
    }
}

/// The type ids of a few names in one BTF object, found in one pass. libbpf's
/// btf__find_by_name_kind scans every type per call: 1-1.5 ms each in vmlinux's 126,700 types
/// on this machine, and planning asks for some fifty names (70 ms of a 145 ms start-up).
struct BTFIndex {
    private var ids: [Key: Int32] = [:]

    private struct Key: Hashable {
        var name: String
        var kind: UInt32
    }

    fileprivate init(_ btf: KernelBTF, names: Set<String>) {
        // Strings are made only for names whose byte hash is one of the wanted names' hashes, and
        // hashed only when their first two bytes are some wanted name's (a bit per pair): most of
        // vmlinux's 60,000 function names are not looked at further.
        let wanted = Set(names.map { name in name.utf8.withContiguousStorageIfAvailable { Self.hash($0) } ?? Self.hash(Array(name.utf8)) })
        var prefixes = [UInt64](repeating: 0, count: 65536 / 64)
        for name in names {
            let u = Array(name.utf8)
            let pair = Int(u.first ?? 0) | Int(u.count > 1 ? u[1] : 0) << 8
            prefixes[pair >> 6] |= 1 << UInt64(pair & 63)
        }
        btf.forEachType { id, record, cName in
            // planning asks only for functions and typedefs (btf_trace_<tracepoint>)
            let kind = (record.loadUnaligned(fromByteOffset: 4, as: UInt32.self) >> 24) & 0x1f
            guard let cName, kind == btfKindFunc || kind == btfKindTypedef else { return }
            let first = UInt8(bitPattern: cName[0])
            let pair = Int(first) | (first == 0 ? 0 : Int(UInt8(bitPattern: cName[1])) << 8)
            guard prefixes[pair >> 6] & (1 << UInt64(pair & 63)) != 0 else { return }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(cName).assumingMemoryBound(to: UInt8.self), count: strlen(cName))
            guard wanted.contains(Self.hash(bytes)) else { return }
            let key = Key(name: String(decoding: bytes, as: UTF8.self), kind: kind)
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
