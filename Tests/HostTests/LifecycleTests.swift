import Foundation
import Testing
import TestSupport

extension Host {
    @Suite struct Lifecycle {
        @Test(arguments: [SIGTERM, SIGINT])
        func exitLeavesNoProgramsOrLinks(signal: Int32) throws {
            let programsBefore = try HostEnv.bpfProgramIDs(), linksBefore = try HostEnv.bpfLinkIDs()
            let (server, _) = try HostEnv.serve()
            let ours = try HostEnv.bpfProgramIDs().subtracting(programsBefore)
            let ourLinks = try HostEnv.bpfLinkIDs().subtracting(linksBefore)
            #expect(ours.count >= 10, "expected irqscope's programs loaded, saw \(ours.count)")
            #expect(!ourLinks.isEmpty)
            let r = server.stop(signal: signal)
            #expect(r.status == 0, "exit \(r.status): \(r.stderr.suffix(500))")
            #expect(r.stderr.contains("every BPF link detached"))
            #expect(try HostEnv.eventually { try HostEnv.bpfProgramIDs().intersection(ours).isEmpty }, "programs left behind")
            #expect(try HostEnv.eventually { try HostEnv.bpfLinkIDs().intersection(ourLinks).isEmpty }, "links left behind")
            // nothing pinned either
            let pinned = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/bpf")) ?? []
            #expect(!pinned.contains { $0.contains("irqscope") })
        }

        /// Bad input: one line on stderr that names the problem, a non-zero exit.
        @Test(arguments: [
            (["serve", "--no-such-flag"], "--no-such-flag"),
            (["serve", "--web.listen-address=nowhere"], "nowhere"),
            (["serve", "--web.telemetry-path=metrics"], "--web.telemetry-path"),
            (["serve", "--attach=uprobe"], "uprobe"),
            (["frobnicate"], "frobnicate"),
        ])
        func badInputIsOneClearLine(arguments: [String], mentions: String) throws {
            let r = try run([HostEnv.binary] + arguments)
            #expect(r.status != 0)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1, "stderr: \(r.stderr)")
            #expect(r.stderr.contains(mentions), "stderr: \(r.stderr)")
        }

        @Test func portInUseIsOneLineAndLeavesNothing() throws {
            let (first, port) = try HostEnv.serve()
            defer { _ = first.stop() }
            let programs = try HostEnv.bpfProgramIDs()
            let r = try run([HostEnv.binary, "serve", "--web.listen-address=127.0.0.1:\(port)"])
            #expect(r.status != 0)
            #expect(r.stderr.split(separator: "\n").filter { !$0.contains(" info ") && !$0.contains(" warning ") }.count == 1,
                    "stderr: \(r.stderr)")
            #expect(r.stderr.contains("127.0.0.1:\(port)") && r.stderr.contains("address already in use"), "stderr: \(r.stderr)")
            #expect(try HostEnv.eventually { try HostEnv.bpfProgramIDs() == programs }, "the failed instance left programs behind")
        }

        @Test func withoutPrivilegesSaysSo() throws {
            // a copy nobody can execute, run as nobody with no capabilities
            let dir = NSTemporaryDirectory() + "irqscope-nobody-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: HostEnv.binary, toPath: dir + "/irqscope")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
            for command in [["doctor"], ["serve", "--web.listen-address=127.0.0.1:\(freePort())"]] {
                let r = try run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                                 dir + "/irqscope"] + command)
                #expect(r.status != 0)
                #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)")
                #expect(r.stderr.contains("root, or CAP_BPF and CAP_PERFMON, is needed") && r.stderr.contains("without CAP_BPF and CAP_PERFMON"),
                        "stderr: \(r.stderr)")
            }
            // one of the two: the message names the one missing
            let r = try run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+bpf", "--ambient-caps=+bpf",
                             dir + "/irqscope", "doctor"])
            #expect(r.status != 0 && r.stderr.contains("without CAP_PERFMON)"), "stderr: \(r.stderr)")
        }

        /// Root, but bpf(2) refused (seccomp or an LSM) or missing (CONFIG_BPF_SYSCALL off): a
        /// seccomp filter makes the kernel answer bpf() with that errno.
        @Test(arguments: [(1, "BPF restricted by seccomp or an LSM"), (38, "no bpf() system call")])
        func withoutBPFSaysSo(errno: Int, mentions: String) throws {
            for command in [["doctor"], ["serve"]] {
                let r = try run(["python3", "-c", Self.failBPF, String(errno), HostEnv.binary] + command)
                #expect(r.status != 0)
                #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)")
                #expect(r.stderr.contains(mentions), "stderr: \(r.stderr)")
            }
        }

        /// argv: errno, program, arguments. Installs a seccomp filter under which bpf(2) fails
        /// with that errno, then executes the program.
        static let failBPF = """
            import ctypes, os, struct, sys
            def ins(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
            prog = b"".join([
                ins(0x20, 0, 0, 4), ins(0x15, 1, 0, 0xc000003e), ins(0x06, 0, 0, 0x7fff0000),  # not x86_64: allow
                ins(0x20, 0, 0, 0), ins(0x15, 0, 1, 321),                                        # nr == bpf?
                ins(0x06, 0, 0, 0x00050000 | int(sys.argv[1])), ins(0x06, 0, 0, 0x7fff0000)])   # errno / allow
            buf = ctypes.create_string_buffer(prog)
            class Prog(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
            p = Prog(len(prog) // 8, ctypes.addressof(buf))
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(p), 0, 0):  # NO_NEW_PRIVS, SECCOMP filter
                sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
            os.execv(sys.argv[2], sys.argv[2:])
            """

        @Test func strictRefusesWhenAFamilyIsMissing() throws {
            let doctor = try run([HostEnv.binary, "doctor", "--json"])
            let json = try JSONSerialization.jsonObject(with: Data(doctor.stdout.utf8)) as? [String: Any] ?? [:]
            let missing = (json["families"] as? [[String: Any]] ?? []).filter { $0["available"] as? Bool == false }
            if missing.isEmpty {
                // every family attaches here: --strict serves
                let (serve, port) = try HostEnv.serve(["--strict"])
                #expect(try HostEnv.scrape(port).samples.contains { $0.name == "irqscope_build_info" })
                #expect(serve.stop().status == 0)
            } else {
                let r = try run([HostEnv.binary, "serve", "--strict", "--web.listen-address=127.0.0.1:\(freePort())"], timeout: 30)
                #expect(r.status == 1)
                #expect(r.stderr.contains("--strict: probe family"))
            }
        }

        /// The release binary carries its BPF object and runtime: copied alone, it runs.
        @Test func releaseBinaryRunsWhenCopiedAlone() throws {
            let release = packageRoot + "/.build/release/irqscope"
            try #require(FileManager.default.isExecutableFile(atPath: release), "no release build: run 'make release'")
            let dir = NSTemporaryDirectory() + "irqscope-alone-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: release, toPath: dir + "/irqscope")
            let ldd = try run(["ldd", dir + "/irqscope"])
            #expect(!ldd.stdout.contains("libswift") && !ldd.stdout.contains("libbpf") && !ldd.stdout.contains("/opt/swift"),
                    "depends on the build tree: \(ldd.stdout)")
            let r = try run([dir + "/irqscope", "doctor", "--json"], environment: ["LD_LIBRARY_PATH": ""])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stdout.contains("\"can_serve\":true"))
        }
    }
}
