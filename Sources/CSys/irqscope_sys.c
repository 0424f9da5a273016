#define _GNU_SOURCE
#include "irqscope_sys.h"
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t wanted;
static int64_t wanted_uid = -1, wanted_gid = -1;
static atomic_int failures;
/* the step that failed, per thread (the signal handlers run this in the other threads) */
static __thread const char *failed_step = "";
#define STEP(name, call) (failed_step = (name), (call))

/* async-signal-safe: syscalls only */
static int drop_this_thread(uint64_t keep)
{
    /* The bounding set can only shrink with CAP_SETPCAP (root has it; an unprivileged user with
     * ambient CAP_BPF and CAP_PERFMON does not, and then has nothing the bounding set could
     * give back once no_new_privs is set). */
    for (int cap = 0; cap <= 63; cap++)
        if (!(keep & (1ULL << cap)) && STEP("PR_CAPBSET_DROP", prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) && errno != EINVAL && errno != EPERM)
            return -errno;
    if (STEP("PR_CAP_AMBIENT_CLEAR_ALL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) && errno != EINVAL)
        return -errno;
    /* Credentials are per thread in the kernel: the raw system calls change this thread only
     * (glibc's wrappers would signal every thread themselves). KEEPCAPS keeps the permitted set
     * across the change of uid; capset below then sets the effective set from it. */
    if (wanted_uid >= 0 && syscall(SYS_getuid) != wanted_uid) {
        if (STEP("PR_SET_KEEPCAPS", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) || STEP("setgroups", syscall(SYS_setgroups, 0, NULL))
            || STEP("setresgid", syscall(SYS_setresgid, wanted_gid, wanted_gid, wanted_gid))
            || STEP("setresuid", syscall(SYS_setresuid, wanted_uid, wanted_uid, wanted_uid)))
            return -errno;
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {
        {.effective = (uint32_t)keep, .permitted = (uint32_t)keep, .inheritable = 0},
        {.effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32), .inheritable = 0},
    };
    if (STEP("capset", syscall(SYS_capset, &header, data)))
        return -errno;
    if (STEP("PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)))
        return -errno;
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (drop_this_thread(wanted))
        atomic_fetch_add(&failures, 1);
    errno = saved;
}

uint64_t irqscope_effective_capabilities(void)
{
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    if (syscall(SYS_capget, &header, data))
        return 0;
    return (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
}

/* Whether the kernel already shows thread `tid` with exactly `keep` and no_new_privs: reading its
 * status rather than counting signal handlers copes with threads that exit or start meanwhile. */
static int thread_done(pid_t tid, uint64_t keep)
{
    char path[64], text[4096];
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1; /* gone */
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    unsigned long long eff = ~0ULL, prm = ~0ULL;
    int nnp = 0;
    char *line;
    if ((line = strstr(text, "\nCapPrm:")))
        prm = strtoull(line + 8, NULL, 16);
    if ((line = strstr(text, "\nCapEff:")))
        eff = strtoull(line + 8, NULL, 16);
    if ((line = strstr(text, "\nNoNewPrivs:")))
        nnp = atoi(line + 12);
    long uid = -1;
    if ((line = strstr(text, "\nUid:")))
        uid = strtol(line + 5, NULL, 10);
    return eff == keep && prm == keep && nnp == 1 && (wanted_uid < 0 || uid == wanted_uid);
}

const char *irqscope_drop_failed_step(void) { return failed_step; }

void irqscope_unblock_drop_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 5);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int irqscope_keep_capabilities(uint64_t keep, int64_t uid, int64_t gid)
{
    wanted_uid = uid;
    wanted_gid = gid;
    int sig = SIGRTMIN + 5; /* as in irqscope_unblock_drop_signal */
    struct sigaction action = {0}, previous;
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (STEP("sigaction", sigaction(sig, &action, &previous)))
        return -errno;
    wanted = keep;
    atomic_store(&failures, 0);
    int rc = 0;
    pid_t self = (pid_t)syscall(SYS_gettid), pid = getpid();
    /* The other threads first, this one last: once this thread has another uid, the kernel may
     * refuse it /proc/self/task (EACCES, seen on a 6.12 guest with two vCPUs). A thread takes the
     * signal within microseconds when a core is free, so the first looks come soon (a fixed 20 ms
     * pause was a fifth of serve's start-up); a slow (nested, emulated) machine can take seconds
     * to schedule every thread: the pause doubles to 20 ms, stragglers are signalled again every
     * half second, and after 30 s irqscope gives up. */
    long pause_ns = 50 * 1000, waited_ns = 0, signalled_ns = 0;
    int pending = 1;
    for (int round = 0; rc == 0 && pending && waited_ns < 30000000000L && atomic_load(&failures) == 0; round++) {
        DIR *tasks = opendir("/proc/self/task");
        if (!tasks) { failed_step = "opendir /proc/self/task"; rc = -errno; break; }
        int signal_now = round == 0 || waited_ns - signalled_ns >= 500000000L;
        if (signal_now)
            signalled_ns = waited_ns;
        pending = 0;
        struct dirent *entry;
        while ((entry = readdir(tasks))) {
            pid_t tid = (pid_t)atoi(entry->d_name);
            if (tid <= 0 || tid == self || thread_done(tid, keep))
                continue;
            pending++;
            if (signal_now)
                syscall(SYS_tgkill, pid, tid, sig);
        }
        closedir(tasks);
        if (pending) {
            struct timespec pause = {0, pause_ns};
            nanosleep(&pause, NULL);
            waited_ns += pause_ns;
            pause_ns = pause_ns * 2 < 20 * 1000000L ? pause_ns * 2 : 20 * 1000000L;
        }
    }
    if (rc == 0 && atomic_load(&failures) > 0) {
        failed_step = "another thread";
        rc = -EPERM;
    } else if (rc == 0 && pending) {
        failed_step = "waiting for every thread";
        rc = -ETIMEDOUT;
    } else if (rc == 0) {
        rc = drop_this_thread(keep);
    }
    sigaction(sig, &previous, NULL);
    return rc;
}

struct probe {
    int map_fd;
    uint32_t value_size;
    int result;
};

static void *probe_thread(void *arg)
{
    struct probe *p = arg;
    if (drop_this_thread(0)) {
        p->result = -EPERM;
        return NULL;
    }
    uint32_t key = 0;
    void *value = calloc(1, (size_t)p->value_size * 4096); /* room for per-CPU values */
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = (uint32_t)p->map_fd;
    attr.key = (uint64_t)(uintptr_t)&key;
    attr.value = (uint64_t)(uintptr_t)value;
    p->result = syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)) == 0 ? 0 : -errno;
    free(value);
    return NULL;
}

int irqscope_unprivileged_map_read(int map_fd, uint32_t value_size)
{
    struct probe p = {map_fd, value_size, 0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, probe_thread, &p))
        return -EAGAIN;
    pthread_join(thread, NULL);
    return p.result;
}
