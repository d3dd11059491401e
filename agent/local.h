/* local.h - the processes of this host: the SOCK_SEQPACKET listener, one connection per
 * process (identity from the kernel: SO_PEERCRED and SCM_CREDENTIALS), their attachments, and
 * what happens when one goes away. */
#ifndef DSHM_AGENT_LOCAL_H
#define DSHM_AGENT_LOCAL_H

#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

struct latt {
  int32_t shmid;
  uint32_t nrw, nro;
};

struct lframe {
  STAILQ_ENTRY(lframe) link;
  size_t len;
  int fds[2];               /* handed over with the frame (SCM_RIGHTS), -1 if none */
  uint8_t buf[];
};

struct lproc {
  TAILQ_ENTRY(lproc) link;
  struct agent *ag;
  uint32_t id;              /* never reused: replies find their process by it */
  uint32_t slot;            /* its bit in the host table's holders: slot % 64 */
  pid_t pid;
  uid_t uid;                /* at connect (SO_PEERCRED) */
  gid_t gid;
  int fd;                   /* -1: inherited attachments of a forked child not connected yet */
  int pidfd;                /* such a child's liveness; -1 otherwise */
  int undo_pidfd;           /* it sent a SEM_UNDO semop: watched until it exits (procexit.h);
                             * -1 otherwise */
  uv_poll_t poll;           /* fd, when connected */
  uv_poll_t ppoll;          /* pidfd, while pending */
  int poll_on, ppoll_on;
  int gone;                 /* torn down: freed once no handle close is pending */
  int closing;              /* handle closes pending */
  int want_out;
  STAILQ_HEAD(, lframe) out;
  struct latt *att;
  uint32_t natt, capatt;
};

int agent_local_listen(struct agent *ag);
/* Serves the local processes on fd, a listening SOCK_SEQPACKET socket (agent_local_listen's,
 * or systemd's: main.c, socket activation). 0 or -errno. */
int agent_local_serve(struct agent *ag, int fd);
void agent_local_close_all(struct agent *ag);

struct lproc *agent_proc_find(struct agent *ag, uint32_t id);
/* The live record of pid (connected, or a child whose parent declared it), or NULL. */
struct lproc *agent_proc_by_pid(struct agent *ag, pid_t pid);
/* Sends m to p (with up to two descriptors, -1 for none; they are closed once sent). */
int agent_proc_send(struct lproc *p, struct proto_msg *m, int fd0, int fd1);
/* The process's attachment record of shmid, or NULL. */
struct latt *agent_proc_att(struct lproc *p, int32_t shmid);
/* The host's local attachments of shmid, read-write and read-only (every process, the
 * children not connected yet included). */
void agent_proc_counts(struct agent *ag, int32_t shmid, uint32_t *nrw, uint32_t *nro);
/* SEG_INFO PROCS, asked through the server: fills r (a reply to q) with this host's processes
 * that have q's segment attached, from entry q->first on; entries go to buf (room for
 * PROTO_SEGINFO_MAX_ENTRIES). */
void agent_proc_seginfo(struct agent *ag, const struct proto_seginfo *q,
                        struct proto_seginfo_reply *r, uint8_t *buf);
/* Records n more attachments of shmid (rw or not) for p. 0 or -ENOMEM. */
int agent_proc_att_add(struct lproc *p, int32_t shmid, uint32_t nrw, uint32_t nro);

/* Test seam (tests/fuzz/fuzz_agent.c): fd, a connected non-blocking SOCK_SEQPACKET socket,
 * becomes the connection of process pid (uid, gid) as if the listener had accepted it, from
 * the same code (SO_PASSCRED is the caller's choice). Returns the process's bit in the host
 * table's holders (slot % 64), or -errno with fd closed. Loop thread only. */
int agent__local_adopt(struct agent *ag, int fd, pid_t pid, uid_t uid, gid_t gid);
#endif
