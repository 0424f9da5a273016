import Foundation
import IrqscopeDecode
import IrqscopeHost
import Testing

/// The guest-name resolver on fabricated /proc and cgroup trees.
@Suite struct ResolverTests {
    let root = NSTemporaryDirectory() + "irqscope-proc-\(UUID().uuidString)"

    func process(_ pid: Int, cmdline: [String], cgroup: String = "0::/user.slice\n", comm: String = "qemu-system-x86",
                 files: [String: String] = [:]) throws {
        let dir = "\(root)/proc/\(pid)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data((cmdline.joined(separator: "\u{0}") + "\u{0}").utf8).write(to: URL(fileURLWithPath: dir + "/cmdline"))
        try cgroup.write(toFile: dir + "/cgroup", atomically: true, encoding: .utf8)
        try (comm + "\n").write(toFile: dir + "/comm", atomically: true, encoding: .utf8)
        for (path, text) in files {
            let full = dir + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    func identify(_ pid: UInt32) -> ProcessIdentity { ProcessResolver(root: root).identify(pid, comm: "fallback") }

    struct Case: Sendable, CustomTestStringConvertible {
        var cmdline: [String]
        var cgroup = "0::/user.slice\n"
        var files: [String: String] = [:]
        var name: String
        var source: ProcessIdentity.Source
        var testDescription: String { "\(source.rawValue): \(name)" }
    }

    static let cases: [Case] = [
        // QEMU -name, both forms
        Case(cmdline: ["/usr/bin/qemu-system-x86_64", "-name", "guest=alpha,debug-threads=on", "-m", "1024"],
             name: "alpha", source: .qemuName),
        Case(cmdline: ["qemu-system-x86_64", "-name", "beta"], name: "beta", source: .qemuName),
        // libvirt scope with an ID, and the legacy scope on cgroup v1
        Case(cmdline: ["/usr/libexec/qemu-kvm", "-m", "2048"],
             cgroup: "0::/machine.slice/machine-qemu\\x2d3\\x2dweb\\x2dfront.scope/libvirt/vcpu0\n",
             name: "web-front", source: .libvirtScope),
        Case(cmdline: ["qemu-kvm"],
             cgroup: "12:cpuset:/machine.slice\n1:name=systemd:/machine.slice/machine-qemu\\x2ddb1.scope\n",
             name: "db1", source: .libvirtScope),
        // KubeVirt: from the libvirt domain name (systemd cgroup driver), else from the pod (cgroupfs)
        Case(cmdline: ["/usr/libexec/qemu-kvm", "-name", "guest=prod_vm-a,debug-threads=on"],
             cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f1e_2b3a.slice/cri-containerd-abc.scope\n",
             name: "prod/vm-a", source: .kubevirt),
        Case(cmdline: ["/usr/libexec/qemu-kvm"], cgroup: "0::/kubepods/besteffort/pod5f1e2b3a/abcdef\n",
             files: ["root/etc/hostname": "virt-launcher-vm-b-x7k2p\n",
                     "root/var/run/secrets/kubernetes.io/serviceaccount/namespace": "staging"],
             name: "staging/vm-b", source: .kubevirt),
    ]

    @Test(arguments: cases) func names(_ c: Case) throws {
        try process(100, cmdline: c.cmdline, cgroup: c.cgroup, files: c.files)
        #expect(identify(100) == ProcessIdentity(tgid: 100, name: c.name, source: c.source))
    }

    @Test func commAndPidOtherwise() throws {
        try process(106, cmdline: ["./vmm", "--device", "0000:00:06.0"], comm: "vmm")
        #expect(identify(106) == ProcessIdentity(tgid: 106, name: "vmm-106", source: .comm))
        #expect(identify(999) == ProcessIdentity(tgid: 999, name: "fallback-999", source: .comm))
        #expect(ProcessResolver(root: root).alive(106) && !ProcessResolver(root: root).alive(999))
    }

    /// A VMM is known by its open VFIO group before its first VFIO call returns; other processes are not.
    @Test func aVMMHoldsAVFIOGroupOpen() throws {
        try process(300, cmdline: ["qemu-system-x86_64", "-name", "guest=real"])
        try process(301, cmdline: ["modprobe", "e1000e"], comm: "modprobe")
        try FileManager.default.createDirectory(atPath: "\(root)/proc/300/fd", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/proc/301/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/proc/300/fd/0", withDestinationPath: "/dev/null")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/proc/300/fd/12", withDestinationPath: "/dev/vfio/7")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/proc/301/fd/3", withDestinationPath: "/dev/vfio-not")
        // the lab's QEMU runs in a chroot: its group seen from our root
        try process(303, cmdline: ["qemu-system-x86_64", "-name", "guest=chrooted"])
        try FileManager.default.createDirectory(atPath: "\(root)/proc/303/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/proc/303/fd/9", withDestinationPath: "/vmm/root/dev/vfio/3")
        let resolver = ProcessResolver(root: root)
        #expect(resolver.holdsVFIO(300))
        #expect(resolver.holdsVFIO(303))
        #expect(!resolver.holdsVFIO(301))
        #expect(!resolver.holdsVFIO(302))
    }

    @Test func runningGuestsAreTheProcessesHoldingVFIO() throws {
        try process(400, cmdline: ["qemu-system-x86_64", "-name", "guest=one"])
        try process(401, cmdline: ["qemu-system-x86_64", "-name", "guest=idle"])
        try process(402, cmdline: ["./vmm"], comm: "vmm")
        for (pid, target) in [(400, "/dev/vfio/7"), (401, "/dev/null"), (402, "/dev/vfio/devices/vfio0")] {
            try FileManager.default.createDirectory(atPath: "\(root)/proc/\(pid)/fd", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: "\(root)/proc/\(pid)/fd/5", withDestinationPath: target)
        }
        try FileManager.default.createDirectory(atPath: "\(root)/proc/self", withIntermediateDirectories: true)
        #expect(ProcessResolver(root: root).runningGuests() == ["one", "vmm-402"])
        #expect(ProcessResolver(root: root + "/nowhere").runningGuests().isEmpty)
    }

    /// A VMM's children (its helpers) are followed with it; a sibling is not, nor anything once
    /// the chain breaks.
    @Test func followedWalksTheParentChain() throws {
        let parents: [Int: Int] = [500: 1, 501: 500, 502: 501, 510: 1, 520: 520, 530: 999]
        for (pid, parent) in parents {
            try process(pid, cmdline: ["x"], files: ["status": "Name:\tx\nTgid:\t\(pid)\nPPid:\t\(parent)\nUid:\t0\n"])
        }
        let resolver = ProcessResolver(root: root)
        #expect(resolver.parent(of: 502) == 501)
        #expect(resolver.parent(of: 999) == nil)
        let followed = Followed(root: 500, processes: resolver)
        #expect(followed.contains(500) && followed.contains(501) && followed.contains(502))
        #expect(!followed.contains(510))
        #expect(!followed.contains(520)) // its own parent: the walk ends
        #expect(!followed.contains(530)) // parent gone
        followed.root = 501
        #expect(followed.contains(502) && !followed.contains(500))
        #expect(!Followed(root: nil, processes: resolver).contains(500))
    }
}
