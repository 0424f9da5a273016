/* irqscope's BPF object: every program and map, one translation unit. The loader
 * (Sources/Kernel) chooses per hook which of the programs below to load. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#include "delivery.h"
#include "vectors.h"
#include "msix.h"
#include "msi_domain.h"
#include "request_irq.h"
#include "irte.h"
#include "vfio.h"
