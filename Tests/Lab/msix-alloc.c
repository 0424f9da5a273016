/* msix-alloc: gives a host thousands of irqs without a CPU vector for each, for the lab's scale
 * boot. One VFIO_DEVICE_SET_IRQS on the MSI-X index with count N makes vfio-pci allocate N irq
 * descriptors (and IRTEs) at once; only the first K get an eventfd, so only K are requested and
 * take a CPU vector. Requesting all 2048 would exhaust the vectors of a 2-CPU guest.
 *
 *   msix-alloc --device BDF --vectors N [--request K] [--hold SECONDS]
 *
 * Binds BDF to vfio-pci, allocates, prints "allocated=N requested=K" and READY, waits for
 * SIGUSR1 or SECONDS, then disables MSI-X and exits 0. Errors: one line, exit 2. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t released;
static void on_usr1(int sig) { (void)sig; released = 1; }

static void die(const char *what)
{
    printf("error step=%s errno=%d (%s)\n", what, errno, strerror(errno));
    fflush(stdout);
    exit(2);
}

static void write_file(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) {
        if (fd >= 0) close(fd);
        if (errno != ENODEV && errno != ENOENT) die(path);
        return;
    }
    close(fd);
}

static int open_device(const char *bdf)
{
    char path[256], link[256];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", bdf);
    write_file(path, "vfio-pci");
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver/unbind", bdf);
    if (access(path, F_OK) == 0) write_file(path, bdf);
    write_file("/sys/bus/pci/drivers_probe", bdf);

    int container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) die("open /dev/vfio/vfio");
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) die("iommu_group");
    link[n] = 0;
    snprintf(path, sizeof path, "/dev/vfio/%s", strrchr(link, '/') + 1);
    int group = open(path, O_RDWR);
    if (group < 0) die("open group");
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)) die("set container");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) die("set iommu");
    int fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (fd < 0) die("get device fd");
    return fd;
}

static int set_irqs(int device, unsigned flags, unsigned count, const int32_t *fds)
{
    size_t size = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
    struct vfio_irq_set *set = calloc(1, size);
    if (!set) die("calloc");
    set->argsz = size;
    set->flags = flags;
    set->index = VFIO_PCI_MSIX_IRQ_INDEX;
    set->count = count;
    if (fds) memcpy(set->data, fds, count * sizeof(int32_t));
    int ret = ioctl(device, VFIO_DEVICE_SET_IRQS, set);
    free(set);
    return ret;
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
    if (set_irqs(device, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, vectors, fds)) die("set irqs");
    printf("allocated=%ld requested=%ld\nREADY\n", vectors, request);
    fflush(stdout);
    for (long s = 0; s < hold * 10 && !released; s++) usleep(100000);
    if (set_irqs(device, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL)) die("disable");
    printf("released\n");
    return 0;
}
