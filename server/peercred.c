/* peercred.c - owns what the kernel says about who is at the other end of a local
 * connection: SO_PEERCRED/SO_PEERGROUPS on the Unix socket, the owner of a loopback TCP
 * peer's socket through NETLINK_SOCK_DIAG, and that owner's groups (from the process holding
 * the socket, checked in /proc, or else from the user database). Nothing here trusts what
 * the peer says, except a pid used as a hint that is checked before it is believed. */
#include "peercred.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

#define DIAG_SEQ 1u

int srv_peercred_unix(int fd, struct srv_peercred *pc) {
  gid_t groups[PROTO_MAX_GROUPS];
  struct ucred uc;
  socklen_t len = sizeof uc;
  uint32_t i;

  pc->ngroups = 0;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
    return -errno;
  pc->pid = (uint32_t)uc.pid;
  pc->uid = (uint32_t)uc.uid;
  pc->gid = (uint32_t)uc.gid;
  if (uc.uid == 0)
    return 0;
  len = sizeof groups;
  /* More than PROTO_MAX_GROUPS fails with ERANGE: refused rather than checked with a
   * subset (a group can also deny, through the group bits of a mode). */
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
    return -errno;
  pc->ngroups = (uint32_t)(len / sizeof groups[0]);
  for (i = 0; i < pc->ngroups; i++)
    pc->groups[i] = (uint32_t)groups[i];
  return 0;
}

static int is_loopback(const struct sockaddr *a) {
  if (a->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  if (a->sa_family == AF_INET6) {
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
  }
  return 0;
}

int srv_peercred_tcp_is_local(const struct sockaddr *ours, const struct sockaddr *peer) {
  return is_loopback(ours) || is_loopback(peer);
}

/* One end of an inet_diag socket id from a socket address (network byte order both). */
static void diag_end(const struct sockaddr *a, uint16_t *port, uint32_t addr[4]) {
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)a;
    *port = in->sin_port;
    addr[0] = in->sin_addr.s_addr;
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    *port = in6->sin6_port;
    memcpy(addr, &in6->sin6_addr, 16);
  }
}

/* States of a TCP socket that a process may hold and that is (or was) connected. Time-wait
 * and request sockets have no owner (the kernel reports uid 0 for them), listeners are not
 * the peer: none of them is an answer. */
static int connected_state(uint8_t state) {
  switch (state) {
  case TCP_ESTABLISHED:
  case TCP_FIN_WAIT1:
  case TCP_FIN_WAIT2:
  case TCP_CLOSE_WAIT:
  case TCP_LAST_ACK:
  case TCP_CLOSING:
    return 1;
  default:
    return 0;
  }
}

/* Reads the kernel's answer to our one exact lookup. 0, or -errno. */
static int diag_answer(const struct nlmsghdr *h, size_t n, const struct inet_diag_sockid *want,
                       uint32_t *uid, uint32_t *ino) {
  const struct inet_diag_msg *d = NLMSG_DATA(h);

  if (n < sizeof *h || h->nlmsg_len < sizeof *h || h->nlmsg_len > n || h->nlmsg_seq != DIAG_SEQ)
    return -EPROTO;
  if (h->nlmsg_type == NLMSG_ERROR) {
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
      return -EPROTO;
    return e->error < 0 ? e->error : -EPROTO; /* -ENOENT: no socket has that 4-tuple */
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof *d))
    return -EPROTO;
  if (d->id.idiag_sport != want->idiag_sport || d->id.idiag_dport != want->idiag_dport)
    return -EPROTO;
  /* Inode 0: the process has closed it (orphaned); older kernels then report uid 0. */
  if (!connected_state(d->idiag_state) || d->idiag_inode == 0)
    return -ENOENT;
  *uid = d->idiag_uid;
  *ino = d->idiag_inode;
  return 0;
}

