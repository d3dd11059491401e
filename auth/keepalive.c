/* keepalive.c - owns the dead-peer bound of an agent <-> server TCP connection
 * (keepalive.h): the same socket options on both ends, derived from one setting. */
#include "keepalive.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int dshm_keepalive_valid(uint64_t ms) {
  return ms == 0 || (ms >= DSHM_KEEPALIVE_MIN_MS && ms <= DSHM_KEEPALIVE_MAX_MS);
}

int dshm_keepalive_set(int fd, uint32_t ms) {
  int on = ms != 0, idle = (int)(ms / 2000), intvl = (int)(ms / 6000), cnt = 3;
  unsigned int user_timeout = ms;

  if (!dshm_keepalive_valid(ms))
    return -EINVAL;
  idle = idle < 1 ? 1 : idle;
  intvl = intvl < 1 ? 1 : intvl;
  /* With TCP_USER_TIMEOUT set, Linux ends a silent connection when ms have passed since
   * anything was received and at least one probe went unanswered: the count only matters
   * to a kernel that ignores the timeout, where idle + cnt * intvl is about ms too. */
  if (on && (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
             setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
             setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0))
    return -errno;
  if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0)
    return -errno;
  return 0;
}
