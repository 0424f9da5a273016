/* msix-alloc: gives a host thousands of irqs without a CPU vector for each, for the lab's scale
 * boot. One VFIO_DEVICE_SET_IRQS on the MSI-X index with count N makes vfio-pci allocate N irq
 * descriptors (and IRTEs) at once; only the first K get an eventfd, so only K are requested and
 * take a CPU vector. Requesting all 2048 would exhaust the vectors of a 2-CPU guest.
 *
 *   msix-alloc --device BDF --vectors N [--request K] [--hold SECONDS]
 *
 * Binds BDF to vfio-pci, allocates, prints "allocated=N requested=K" and READY, waits for
 * SIGUSR1 or SECONDS, then disables MSI-X and exits 0. Errors: one line, exit 2. */
#include <sys/eventfd.h>
#include "vfio-lab.h"

/* 0, or errno set and -1, as die() wants */
static int set_msix(int device, unsigned flags, unsigned count, const int32_t *fds)
{
    int ret = device_set_irqs(device, VFIO_PCI_MSIX_IRQ_INDEX, flags, 0, count, fds);
    if (ret) errno = -ret;
    return ret ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *bdf = NULL;
    long vectors = 0, request = 1, hold = 600;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) bdf = argv[++i];
        else if (!strcmp(argv[i], "--vectors") && i + 1 < argc) vectors = atol(argv[++i]);
        else if (!strcmp(argv[i], "--request") && i + 1 < argc) request = atol(argv[++i]);
        else if (!strcmp(argv[i], "--hold") && i + 1 < argc) hold = atol(argv[++i]);
        else {
            fprintf(stderr, "msix-alloc: unknown argument %s\n", argv[i]);
            return 64;
        }
    }
    if (!bdf || vectors < 1 || request < 0 || request > vectors) {
        fprintf(stderr, "usage: msix-alloc --device BDF --vectors N [--request K<=N] [--hold SECONDS]\n");
        return 64;
    }
    signal(SIGUSR1, on_usr1);
    bind_vfio(bdf);
    int device = open_device(bdf);
    struct vfio_irq_info info = {.argsz = sizeof info, .index = VFIO_PCI_MSIX_IRQ_INDEX};
    if (ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, &info)) die("get irq info");
    if (info.count < vectors) {
        printf("error step=irq-info device has %u MSI-X vectors, %ld asked\n", info.count, vectors);
        return 2;
    }
    int32_t *fds = malloc(vectors * sizeof *fds);
    if (!fds) die("malloc");
    for (long i = 0; i < vectors; i++) {
        fds[i] = i < request ? eventfd(0, EFD_CLOEXEC) : -1;
        if (i < request && fds[i] < 0) die("eventfd");
    }
    if (set_msix(device, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, vectors, fds)) die("set irqs");
    printf("allocated=%ld requested=%ld\nREADY\n", vectors, request);
    fflush(stdout);
    for (long s = 0; s < hold * 10 && !released; s++) usleep(100000);
    if (set_msix(device, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL)) die("disable");
    printf("released\n");
    return 0;
}