int srv_peercred_tcp_owner(const struct sockaddr *ours, const struct sockaddr *peer,
                           uint32_t *uid, uint32_t *ino) {
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  union {
    struct nlmsghdr nlh;
    uint8_t buf[4096];
  } ans;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  int fd, err;

  if (ours->sa_family != peer->sa_family ||
      (ours->sa_family != AF_INET && ours->sa_family != AF_INET6))
    return -EAFNOSUPPORT;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST; /* no NLM_F_DUMP: the one socket of this 4-tuple */
  req.nlh.nlmsg_seq = DIAG_SEQ;
  req.r.sdiag_family = (uint8_t)ours->sa_family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = ~0u;
  /* The peer's end of the connection: its source is the peer, its destination us. (The
   * kernel looks a v4-mapped pair up as IPv4.) */
  diag_end(peer, &req.r.id.idiag_sport, req.r.id.idiag_src);
  diag_end(ours, &req.r.id.idiag_dport, req.r.id.idiag_dst);
  req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return -errno;
  if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    err = -errno;
    goto out;
  }
  /* The kernel handles the request inside sendto: its answer is already queued. */
  n = recv(fd, &ans, sizeof ans, MSG_DONTWAIT);
  if (n < 0) {
    err = -errno;
    goto out;
  }
  err = diag_answer(&ans.nlh, (size_t)n, &req.r.id, uid, ino);
out:
  close(fd);
  return err;
}

/* Parses the blank-separated decimal ids after "Key:" on a /proc status line into v (at
 * most cap stored, all counted), through the newline. The count, or -1 if malformed. */
static int read_ids(FILE *f, uint32_t *v, int cap) {
  int n = 0, c;

  for (;;) {
    uint64_t x = 0;
    int digits = 0;

    while ((c = getc(f)) == ' ' || c == '\t')
      ;
    if (c == '\n' || c == EOF)
      return n;
    for (; c >= '0' && c <= '9'; c = getc(f)) {
      x = x * 10 + (uint64_t)(c - '0');
      if (++digits > 10 || x > UINT32_MAX)
        return -1;
    }
    if (digits == 0)
      return -1;
    if (n < cap)
      v[n] = (uint32_t)x;
    n++;
    if (c == '\n' || c == EOF)
      return n;
    if (c != ' ' && c != '\t')
      return -1;
  }
}

/* What /proc/PID/status says of a process's ids: Uid (real, effective, saved, fs) and
 * Groups (ngroups counts them all, at most PROTO_MAX_GROUPS are stored). */
struct proc_ids {
  uint32_t uid[4];
  int ngroups;
  uint32_t groups[PROTO_MAX_GROUPS];
};

/* Reads the Uid and Groups lines of the status file in the /proc/PID directory dirfd. 0 or
 * -errno. */
static int read_status(int dirfd, struct proc_ids *p) {
  int fd = openat(dirfd, "status", O_RDONLY | O_CLOEXEC), seen = 0, c;
  char key[16];
  size_t k;
  FILE *f;

  if (fd < 0)
    return -errno;
  f = fdopen(fd, "r");
  if (f == NULL) {
    close(fd);
    return -ENOMEM;
  }
  for (;;) {
    for (k = 0; (c = getc(f)) != EOF && c != ':' && c != '\n';)
      if (k < sizeof key - 1)
        key[k++] = (char)c;
    if (c == EOF)
      break;
    if (c == '\n')
      continue;
    key[k] = '\0';
    if (strcmp(key, "Uid") == 0) {
      if (read_ids(f, p->uid, 4) != 4)
        break;
      seen |= 1;
    } else if (strcmp(key, "Groups") == 0) {
      if ((p->ngroups = read_ids(f, p->groups, PROTO_MAX_GROUPS)) < 0)
        break;
      seen |= 2;
    } else {
      while ((c = getc(f)) != EOF && c != '\n')
        ;
    }
  }
  fclose(f);
  return seen == 3 ? 0 : -EPROTO;
}

