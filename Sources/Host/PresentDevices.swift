import Glibc
import IrqscopeDecode

/// The PCI devices that hold MSI/MSI-X irqs now, read from sysfs and /proc under `root` (tests
/// pass a fabricated tree): what irqscope cannot see allocated because it happened before it
/// started. Read once the programs are attached, so that whatever changes after the look is an
/// event that follows it.
public struct PresentDevices: Sendable {
    public var root: String
    private let resolver: ProcessResolver

    public init(root: String = "/") {
        self.root = root.hasSuffix("/") ? root : root + "/"
        resolver = ProcessResolver(root: self.root)
    }

    /// What to record and apply, in order: each owner's `.process` (named as a live-seen VMM
    /// would be), then per device its `.device` (driver, INTx line) and `.present`.
    public func annotations() -> [Annotation] {
        let devices = root + "sys/bus/pci/devices/"
        var found: [Annotation.Present] = []
        // no IOMMU, no interrupt remapping: every vector is known to hold no IRTE
        let noRemapping = listDirectory(root + "sys/class/iommu").isEmpty
        var holders: Holders?
        for address in listDirectory(devices).sorted() {
            var irqs: [Int] = []
            var msix = false
            for entry in listDirectory(devices + address + "/msi_irqs") {
                guard let irq = Int(entry) else { continue }
                irqs.append(irq)
                if readFile(devices + address + "/msi_irqs/" + entry).map(trimNewline) == "msix" { msix = true }
            }
            guard !irqs.isEmpty else { continue }
            irqs.sort()
            // only a VFIO device has a VMM holding it: /proc (every descriptor of every process)
            // is walked only when one is there, once whatever their number
            let driver = resolver.driver(of: address)
            if driver == "vfio-pci" && holders == nil { holders = Holders(root: root) }
            found.append(Annotation.Present(
                address: address, mode: msix ? .msix : .msi, irqs: irqs,
                requested: irqs.filter { !resolver.actions(ofIRQ: $0).isEmpty },
                msixEnabled: Self.msixEnabled(configFile: devices + address + "/config"),
                owner: driver == "vfio-pci" ? holders?.owner(of: address, root: root) : nil, noRemapping: noRemapping))
        }
        var out: [Annotation] = []
        for tgid in Set(found.compactMap(\.owner)).sorted() {
            out.append(.process(resolver.identify(tgid, comm: "")))
        }
        for p in found {
            out.append(.device(address: p.address, driver: resolver.driver(of: p.address), intx: resolver.intx(of: p.address)))
            out.append(.present(p))
        }
        return out
    }

    /// The MSI-X Enable bit (Message Control bit 15) of the MSI-X capability (id 0x11), walking the
    /// capability list from 0x34. nil when it cannot be told: config space cut at the 64-byte
    /// header (read without CAP_SYS_ADMIN), no capability list, or no MSI-X capability.
    public static func msixEnabled(config c: [UInt8]?) -> Bool? {
        guard let c else { return nil }
        return msixEnabled { at, count in at + count <= c.count ? Array(c[at..<at + count]) : nil }
    }

    /// The same, reading only the bytes the walk needs: each read of config space is a trapped
    /// access under a hypervisor (a whole 256-byte read took 1.4-2 ms per device in a VM).
    static func msixEnabled(read: (_ offset: Int, _ count: Int) -> [UInt8]?) -> Bool? {
        guard let status = read(0x06, 1), status[0] & 0x10 != 0, let first = read(0x34, 1) else { return nil }
        var at = Int(first[0] & 0xfc)
        // bounded: a broken (or hostile) device's list can loop; 48 capabilities fill 256 bytes
        for _ in 0..<48 {
            guard at >= 0x40, let cap = read(at, 4) else { return nil }
            if cap[0] == 0x11 { return cap[3] & 0x80 != 0 }
            at = Int(cap[1] & 0xfc)
        }
        return nil
    }

    static func msixEnabled(configFile path: String) -> Bool? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return msixEnabled { at, count in
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(at)) }
            return n == count ? bytes : nil
        }
    }

    /// Which processes hold which VFIO group (/dev/vfio/GROUP, the legacy API) or device
    /// (/dev/vfio/devices/vfioN, cdev with iommufd) open, from /proc/*/fd.
    struct Holders {
        var groups: [String: UInt32] = [:]
        var cdevs: [String: UInt32] = [:]

        init(root: String) {
            for entry in listDirectory(root + "proc") {
                guard let tgid = UInt32(entry) else { continue }
                let fd = root + "proc/\(entry)/fd"
                for n in listDirectory(fd) {
                    // matched anywhere in the link, as ProcessResolver.holdsVFIO does: a VMM in a
                    // chroot or another mount namespace shows its own path to /dev
                    guard let link = readLink(fd + "/" + n), let at = link.firstRange(of: "/vfio/") else { continue }
                    let rest = link[at.upperBound...]
                    // the lowest pid: a child that inherited the descriptor is not the VMM
                    if rest.hasPrefix("devices/") {
                        let name = String(rest.dropFirst("devices/".count))
                        if name.hasPrefix("vfio"), cdevs[name].map({ tgid < $0 }) ?? true { cdevs[name] = tgid }
                    } else if !rest.isEmpty, rest.allSatisfy({ $0.isNumber }) {
                        let group = String(rest)
                        if groups[group].map({ tgid < $0 }) ?? true { groups[group] = tgid }
                    }
                }
            }
        }

        func owner(of address: String, root: String) -> UInt32? {
            let device = root + "sys/bus/pci/devices/\(address)"
            // cdev: the device's own vfio-dev/vfioN (its /sys/class/vfio-dev/vfioN/device link back)
            for name in listDirectory(device + "/vfio-dev") where name.hasPrefix("vfio") {
                if let tgid = cdevs[name] { return tgid }
            }
            for name in listDirectory(root + "sys/class/vfio-dev") where cdevs[name] != nil {
                if readLink(root + "sys/class/vfio-dev/\(name)/device")?.split(separator: "/").last.map(String.init) == address {
                    return cdevs[name]
                }
            }
            if let group = readLink(device + "/iommu_group")?.split(separator: "/").last.map(String.init), let tgid = groups[group] {
                return tgid
            }
            return nil
        }
    }
}
