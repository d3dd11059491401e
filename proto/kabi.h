/* kabi.h - Linux constants that older C library headers lack, with the kernel's values. A
 * call that passes one to an older kernel fails with EINVAL, which every caller treats as
 * "not available" (the optimisation it stood for is skipped). Pure definitions. */
#ifndef DSHM_PROTO_KABI_H
#define DSHM_PROTO_KABI_H

#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  /* Linux 5.14 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#endif /* DSHM_PROTO_KABI_H */
