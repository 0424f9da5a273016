// swift-tools-version:6.0
import PackageDescription

// IRQSCOPE_STATIC_LIBBPF=1 links libbpf, libelf and zlib statically, so a release binary
// runs where those Debian packages are not installed (the lab guests, a copied binary).
let staticLibbpf = Context.environment["IRQSCOPE_STATIC_LIBBPF"] == "1"
let libbpfLink: [LinkerSetting] = staticLibbpf
    ? [.unsafeFlags(["-Xlinker", "-l:libbpf.a", "-Xlinker", "-l:libelf.a", "-Xlinker", "-l:libz.a",
                     "-Xlinker", "--wrap=btf__load_vmlinux_btf"])]
    : [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]

// zlib for gzip responses: static with the rest in a self-contained binary.
let zlibLink: [LinkerSetting] = staticLibbpf ? [.unsafeFlags(["-Xlinker", "-l:libz.a"])] : [.linkedLibrary("z")]

let package = Package(
    name: "irqscope",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "irqscope", targets: ["irqscope"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    ],
    targets: [
        // The kernel-to-user event ABI: one C header, compiled into the BPF object and imported by Swift.
        .target(name: "IrqscopeABI", path: "Sources/ABI"),
        .systemLibrary(name: "CLibbpf", path: "Sources/CLibbpf"),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CSys", path: "Sources/CSys"),
        // libbpf's vmlinux BTF loader, mapped where the kernel allows (static builds only)
        .target(name: "CLibbpfWrap", path: "Sources/CLibbpfWrap"),
        .plugin(name: "BPFEmbed", capability: .buildTool(), path: "Plugins/BPFEmbed"),

        // kernel events -> decode -> model -> render
        .target(
            name: "IrqscopeKernel",
            dependencies: ["CLibbpf", "CLibbpfWrap", "CSys", "IrqscopeABI", "IrqscopeDecode", "IrqscopeHost"],
            path: "Sources/Kernel",
            linkerSettings: libbpfLink,
            plugins: ["BPFEmbed"]
        ),
        .target(name: "IrqscopeDecode", dependencies: ["IrqscopeABI"], path: "Sources/Decode"),
        // Host I/O other than libbpf: sysfs, /proc, the process tree, credentials, recording files.
        .target(name: "IrqscopeHost", dependencies: ["CSys", "IrqscopeDecode"], path: "Sources/Host"),
        .target(name: "IrqscopeModel", dependencies: ["IrqscopeDecode"], path: "Sources/Model"),
        .target(name: "IrqscopeRender", dependencies: ["IrqscopeModel", "IrqscopeDecode"], path: "Sources/Render"),
        .target(
            name: "IrqscopeServer",
            dependencies: [
                "CCrypt", "CSys", "CZlib", "IrqscopeDecode",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Server",
            linkerSettings: zlibLink
        ),
        .executableTarget(
            name: "irqscope",
            dependencies: [
                "IrqscopeKernel", "IrqscopeHost", "IrqscopeDecode", "IrqscopeModel", "IrqscopeRender", "IrqscopeServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/irqscope"
        ),
        .executableTarget(
            name: "irqscope-bench",
            dependencies: ["IrqscopeKernel", "IrqscopeHost", "IrqscopeDecode", "IrqscopeModel", "IrqscopeRender",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Bench"
        ),
        .target(name: "TestSupport", dependencies: ["IrqscopeABI"], path: "Tests/TestSupport"),
        .target(name: "LabChecks", dependencies: ["IrqscopeDecode", "IrqscopeHost", "IrqscopeModel", "IrqscopeRender", "TestSupport"],
                path: "Tests/LabChecks"),
        // Pure Swift: runs on any machine, no BPF.
        .testTarget(
            name: "UnitTests",
            dependencies: ["IrqscopeABI", "IrqscopeDecode", "IrqscopeHost", "IrqscopeModel", "IrqscopeRender", "IrqscopeServer",
                           "TestSupport", "LabChecks"],
            path: "Tests/UnitTests"
        ),
        // The built irqscope binary's command line on recordings (replay, crafted input, bad flags):
        // no root, no BPF.
        .testTarget(name: "CLITests", dependencies: ["IrqscopeABI", "IrqscopeDecode", "IrqscopeHost", "TestSupport", "LabChecks"],
                    path: "Tests/CLITests"),
        // The kernel layer's decisions on faked kernels (attach plans, the retry loop, program names
        // against the built object): links libbpf, needs neither root nor BPF.
        .testTarget(name: "KernelTests", dependencies: ["IrqscopeKernel", "IrqscopeDecode"], path: "Tests/KernelTests"),
        // Debian 5.10, 6.1, 6.12, 6.18 and the newest 7.x under QEMU: the results of Tests/Lab/run-lab.sh.
        .testTarget(name: "LabTests", dependencies: ["LabChecks", "TestSupport"], path: "Tests/LabTests"),
        // Dashboards/ and deploy/: promtool, a real Prometheus over the lab's metrics, systemd-analyze. No root needed.
        .testTarget(name: "OperationsTests", dependencies: ["TestSupport"], path: "Tests/OperationsTests"),
        // The real kernel: root and BPF. Runs the built irqscope binary, and test-runs its BPF programs.
        .testTarget(
            name: "HostTests",
            dependencies: ["TestSupport", "IrqscopeKernel", "IrqscopeABI", "IrqscopeDecode", "IrqscopeHost", "CLibbpf"],
            path: "Tests/HostTests",
            exclude: ["attack.py"]
        ),
    ]
)
