/* ipcperm.c - the kernel's SysV permission checks (ipc/util.c ipcperms), for every table. */
#include "ipcperm.h"

#include <errno.h>

static int in_group(const struct srv_cred *c, uint32_t gid) {
  if (c->gid == gid)
    return 1;
  for (uint32_t i = 0; i < c->ngroups; i++)
    if (c->groups[i] == gid)
      return 1;
  return 0;
}

int srv_ipc_perms(const struct srv_ipc_perm *p, const struct srv_cred *c, int flag) {
  uint32_t requested = ((uint32_t)flag >> 6 | (uint32_t)flag >> 3 | (uint32_t)flag) & 7;
  uint32_t granted = p->mode;

  if (c->uid == p->cuid || c->uid == p->uid)
    granted >>= 6;
  else if (in_group(c, p->cgid) || in_group(c, p->gid))
    granted >>= 3;
  if ((requested & ~granted & 7) != 0 && c->uid != 0)
    return -EACCES;
  return 0;
}

int srv_ipc_may_change(const struct srv_ipc_perm *p, const struct srv_cred *c) {
  return c->uid == p->cuid || c->uid == p->uid || c->uid == 0;
}
