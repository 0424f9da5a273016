/* vmm: drives a PCI device's MSI-X through VFIO the way QEMU does for a guest that enables
 * its vectors one by one (hw/vfio/pci.c: vfio_msix_enable, vfio_msix_vector_do_use). A test
 * program for the irqscope lab, not a VMM: there is no guest, only its interrupt requests.
 *
 *   vmm [-name guest=NAME] --device BDF [--bind] [--vectors N] [--failures K] [--hold SECONDS]
 *
 * --bind        bind the device to vfio-pci first (driver_override)
 * --vectors N   vectors the "guest" enables (default: all the device has)
 * --failures K  stop after K failed enables (default 1); the run still succeeds
 * --hold S      after enabling, print READY and wait up to S seconds for SIGUSR1, then tear down
 * --batches     NORESIZE only: unmask vectors in doubling batches (1, 2, 4, ...), one re-enable
 *               per batch, instead of one re-enable per vector (O(N^2) request_irq calls)
 * --raise K     (e1000e) make the device raise K interrupts on every enabled vector, writing its
 *               interrupt cause set register through the VFIO BAR region, and count what arrives
 *               on the vectors' eventfds
 * --always-reenable grow by disable and re-enable even where the kernel can add vectors
 *               dynamically, as QEMU before 8.2 does
 * --raise-in-windows (e1000e, NORESIZE) also raise one interrupt while MSI-X is off during each
 *               resize, and keep the window open 20 ms so that the line's response is seen inside it
 *               (a TCG lab guest on a busy host delivered it 5 ms late: then it fell into the
 *               next window, and one firing cannot prove two windows)
 * --raise-while-growing R (e1000e, dynamic MSI-X) R rounds of: vector 0 in use, then vectors
 *               1..N-1 added one by one while a second thread keeps raising interrupts on vector 0,
 *               one at a time, each waited for up to 100 ms. Run in a guest whose VMM grows its
 *               host vector table by disabling MSI-X (QEMU < 8.2), the device raises some of them
 *               while MSI-X is off on the host: what the guest itself then counts is the truth
 *               irqscope's lost-interrupt figures are held against
 * --raise-wait US with --raise-while-growing: wait at most US microseconds for each interrupt
 *               before raising the next (default 100000). Short, the raiser keeps raising while
 *               QEMU grows the table, and some land while MSI-X is off; raises then merge into a
 *               pending one, so the guest's "missing" bounds what was lost from above only
 *
 * One line per step on stdout, "key=value" fields, for the lab's checks. */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vfio-lab.h"

static int device_fd = -1;
static uint64_t bar0, config;

/* 82574L registers (e1000e) */
#define E1000_CTRL_EXT 0x00018
#define E1000_ICR 0x000C0
#define E1000_ICS 0x000C8
#define E1000_IMS 0x000D0
#define E1000_EIAC 0x000DC
#define E1000_IVAR 0x000E4
#define E1000_CTRL_EXT_IAME (1u << 27)
#define E1000_CAUSE(k) (1u << (20 + (k))) /* RxQ0, RxQ1, TxQ0, TxQ1, Other */

static struct vfio_irq_info irq_info(unsigned index)
{
    struct vfio_irq_info info = {.argsz = sizeof info, .index = index};
    if (ioctl(device_fd, VFIO_DEVICE_GET_IRQ_INFO, &info)) die("get irq info");
    return info;
}

static int set_irqs(unsigned index, unsigned flags, unsigned start, unsigned count, const int32_t *fds)
{
    return device_set_irqs(device_fd, index, flags, start, count, fds);
}

static uint64_t region(unsigned index)
{
    struct vfio_region_info info = {.argsz = sizeof info, .index = index};
    if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &info)) die("region info");
    return info.offset;
}

static void reg_write(uint32_t reg, uint32_t value)
{
    if (pwrite(device_fd, &value, 4, bar0 + reg) != 4) die("BAR write");
}

static uint32_t reg_read(uint32_t reg)
{
    uint32_t value = 0;
    if (pread(device_fd, &value, 4, bar0 + reg) != 4) die("BAR read");
    return value;
}

/* Memory decoding and bus mastering on (the device writes its MSI-X messages), then the
 * e1000e's five interrupt causes routed to vectors 0-4, auto-cleared, and unmasked. */
static void e1000e_setup(void)
{
    uint16_t cmd = 0;
    config = region(VFIO_PCI_CONFIG_REGION_INDEX);
    bar0 = region(VFIO_PCI_BAR0_REGION_INDEX);
    if (pread(device_fd, &cmd, 2, config + 4) != 2) die("config read");
    cmd |= 0x6;
    if (pwrite(device_fd, &cmd, 2, config + 4) != 2) die("config write");
    uint32_t ivar = 0, causes = 0;
    for (int k = 0; k < 5; k++) {
        ivar |= (0x8u | k) << (4 * k);
        causes |= E1000_CAUSE(k);
    }
    reg_write(E1000_IVAR, ivar);
    reg_write(E1000_CTRL_EXT, reg_read(E1000_CTRL_EXT) | E1000_CTRL_EXT_IAME);
    reg_write(E1000_EIAC, causes);
    reg_write(E1000_IMS, causes);
    (void)reg_read(E1000_ICR);
}

