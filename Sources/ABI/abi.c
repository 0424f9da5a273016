/* Layout checks: the BPF object and Swift must agree on these sizes, and the BPF target
 * has the same alignment rules as x86-64. A change that breaks them fails the build. */
#include "irqscope_abi.h"

_Static_assert(sizeof(struct irqscope_event) == 136, "event layout changed: bump IRQSCOPE_ABI_VERSION");
/* Not recorded (recordings hold summed counts as text): no version bump when it changes. */
_Static_assert(sizeof(struct irqscope_irq_count) == 48, "irq count layout changed");
_Static_assert(__builtin_offsetof(struct irqscope_irq_count, first_armed) == 8, "the hot fields share a line");
_Static_assert(sizeof(struct irqscope_geometry) == 8, "geometry layout changed");
_Static_assert(__builtin_offsetof(struct irqscope_event, u) == 80, "event header layout changed");
