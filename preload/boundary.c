/* boundary.c - converts the shim's internal "-errno" results into the libc convention (errno + -1). */
#include "boundary.h"

#include <errno.h>

long shim_ret(long rc) {
  if (rc < 0) {
    errno = (int)-rc;
    return -1;
  }
  return rc;
}