static uint64_t drain(int fd)
{
    uint64_t n = 0;
    return fd > 0 && read(fd, &n, sizeof n) == sizeof n ? n : 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the raiser of --raise-while-growing: one interrupt in flight at a time, so that none merges with
 * another in the guest's APIC and every one is counted as received, late or missing */
static struct {
    int fd;
    volatile int active, stop;
    uint64_t raised, received, timeouts, late;
    double max_latency;
} raiser = {.fd = -1};

static long raise_wait_us = 100000;
#define RAISE_LATE_S 0.010

static void *raise_loop(void *unused)
{
    (void)unused;
    while (!raiser.stop) {
        if (!raiser.active) { usleep(1000); continue; }
        double t0 = now();
        reg_write(E1000_ICS, E1000_CAUSE(0));
        raiser.raised++;
        struct pollfd p = {.fd = raiser.fd, .events = POLLIN};
        struct timespec wait = {.tv_sec = raise_wait_us / 1000000, .tv_nsec = raise_wait_us % 1000000 * 1000};
        if (ppoll(&p, 1, &wait, NULL) == 1) {
            double latency = now() - t0;
            raiser.received += drain(raiser.fd);
            if (latency > raiser.max_latency) raiser.max_latency = latency;
            if (latency > RAISE_LATE_S) raiser.late++;
        } else {
            raiser.timeouts++;
        }
        usleep(500);
    }
    return NULL;
}

/* --raise-while-growing: a guest driver that enables vector 0, starts using it, then requests its
 * other vectors; each request unmasks a vector the VMM has not yet allocated on the host */
static void raise_while_growing(int rounds, int want)
{
    const unsigned trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    const unsigned disable = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    int32_t fds[5];
    pthread_t thread;
    if (want > 5) want = 5;
    if (pthread_create(&thread, NULL, raise_loop, NULL)) die("pthread_create");
    for (int r = 0; r < rounds; r++) {
        uint64_t raised0 = raiser.raised, received0 = raiser.received, timeouts0 = raiser.timeouts;
        int32_t none = -1;
        int ret = set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, 0, 1, &none);
        for (int k = 0; k < want; k++) fds[k] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ret = ret ? ret : set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, 0, 1, &fds[0]);
        if (ret) { printf("failure round=%d vector=0 errno=%d\n", r, -ret); break; }
        raiser.fd = fds[0];
        raiser.active = 1;
        usleep(100000);
        int added = 0;
        for (int k = 1; k < want; k++) {
            if (set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, k, 1, &fds[k]) == 0) added++;
            usleep(50000);
        }
        usleep(200000);
        raiser.active = 0;
        usleep(200000);
        uint64_t late_arrivals = drain(fds[0]);
        raiser.received += late_arrivals;
        printf("round index=%d added=%d raised=%llu received=%llu timeouts=%llu\n", r, added,
               (unsigned long long)(raiser.raised - raised0), (unsigned long long)(raiser.received - received0),
               (unsigned long long)(raiser.timeouts - timeouts0));
        set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, disable, 0, 0, NULL);
        for (int k = 0; k < want; k++) close(fds[k]);
        (void)reg_read(E1000_ICR);
    }
    raiser.stop = 1;
    pthread_join(thread, NULL);
    printf("raised raised=%llu received=%llu missing=%llu timeouts=%llu late=%llu max_latency_ms=%.3f\n",
           (unsigned long long)raiser.raised, (unsigned long long)raiser.received,
           (unsigned long long)(raiser.raised - raiser.received), (unsigned long long)raiser.timeouts,
           (unsigned long long)raiser.late, raiser.max_latency * 1e3);
}

