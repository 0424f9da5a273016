import CLibbpf
import Glibc
import IrqscopeDecode
import IrqscopeHost
import Synchronization

public struct KernelError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func errno(_ what: String, _ code: Int32 = Glibc.errno) -> KernelError {
        KernelError("\(what): \(errnoName(code))")
    }
}

/// "EPERM (Operation not permitted)" for an errno value (positive or negative).
public func errnoName(_ code: Int32) -> String {
    "\(Errno.name(code)) (\(String(cString: strerror(Int32(truncatingIfNeeded: code.magnitude)))))"
}

/// One loaded libbpf object and its links. libbpf handles are not Sendable: this class is
/// the only place they are held, and every use goes through `lock`.
final class BPFObject: @unchecked Sendable {
    private let object: OpaquePointer
    private let image: UnsafeMutableRawBufferPointer
    private var links: [(program: String, link: OpaquePointer)] = []
    private var closed = false
    private let lock = Mutex(())

    /// Opens (does not load) an ELF object held in memory. libbpf may keep pointers into the
    /// image until the object is closed, so the object owns a copy.
    init(image bytes: [UInt8], name: String) throws(KernelError) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        copy.copyBytes(from: bytes)
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        let opened: OpaquePointer? = name.withCString { cname in
            opts.object_name = cname
            return bpf_object__open_mem(copy.baseAddress, copy.count, &opts)
        }
        guard let opened else {
            let code = errno
            copy.deallocate()
            throw .errno("cannot open the embedded BPF object", code)
        }
        image = copy
        object = opened
    }

    deinit {
        close()
        image.deallocate()
    }

    func setAutoload(_ enabled: Set<String>) {
        lock.withLock { _ in
            var p = bpf_object__next_program(object, nil)
            while let prog = p {
                _ = bpf_program__set_autoload(prog, enabled.contains(String(cString: bpf_program__name(prog))))
                p = bpf_object__next_program(object, prog)
            }
        }
    }

    func setMaxEntries(map: String, _ entries: UInt32) throws(KernelError) {
        let rc = lock.withLock { _ in
            guard let m = bpf_object__find_map_by_name(object, map) else { return -ENOENT }
            return bpf_map__set_max_entries(m, entries)
        }
        if rc != 0 { throw .errno("cannot size map \(map)", -rc) }
    }

    /// Has libbpf parse vmlinux BTF now rather than in `load`: it keeps it for the load once a
    /// tp_btf program's attach target is set (the target it would find itself). Errors are left
    /// to the load to report.
    func parseKernelBTF() {
        lock.withLock { _ in
            var p = bpf_object__next_program(object, nil)
            while let prog = p {
                let section = String(cString: bpf_program__section_name(prog))
                if section.hasPrefix("tp_btf/") {
                    _ = bpf_program__set_attach_target(prog, 0, String(section.dropFirst("tp_btf/".count)))
                    return
                }
                p = bpf_object__next_program(object, prog)
            }
        }
    }

    /// Sets a `const volatile` u32 in .rodata before loading: to the verifier it is a constant.
    func setReadOnly(_ variable: String, _ value: UInt32) throws(KernelError) {
        let done: Bool = lock.withLock { _ in
            guard let btf = bpf_object__btf(object), let map = bpf_object__find_map_by_name(object, ".rodata") else { return false }
            var size = 0
            guard let data = bpf_map__initial_value(map, &size).map(UnsafeMutableRawPointer.init(mutating:)) else { return false }
            let section = btf__find_by_name_kind(btf, ".rodata", btfKindDatasec)
            guard section > 0, let sec = btf__type_by_id(btf, UInt32(section)) else { return false }
            // struct btf_type (12 bytes), then vlen struct btf_var_secinfo {type, offset, size}
            let infos = UnsafeRawPointer(sec).advanced(by: 12)
            for i in 0..<Int(sec.pointee.info & 0xffff) {
                let type = infos.load(fromByteOffset: i * 12, as: UInt32.self)
                let offset = Int(infos.load(fromByteOffset: i * 12 + 4, as: UInt32.self))
                let bytes = Int(infos.load(fromByteOffset: i * 12 + 8, as: UInt32.self))
                guard let v = btf__type_by_id(btf, type), let name = btf__name_by_offset(btf, v.pointee.name_off),
                      String(cString: name) == variable else { continue }
                guard bytes == 4, offset + 4 <= size else { return false }
                data.storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
                return true
            }
            return false
        }
        if !done { throw KernelError("the BPF object lacks its read-only variable \(variable)") }
    }

    /// Loads every program whose autoload is on. On failure, the errno and the programs the
    /// verifier refused, each with what doctor should say.
    func load() -> (errno: Int32, refused: [String: String]) {
        lock.withLock { _ in
            // One log buffer per program: libbpf loads with log level 0 and fills a program's buffer
            // only when the kernel refuses it (it retries with level 1), so a buffer with text
            // names a culprit. 1 MiB each in one lazily backed mapping: a log that does not fit
            // would turn the errno into ENOSPC.
            var loading: [(program: OpaquePointer, name: String)] = []
            var p = bpf_object__next_program(object, nil)
            while let prog = p {
                if bpf_program__autoload(prog) { loading.append((prog, String(cString: bpf_program__name(prog)))) }
                p = bpf_object__next_program(object, prog)
            }
            let size = 1 << 20
            let length = max(loading.count, 1) * size
            let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let logs = mapped, logs != MAP_FAILED else { return (-bpf_object__load(object), [:]) }
            defer { munmap(logs, length) }
            for (i, entry) in loading.enumerated() {
                _ = bpf_program__set_log_buf(entry.program, logs.assumingMemoryBound(to: CChar.self) + i * size, size)
            }
            let rc = bpf_object__load(object)
            for entry in loading { _ = bpf_program__set_log_buf(entry.program, nil, 0) }
            guard rc != 0 else { return (0, [:]) }
            var refused: [String: String] = [:]
            for (i, entry) in loading.enumerated() {
                let log = logs.assumingMemoryBound(to: CChar.self) + i * size
                guard log[0] != 0 else { continue }
                let text = String(cString: log)
                LibbpfLog.debug(program: entry.name, log: text)
                refused[entry.name] = Settle.loadFailure(errno: -rc, log: text)
            }
            return (-rc, refused)
        }
    }

    /// The file descriptor of a loaded program.
    func programFD(_ name: String) -> Int32? {
        lock.withLock { _ in
            guard let prog = bpf_object__find_program_by_name(object, name) else { return nil }
            let fd = bpf_program__fd(prog)
            return fd < 0 ? nil : fd
        }
    }

    /// Attaches a loaded program the way its section says (fentry, kprobe, tp_btf, ...).
    func attach(program name: String) -> Result<Void, KernelError> {
        lock.withLock { _ -> Result<Void, KernelError> in
            guard let prog = bpf_object__find_program_by_name(object, name) else {
                return .failure(KernelError("program \(name) is not in the object"))
            }
            guard let link = bpf_program__attach(prog) else { return .failure(.errno("attach", errno)) }
            links.append((name, link))
            return .success(())
        }
    }

    /// Writes entry 0 of a loaded array map.
    func store<Value: BitwiseCopyable>(map: String, _ value: Value) throws(KernelError) {
        guard let fd = mapFD(map) else { throw KernelError("the BPF object lacks its map \(map)") }
        var key: UInt32 = 0, v = value
        if bpf_map_update_elem(fd, &key, &v, UInt64(BPF_ANY)) != 0 { throw .errno("cannot write map \(map)") }
    }

    func mapFD(_ name: String) -> Int32? {
        lock.withLock { _ in
            guard let m = bpf_object__find_map_by_name(object, name) else { return nil }
            let fd = bpf_map__fd(m)
            return fd < 0 ? nil : fd
        }
    }

    /// Each map's kernel memory as the kernel states it (memlock in the map's fdinfo), and the
    /// maps it states none for. Read, not computed: what the kernel allocates besides the values
    /// (page rounding of mmapable arrays, hash buckets, a ring buffer's pages) is its to know.
    func mapMemory() -> (bytes: [String: UInt64], unreported: [String]) {
        lock.withLock { _ in
            var bytes: [String: UInt64] = [:], unreported: [String] = []
            var map = bpf_object__next_map(object, nil)
            while let m = map {
                defer { map = bpf_object__next_map(object, m) }
                let name = String(cString: bpf_map__name(m)), fd = bpf_map__fd(m)
                guard fd >= 0 else { continue }
                if let n = bpfMapMemlock(fd: fd) { bytes[name] = n } else { unreported.append(name) }
            }
            return (bytes, unreported.sorted())
        }
    }

    /// Run statistics of every attached program (counted while kernel.bpf_stats_enabled=1).
    func programStats() -> [ProgramCost] {
        lock.withLock { _ in
            links.compactMap { entry in
                guard let prog = bpf_object__find_program_by_name(object, entry.program) else { return nil }
                var info = bpf_prog_info()
                var len = UInt32(MemoryLayout<bpf_prog_info>.size)
                guard bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0 else { return nil }
                return ProgramCost(program: entry.program, runs: info.run_cnt, runTimeNs: info.run_time_ns)
            }
        }
    }

    /// Detaches every link and frees the object: nothing of ours stays in the kernel.
    func close() {
        lock.withLock { _ in
            guard !closed else { return }
            closed = true
            for entry in links.reversed() { _ = bpf_link__destroy(entry.link) }
            links.removeAll()
            bpf_object__close(object)
        }
    }
}