/* 1 if the process of the /proc/PID directory dirfd holds socket inode ino created by uid,
 * with *gid the socket's group (its creator's fsgid, kept by the kernel in the inode); 0
 * if it does not; -errno if its descriptors cannot be read. */
static int holds_socket(int dirfd, uint32_t ino, uint32_t uid, uint32_t *gid) {
  char want[32], link[64];
  int fd = openat(dirfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), found = 0;
  size_t wlen = (size_t)snprintf(want, sizeof want, "socket:[%u]", ino);
  struct dirent *e;
  struct stat st;
  DIR *d;

  if (fd < 0)
    return -errno;
  d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return -ENOMEM;
  }
  while ((e = readdir(d)) != NULL) {
    ssize_t n = readlinkat(fd, e->d_name, link, sizeof link);
    if (n < 0 || (size_t)n != wlen || memcmp(link, want, wlen) != 0)
      continue;
    found = fstatat(fd, e->d_name, &st, 0) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == ino &&
            st.st_uid == uid;
    if (found)
      *gid = (uint32_t)st.st_gid;
    break;
  }
  closedir(d);
  return found;
}

/* pc's gid and groups from process pid, if it holds socket ino and runs as uid (effective
 * and filesystem uid). 0, or -errno: -ESRCH when it is not such a process. */
static int from_proc(uint32_t pid, uint32_t uid, uint32_t ino, struct srv_peercred *pc) {
  struct proc_ids p = {0};
  char path[32];
  uint32_t gid = 0;
  int dirfd, err;

  if (pid == 0)
    return -ESRCH;
  snprintf(path, sizeof path, "/proc/%u", pid);
  /* Everything through one descriptor of the directory: if pid exits and is reused
   * meanwhile, the reads fail instead of describing another process. */
  dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return -ESRCH;
  err = holds_socket(dirfd, ino, uid, &gid);
  if (err == 0)
    err = -ESRCH;
  else if (err > 0)
    err = read_status(dirfd, &p);
  close(dirfd);
  if (err < 0)
    return err;
  if (p.uid[1] != uid || p.uid[3] != uid)
    return -ESRCH;
  if (p.ngroups > (int)PROTO_MAX_GROUPS)
    return -ERANGE;
  /* The socket's group, not the process's egid: a setgid program that merely inherited
   * the descriptor lends its group to nobody. Supplementary groups only change through
   * setgroups, which needs privilege. */
  pc->gid = gid;
  pc->ngroups = (uint32_t)p.ngroups;
  memcpy(pc->groups, p.groups, pc->ngroups * sizeof pc->groups[0]);
  return 0;
}

/* pc's gid and groups from uid's entry in the user database. 0 or -errno. */
static int from_passwd(uint32_t uid, struct srv_peercred *pc) {
  gid_t groups[PROTO_MAX_GROUPS];
  struct passwd pw, *res = NULL;
  int n = PROTO_MAX_GROUPS, err, i;
  char buf[16384];

  err = getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &res);
  if (err != 0)
    return err == ERANGE ? -ENOMEM : -err; /* an entry over 16 KiB */
  if (res == NULL)
    return -ENOENT;
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
    return -ERANGE;
  pc->gid = (uint32_t)pw.pw_gid;
  pc->ngroups = (uint32_t)n;
  for (i = 0; i < n; i++)
    pc->groups[i] = (uint32_t)groups[i];
  return 0;
}

int srv_peercred_tcp_groups(uint32_t uid, uint32_t ino, uint32_t hint_pid,
                            struct srv_peercred *pc) {
  int err;

  pc->pid = 0;
  pc->uid = uid;
  pc->ngroups = 0;
  err = from_proc(hint_pid, uid, ino, pc);
  if (err == 0)
    return SRV_PEERCRED_PROC;
  if (err == -ERANGE)
    return err;
  err = from_passwd(uid, pc);
  return err < 0 ? err : SRV_PEERCRED_PASSWD;
}