int main(int argc, char **argv)
{
    const char *bdf = NULL, *name = "";
    int bind = 0, want = -1, max_failures = 1, hold = 0, batches = 0, raise = 0, raise_windows = 0, always_reenable = 0;
    int grow_rounds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-name") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) bdf = argv[++i];
        else if (!strcmp(argv[i], "--bind")) bind = 1;
        else if (!strcmp(argv[i], "--vectors") && i + 1 < argc) want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--failures") && i + 1 < argc) max_failures = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hold") && i + 1 < argc) hold = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batches")) batches = 1;
        else if (!strcmp(argv[i], "--raise") && i + 1 < argc) raise = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raise-in-windows")) raise_windows = 1;
        else if (!strcmp(argv[i], "--always-reenable")) always_reenable = 1;
        else if (!strcmp(argv[i], "--raise-while-growing") && i + 1 < argc) grow_rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raise-wait") && i + 1 < argc) raise_wait_us = atol(argv[++i]);
        else { fprintf(stderr, "vmm: unknown argument %s\n", argv[i]); return 64; }
    }
    if (!bdf) { fprintf(stderr, "vmm: --device BDF is required\n"); return 64; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);

    if (bind) bind_vfio(bdf);
    device_fd = open_device(bdf);
    struct vfio_irq_info msix = irq_info(VFIO_PCI_MSIX_IRQ_INDEX);
    struct vfio_irq_info intx = irq_info(VFIO_PCI_INTX_IRQ_INDEX);
    int noresize = !!(msix.flags & VFIO_IRQ_INFO_NORESIZE);
    if (want < 0 || want > (int)msix.count) want = msix.count;
    printf("info pid=%d name=%s device=%s msix_count=%u noresize=%d intx=%u vectors=%d\n",
           getpid(), name, bdf, msix.count, noresize, intx.count, want);

    if (grow_rounds) {
        if (noresize) { fprintf(stderr, "vmm: --raise-while-growing needs dynamic MSI-X (this kernel says NORESIZE)\n"); return 64; }
        e1000e_setup();
        raise_while_growing(grow_rounds, want);
        return 0;
    }

    /* realize: INTx with an eventfd, as QEMU does for a device with an INTx pin */
    int intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (raise || raise_windows) e1000e_setup();
    if (intx.count) printf("step action=intx_enable ret=%d\n",
                           set_irqs(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &intx_fd));

    /* the guest sets MSI-X ENABLE|MASKALL: INTx off, MSI-X on with no vector in use */
    const unsigned trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    const unsigned disable = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    if (intx.count) printf("step action=intx_disable ret=%d\n", set_irqs(VFIO_PCI_INTX_IRQ_INDEX, disable, 0, 0, NULL));
    int32_t none = -1;
    printf("step action=enable_no_vec ret=%d\n", set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, 0, 1, &none));

    /* the guest unmasks its vectors one by one */
    int32_t *fds = calloc(want > 0 ? want : 1, sizeof(int32_t));
    int enabled = 0, failures = 0, cycles = 0, adds = 0, window_raised = 0;
    double off = 0;
    for (int i = 0; i < want && failures < max_failures; i++) {
        int ret;
        if (noresize || always_reenable) {
            /* resize by disable + re-enable: the lossy path; a batch unmasks vectors i..last */
            int last = batches ? (i + 1) * 2 - 1 : i;
            if (last >= want) last = want - 1;
            for (int k = i; k <= last; k++) if (!fds[k]) fds[k] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            double t0 = now();
            int r1 = set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, disable, 0, 0, NULL);
            if (raise_windows && i > 0) {
                /* MSI-X is off and the guest's vectors 0..i-1 are live: the device signals INTx */
                reg_write(E1000_ICS, E1000_CAUSE(0));
                window_raised++;
                usleep(20000);
            }
            ret = set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, 0, last + 1, fds);
            off += now() - t0;
            cycles++;
            printf("step action=reenable vector=%d count=%d disable_ret=%d ret=%d\n", i, last + 1, r1, ret);
            if (ret == 0) i = last;
        } else {
            fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            ret = set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, trigger, i, 1, &fds[i]);
            if (i > 0) adds++;
            printf("step action=%s vector=%d ret=%d\n", i == 0 ? "use" : "add", i, ret);
        }
        if (ret) {
            failures++;
            printf("failure vector=%d errno=%d name=%s\n", i, -ret, strerror(-ret));
            if (!noresize) close(fds[i]), fds[i] = -1;
        } else {
            enabled = i + 1;
        }
        if (ret && (noresize || always_reenable)) enabled = 0; /* a failed re-enable leaves MSI-X off: nothing is live */
    }
    printf("summary vectors=%d failures=%d cycles=%d dynamic_adds=%d noresize=%d seconds_off=%.6f\n",
           enabled, failures, cycles, adds, noresize, off);

    if (raise || raise_windows) {
        uint64_t raised = (uint64_t)window_raised, received = 0;
        for (int r = 0; r < raise; r++) {
            for (int k = 0; k < enabled && k < 5; k++) {
                reg_write(E1000_ICS, E1000_CAUSE(k));
                raised++;
                usleep(1000);
            }
        }
        usleep(500000);
        for (int k = 0; k < enabled; k++) {
            uint64_t n = drain(fds[k]);
            received += n;
            printf("vector index=%d received=%llu\n", k, (unsigned long long)n);
        }
        printf("interrupts raised=%llu received=%llu window_raised=%d\n", (unsigned long long)raised,
               (unsigned long long)received, window_raised);
    }

    if (hold) {
        printf("READY\n");
        for (int s = 0; s < hold * 10 && !released; s++) usleep(100000);
    }
    printf("step action=teardown ret=%d\n", set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, disable, 0, 0, NULL));
    return 0;
}
