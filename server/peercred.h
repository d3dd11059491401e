/* peercred.h - who is at the other end of a local connection, as the kernel says: a Unix
 * peer's SO_PEERCRED, the owner of a loopback TCP peer's socket (sock_diag), and that
 * owner's groups (docs/security.md, "Who the server believes"). */
#ifndef DSHM_SRV_PEERCRED_H
#define DSHM_SRV_PEERCRED_H

#include <stdint.h>
#include <sys/socket.h>

#include "proto.h"

/* An identity vouched for by the kernel. */
struct srv_peercred {
  uint32_t pid;      /* Unix: SO_PEERCRED's (the connecting process); TCP: 0, none known */
  uint32_t uid;
  uint32_t gid;
  uint32_t ngroups;  /* supplementary groups, <= PROTO_MAX_GROUPS */
  uint32_t groups[PROTO_MAX_GROUPS];
};

/* Where srv_peercred_tcp_groups found the gid and groups. */
enum srv_peercred_src {
  SRV_PEERCRED_PROC,    /* the process named by the hint holds the socket: its groups */
  SRV_PEERCRED_PASSWD,  /* the user database's entry for the uid */
};

/* A Unix socket peer's pid, uid and gid (SO_PEERCRED, taken at connect) and, unless the uid
 * is 0, its supplementary groups (SO_PEERGROUPS). 0, or -errno: -ERANGE for more than
 * PROTO_MAX_GROUPS groups. */
int srv_peercred_unix(int fd, struct srv_peercred *pc);

/* 1 if a TCP connection from peer to ours is known to be on this host: either address is a
 * loopback one (127.0.0.0/8, ::1, ::ffff:127.x), which the kernel never accepts from a
 * network interface. */
int srv_peercred_tcp_is_local(const struct sockaddr *ours, const struct sockaddr *peer);

/* The owner of the peer's socket of the local TCP connection peer -> ours: asks the kernel
 * (NETLINK_SOCK_DIAG, the exact 4-tuple, the peer's end) for the uid that created it and
 * its inode. Only a connected socket that a process still holds is an answer: a
 * time-wait, request or orphaned one (closed by its process) is -ENOENT. 0 or -errno. */
int srv_peercred_tcp_owner(const struct sockaddr *ours, const struct sockaddr *peer,
                           uint32_t *uid, uint32_t *ino);

/* Fills pc's gid and groups for the non-root owner uid of the peer socket inode ino
 * (pc->uid = uid, pc->pid = 0). When process hint_pid holds that socket and runs as uid
 * (effective and filesystem uid), its supplementary groups and the socket's group (the
 * creator's fsgid, recorded by the kernel) are used; otherwise the user database's (the
 * primary gid and getgrouplist of uid's entry). Returns the source (enum srv_peercred_src),
 * or -errno: -ENOENT when uid has no entry and the hint did not hold, -ERANGE for more than
 * PROTO_MAX_GROUPS groups. May read /proc and the user database: it blocks. */
int srv_peercred_tcp_groups(uint32_t uid, uint32_t ino, uint32_t hint_pid,
                            struct srv_peercred *pc);

#endif
