/* System calls Swift cannot reach directly (variadic, per-thread, or without a glibc wrapper). */
#ifndef IRQSCOPE_SYS_H
#define IRQSCOPE_SYS_H
#include <malloc.h>
#include <stdint.h>

/* Capabilities are per thread. Leaves exactly `keep` (a bit mask of CAP_* numbers) in the
 * effective and permitted sets of every thread of the process, clears their inheritable and
 * ambient sets, drops the rest of the bounding set and sets no_new_privs: the calling thread
 * directly, the others through a real-time signal (as libcap's psx does). Threads created later
 * inherit the result. With `uid` >= 0, every thread also switches to uid/gid (real, effective
 * and saved; no supplementary groups) keeping `keep`. Returns 0 or -errno. */
int irqscope_keep_capabilities(uint64_t keep, int64_t uid, int64_t gid);
/* The step of irqscope_keep_capabilities that failed ("setresuid", ...), for its error message. */
const char *irqscope_drop_failed_step(void);

/* Threads inherit the signal mask of the thread that starts them, and a program its parent's
 * (a test runner, a supervisor may block real-time signals): unblocks the signal
 * irqscope_keep_capabilities sends, in the calling thread, so that threads it starts later take it. */
void irqscope_unblock_drop_signal(void);

/* The effective capability set of the calling thread. */
uint64_t irqscope_effective_capabilities(void);

/* Whether this kernel lets a thread with no capabilities read the BPF map behind `map_fd`
 * (key 0). Kernels before 6.5 refuse every bpf() call without CAP_BPF when unprivileged BPF is
 * disabled. Runs the attempt on a throw-away thread. Returns 0 when it may, or -errno. */
int irqscope_unprivileged_map_read(int map_fd, uint32_t value_size);

/* Swift concurrency's hook for jobs on the global executor (the runtime's own variable). NIO
 * finds it with dlsym, which sees no symbol of a statically linked Swift runtime: linking
 * reaches it either way. */
extern void *swift_task_enqueueGlobal_hook;
static inline void **irqscope_enqueue_global_hook(void) { return &swift_task_enqueueGlobal_hook; }
/* The event ring's positions and record headers are shared with the kernel's producer: read
 * with acquire, the consumer position published with release, as the kernel's ring buffer
 * protocol requires (and libbpf does). */
static inline uint64_t irqscope_load_acquire_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }
static inline uint32_t irqscope_load_acquire_u32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE); }
static inline void irqscope_store_release_u64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE); }
#endif
