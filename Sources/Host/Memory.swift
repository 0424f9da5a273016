import CSys

/// Hands malloc's free pages back to the kernel. Start-up frees megabytes (the kernel's BTF parsed
/// twice, /proc files read whole) that otherwise stay resident in malloc's arenas for the whole run.
public func releaseFreedMemory() {
    _ = malloc_trim(0)
}
