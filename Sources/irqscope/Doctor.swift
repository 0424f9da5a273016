import ArgumentParser
import Glibc
import IrqscopeKernel
import IrqscopeRender

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Attach every probe this kernel allows, report what is covered and what is not, detach.",
        discussion: "Exits 0 when irqscope can serve on this kernel (its interrupt delivery probe attaches), 1 otherwise.")

    @OptionGroup var kernel: KernelOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let session = try kernel.openSession()
        let report = session.report
        session.close()
        if json {
            printOut(DoctorReport.json(report, coreFamily: KernelSession.coreFamily).text + "\n")
        } else {
            printOut(DoctorReport.text(report, coreFamily: KernelSession.coreFamily, color: isatty(1) != 0))
        }
        if !DoctorReport.canServe(report, coreFamily: KernelSession.coreFamily) { throw ExitCode(1) }
    }
}
