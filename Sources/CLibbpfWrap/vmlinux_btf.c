#define _GNU_SOURCE
#include "vmlinux_btf.h"
#include <bpf/btf.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* libbpf 1.1 (Debian 12) reads /sys/kernel/btf/vmlinux with read(), which kernfs answers 4 KB at
 * a time: 1,348 reads and 5 ms for 5.5 MB, then 6 ms more of copying and parsing, on the critical
 * path of serve's start. Kernels since 6.16 let the file be mapped (libbpf 1.6 maps it too); the
 * statically linked build routes libbpf's own loader here (-Wl,--wrap), and anything this cannot
 * map goes to libbpf's loader as before. */
struct btf *__real_btf__load_vmlinux_btf(void) __attribute__((weak));

static struct btf *load_mapped(void)
{
    int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *data = fstat(fd, &st) == 0 && st.st_size > 0
        ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (data == MAP_FAILED)
        return NULL;
    /* btf__new keeps a copy; libbpf 1.x returns NULL on error */
    struct btf *btf = btf__new(data, (__u32)st.st_size);
    munmap(data, (size_t)st.st_size);
    return btf;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t prefetch_thread;
static int prefetching;
static struct btf *prefetched;

static void *prefetch(void *unused)
{
    (void)unused;
    prefetched = load_mapped();
    return NULL;
}

void irqscope_prefetch_vmlinux_btf(void)
{
    /* only where libbpf's loader is routed here, the one place that takes it */
    if (!__real_btf__load_vmlinux_btf)
        return;
    pthread_mutex_lock(&lock);
    if (!prefetching && pthread_create(&prefetch_thread, NULL, prefetch, NULL) == 0)
        prefetching = 1;
    pthread_mutex_unlock(&lock);
}

struct btf *__wrap_btf__load_vmlinux_btf(void)
{
    struct btf *btf = NULL;
    pthread_mutex_lock(&lock);
    if (prefetching) {
        pthread_join(prefetch_thread, NULL);
        prefetching = 0;
        btf = prefetched;
        prefetched = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (!btf)
        btf = load_mapped();
    /* called only where the linker routed libbpf here, so the real loader is there */
    return btf ? btf : __real_btf__load_vmlinux_btf();
}
