/* vfio-lab.h: the VFIO plumbing the lab's test programs share (vmm.c, msix-alloc.c): binding a
 * device to vfio-pci, opening it through its group, VFIO_DEVICE_SET_IRQS, and the one-line error
 * and SIGUSR1 release they report and wait with. Static functions: each program is one file. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void bind_vfio(const char *bdf)
{
    char path[256];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", bdf);
    write_file(path, "vfio-pci");
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver/unbind", bdf);
    if (access(path, F_OK) == 0) write_file(path, bdf);
    write_file("/sys/bus/pci/drivers_probe", bdf);
}

static int open_device(const char *bdf)
{
    char path[256], link[256];
    int container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) die("open /dev/vfio/vfio");
    if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) die("api version");
    if (!ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)) die("type1v2");

    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) die("iommu_group");
    link[n] = 0;
    snprintf(path, sizeof path, "/dev/vfio/%s", strrchr(link, '/') + 1);
    int group = open(path, O_RDWR);
    if (group < 0) die("open group");
    struct vfio_group_status status = {.argsz = sizeof status};
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) || !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) die("group viable");
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)) die("set container");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) die("set iommu");
    int fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (fd < 0) die("get device fd");
    return fd;
}

/* VFIO_DEVICE_SET_IRQS; returns 0 or -errno. */
static int device_set_irqs(int device, unsigned index, unsigned flags, unsigned start, unsigned count, const int32_t *fds)
{
    size_t size = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
    struct vfio_irq_set *set = calloc(1, size);
    set->argsz = size;
    set->flags = flags;
    set->index = index;
    set->start = start;
    set->count = count;
    if (fds) memcpy(set->data, fds, count * sizeof(int32_t));
    int ret = ioctl(device, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
    free(set);
    return ret;
}
