// KernelFacts reads sysfs and /proc/kallsyms, KernelSession lists irqs and checks credentials,
// all through IrqscopeHost: imported once here for the module (and its clients) until those
// files import it themselves.
@_exported import IrqscopeHost
