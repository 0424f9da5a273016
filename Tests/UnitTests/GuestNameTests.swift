import IrqscopeDecode
import Testing

/// The VMM stacks' naming conventions on the odd inputs they allow; the fabricated /proc trees of
/// ResolverTests cover the order in which they are tried.
@Suite struct GuestNameTests {
    @Test(arguments: [
        (["qemu", "-name", "guest=alpha,debug-threads=on"], "alpha"),
        (["qemu", "-name", "alpha"], "alpha"),
        (["qemu", "--name", "alpha,process=qemu:alpha"], "alpha"),
        (["qemu", "-name", "debug-threads=on,guest=late"], "late"),
        // libvirt escapes a domain name's commas; QEMU reads ",," as one
        (["qemu", "-name", "guest=a,,b,debug-threads=on"], "a,b"),
        (["qemu", "-name", "a,,b=c"], "a,b=c"),
        (["qemu", "-name", "guest=ends,,"], "ends,"),
        // repeated -name options merge, the last guest winning
        (["qemu", "-name", "guest=first", "-m", "1G", "-name", "guest=second"], "second"),
        (["qemu", "-name", "guest=kept", "-name", "debug-threads=on"], "kept"),
        (["qemu", "-name", "guest=", "-name", "x=y"], nil),
        (["qemu", "-name", "process=p,debug-threads=on"], nil),
        (["qemu", "-name", ",debug-threads=on"], nil),
        (["qemu", "-name", ""], nil),
        (["qemu", "-name"], nil),
        (["qemu", "-m", "1024"], nil),
        ([], nil),
    ] as [([String], String?)])
    func qemu(_ arguments: [String], _ name: String?) {
        #expect(GuestName.qemu(arguments) == name)
    }

    @Test(arguments: [
        ("/machine.slice/machine-qemu\\x2d3\\x2dweb\\x2dfront.scope/libvirt/vcpu0", "web-front"),
        ("/machine.slice/machine-qemu\\x2ddb1.scope", "db1"),
        ("/machine.slice/machine-qemu\\x2d12\\x2dcaf\\xc3\\xa9.scope", "café"),
        // uppercase hex, as systemd-escape accepts back
        ("/machine.slice/machine-qemu\\x2D4\\x2Dup.scope", "up"),
        // a broken or truncated escape stays as written
        ("/machine.slice/machine-qemu\\x2d5\\x2dodd\\xZZ.scope", "odd\\xZZ"),
        ("/machine.slice/machine-qemu\\x2d6\\x2dcut\\x2.scope", "cut\\x2"),
        ("/machine.slice/machine-qemu\\x2d7\\x2d.scope", nil),
        ("/machine.slice/machine-qemu\\x2d.scope", nil),
        // unescaped dashes read as escaped ones
        ("/machine.slice/machine-qemu-8-plain.scope", "plain"),
        ("/machine.slice/machine-qemuX.scope", nil),
        ("/machine.slice/machine-qemu\\x2d9\\x2dunfinished", nil),
        ("/machine.slice/machine-lxc\\x2d1\\x2dct.scope", nil),
        ("/user.slice", nil),
        ("", nil),
    ] as [(String, String?)])
    func libvirt(_ cgroup: String, _ name: String?) {
        #expect(GuestName.libvirt(cgroup: cgroup) == name)
    }

    @Test func cgroupPathPrefersV2ThenV1sSystemdHierarchy() {
        #expect(GuestName.cgroupPath("0::/machine.slice/a.scope\n") == "/machine.slice/a.scope")
        #expect(GuestName.cgroupPath("12:cpuset:/x\n1:name=systemd:/machine.slice/b.scope\n0::/\n") == "/")
        #expect(GuestName.cgroupPath("12:cpuset:/x\n1:name=systemd:/machine.slice/b.scope\n") == "/machine.slice/b.scope")
        // a cgroup's name may hold anything but '/'
        #expect(GuestName.cgroupPath("0::/machine.slice/odd:name.scope\n") == "/machine.slice/odd:name.scope")
        #expect(GuestName.cgroupPath("12:cpuset:/x\n") == nil)
        #expect(GuestName.cgroupPath("") == nil)
    }

    @Test func kubernetesPods() {
        #expect(GuestName.inKubernetesPod(cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f1e_2b3a.slice/cri-containerd-abc.scope"))
        #expect(GuestName.inKubernetesPod(cgroup: "/kubepods/besteffort/pod5f1e2b3a/abcdef"))
        #expect(!GuestName.inKubernetesPod(cgroup: "/kubepods.slice"))
        #expect(!GuestName.inKubernetesPod(cgroup: "/machine.slice/pod.scope"))
    }

    @Test(arguments: [
        ("prod_vm-a", "prod/vm-a"),
        ("ns_vm_with_underscore", "ns/vm_with_underscore"),
        ("no-underscore", nil),
        ("_vm", nil),
        ("ns_", nil),
    ] as [(String, String?)])
    func kubevirtDomain(_ domain: String, _ name: String?) {
        #expect(GuestName.kubevirt(domain: domain) == name)
    }

    @Test(arguments: [
        ("virt-launcher-vm-b-x7k2p", "staging", "staging/vm-b"),
        ("virt-launcher-vm-b-x7k2p", nil, "vm-b"),
        ("virt-launcher-vm-b-x7k2p", "", "vm-b"),
        // truncated at the first dash after the prefix: nothing left to name
        ("virt-launcher-", "ns", nil),
        ("virt-launcher-vmonly", "ns", nil),
        ("virt-launcher--x7k2p", "ns", nil),
        ("virt-launcher", "ns", nil),
        ("web-7d4b9-x7k2p", "ns", nil),
    ] as [(String, String?, String?)])
    func kubevirtPod(_ host: String, _ namespace: String?, _ name: String?) {
        #expect(GuestName.kubevirt(podHostname: host, namespace: namespace) == name)
    }
}
