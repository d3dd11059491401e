/* ipcperm.h - what the server's SysV tables (segments, semaphore sets) share: who asks, the
 * ipc_perm of an object, the form of ids, and the kernel's permission checks (ipc/util.c). */
#ifndef DSHM_SRV_IPCPERM_H
#define DSHM_SRV_IPCPERM_H

#include <stdint.h>

#define SRV_IPCMNI     32768u  /* ids per table, as the kernel's IPCMNI */
/* Ids are (SRV_SEQ_TAG + seq) * IPCMNI + index with seq in [0, SRV_SEQ_MAX]: every dshm id
 * has bit 30 set, which a kernel id only reaches after 2^15 sequence steps; the shim routes
 * unknown ids by this tag (docs/compatibility.md, "Ids"). Ids stay non-negative ints. */
#define SRV_SEQ_TAG    0x8000u
#define SRV_SEQ_MAX    0x7fffu
#define SRV_ID_TAG     0x40000000

/* Who is asking: the cred of the request plus the groups claimed in HELLO. */
struct srv_cred {
  uint32_t pid;
  uint32_t uid;
  uint32_t gid;
  uint32_t ngroups;
  const uint32_t *groups;
};

struct srv_ipc_perm {
  int32_t key;
  uint32_t uid, gid, cuid, cgid;
  uint32_t mode;     /* low 9 bits, plus a table's own flags (SRV_SHM_DEST, ...) */
  uint32_t seq;
};

/* ipcperms(): flag's rwx bits in any of the three classes request that access; the caller's
 * class (owner/creator, then group, then other) decides what is granted; root bypasses.
 * 0 or -EACCES. */
int srv_ipc_perms(const struct srv_ipc_perm *p, const struct srv_cred *c, int flag);

/* IPC_SET and IPC_RMID: the owner, the creator or root. */
int srv_ipc_may_change(const struct srv_ipc_perm *p, const struct srv_cred *c);

#endif
