/* test_peercred.c - server/peercred.c against the real kernel: loopback connections made
 * here, whose owner sock_diag must name (this process, or a child that became nobody), the
 * owner's groups from /proc or the user database, and what is not an answer (another
 * 4-tuple, a socket its process closed). */
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peercred.h"

#define NOBODY 65534
#define CHILD_GID 4000
#define CHILD_GROUP 4242

/* A connected loopback pair: the client's fd and the accepted one, with the accepted
 * connection's addresses as the server sees them. */
struct pair {
  int client, accepted;
  struct sockaddr_storage ours, peer;
};

/* Listens on addr (127.0.0.1 or ::1, port 0); 0 and the fd in *lfd, or -errno. */
static int listen_on(int family, int *lfd) {
  struct sockaddr_storage ss = {0};
  socklen_t len;
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -errno;
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  *lfd = fd;
  return 0;
}

/* Connects to the listener lfd from a new socket of this process. */
static int connect_to(int lfd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd;

  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
  return fd;
}

static void accept_into(int lfd, struct pair *p) {
  socklen_t len = sizeof p->peer;

  p->accepted = accept4(lfd, (struct sockaddr *)&p->peer, &len, SOCK_CLOEXEC);
  ck_assert_int_ge(p->accepted, 0);
  len = sizeof p->ours;
  ck_assert_int_eq(getsockname(p->accepted, (struct sockaddr *)&p->ours, &len), 0);
}

static struct sockaddr_in v4(const char *dotted) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1234)};
  ck_assert_int_eq(inet_pton(AF_INET, dotted, &a.sin_addr), 1);
  return a;
}

static struct sockaddr_in6 v6(const char *addr) {
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
  ck_assert_int_eq(inet_pton(AF_INET6, addr, &a.sin6_addr), 1);
  return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

START_TEST(local_means_a_loopback_end) {
  struct sockaddr_in lo = v4("127.0.0.1"), lo5 = v4("127.9.8.7"), lan = v4("192.168.1.10"),
                     other = v4("10.0.0.2");
  struct sockaddr_in6 lo6 = v6("::1"), mapped = v6("::ffff:127.0.0.1"),
                      mapped_lan = v6("::ffff:192.168.1.10"), lan6 = v6("fd00::1");

  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lo), SA(lo)), 1);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lo5), SA(lo)), 1);
  /* A server bound to loopback: whatever the peer's source, it is on this host. */
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lo), SA(lan)), 1);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lan), SA(lo)), 1);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lan), SA(other)), 0);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(lo6), SA(lo6)), 1);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(mapped), SA(mapped)), 1);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(mapped_lan), SA(lan6)), 0);
}
END_TEST

/* A connection made here: the owner of the client end is this process's euid, and the
 * inode is the client socket's. */
static void owner_is_self(int family) {
  struct pair p;
  struct stat st;
  uint32_t uid = 12345, ino = 0;
  int lfd, err = listen_on(family, &lfd);

  if (err < 0 && family == AF_INET6) {
    printf("test_peercred: no IPv6 loopback (%s): the ::1 case is skipped\n", strerror(-err));
    return;
  }
  ck_assert_int_eq(err, 0);
  p.client = connect_to(lfd);
  accept_into(lfd, &p);
  ck_assert_int_eq(srv_peercred_tcp_is_local(SA(p.ours), SA(p.peer)), 1);
  ck_assert_int_eq(srv_peercred_tcp_owner(SA(p.ours), SA(p.peer), &uid, &ino), 0);
  ck_assert_int_eq(fstat(p.client, &st), 0);
  ck_assert_uint_eq(uid, geteuid());
  ck_assert_uint_eq(ino, st.st_ino);
  /* Our own end is another socket: the lookup named the peer's, not it. */
  ck_assert_int_eq(fstat(p.accepted, &st), 0);
  ck_assert_uint_ne(ino, st.st_ino);
  close(p.client);
  close(p.accepted);
  close(lfd);
}

START_TEST(owner_of_a_v4_connection_is_self) {
  owner_is_self(AF_INET);
}
END_TEST

START_TEST(owner_of_a_v6_connection_is_self) {
  owner_is_self(AF_INET6);
}
END_TEST

/* No socket with that 4-tuple, or one whose process closed it: no answer, never uid 0. */
START_TEST(no_answer_without_a_held_socket) {
  struct pair p;
  struct sockaddr_in wrong;
  uint32_t uid = 777, ino = 777;
  int lfd;

  ck_assert_int_eq(listen_on(AF_INET, &lfd), 0);
  p.client = connect_to(lfd);
  accept_into(lfd, &p);
  wrong = *(struct sockaddr_in *)&p.peer;
  wrong.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2: nobody connected from there */
  ck_assert_int_eq(srv_peercred_tcp_owner(SA(p.ours), SA(wrong), &uid, &ino), -ENOENT);
  /* The client closes its end (orphaned in FIN_WAIT, or gone): refused, not root. */
  close(p.client);
  ck_assert_int_eq(srv_peercred_tcp_owner(SA(p.ours), SA(p.peer), &uid, &ino), -ENOENT);
  ck_assert_uint_eq(uid, 777);
  close(p.accepted);
  close(lfd);
}
END_TEST

/* The groups: with this process as the hint (it holds the socket), its own; with a pid
 * that does not hold it, the user database's. */
START_TEST(groups_from_the_holder_or_the_database) {
  gid_t mine[PROTO_MAX_GROUPS];
  struct srv_peercred pc;
  struct passwd *pw;
  struct pair p;
  uint32_t uid, ino;
  int lfd, n = getgroups(PROTO_MAX_GROUPS, mine);

  ck_assert_int_ge(n, 0);
  ck_assert_int_eq(listen_on(AF_INET, &lfd), 0);
  p.client = connect_to(lfd);
  accept_into(lfd, &p);
  ck_assert_int_eq(srv_peercred_tcp_owner(SA(p.ours), SA(p.peer), &uid, &ino), 0);
  ck_assert_int_eq(srv_peercred_tcp_groups(uid, ino, (uint32_t)getpid(), &pc),
                   SRV_PEERCRED_PROC);
  ck_assert_uint_eq(pc.uid, geteuid());
  ck_assert_uint_eq(pc.gid, getegid());
  ck_assert_uint_eq(pc.ngroups, (uint32_t)n);
  for (int i = 0; i < n; i++)
    ck_assert_uint_eq(pc.groups[i], mine[i]);
  /* A wrong hint (pid 1 holds no such socket) and no hint: the database's entry. */
  pw = getpwuid(geteuid());
  if (pw == NULL) {
    printf("test_peercred: uid %u has no passwd entry: the database case is skipped\n",
           (unsigned)geteuid());
  } else {
    ck_assert_int_eq(srv_peercred_tcp_groups(uid, ino, 1, &pc), SRV_PEERCRED_PASSWD);
    ck_assert_uint_eq(pc.gid, pw->pw_gid);
    ck_assert_int_eq(srv_peercred_tcp_groups(uid, ino, 0, &pc), SRV_PEERCRED_PASSWD);
    ck_assert_uint_eq(pc.gid, pw->pw_gid);
  }
  close(p.client);
  close(p.accepted);
  close(lfd);
}
END_TEST

/* As root: a child that became nobody (gid 4000, group 4242) connects; the kernel names
 * it, its groups come from /proc when the hint is its pid, from the database (nobody's
 * nogroup) when it is not; and a claim of our own pid as the hint is not believed. */
START_TEST(owner_is_a_child_that_became_nobody) {
  struct srv_peercred pc;
  struct passwd *pw = getpwuid(NOBODY);
  struct pair p;
  uint32_t uid, ino;
  int lfd, sync[2], status;
  pid_t pid;
  char c;

  if (geteuid() != 0 || pw == NULL) {
    printf("test_peercred: not root or no passwd entry for %d: the nobody case is skipped\n",
           NOBODY);
    return;
  }
  ck_assert_int_eq(listen_on(AF_INET, &lfd), 0);
  ck_assert_int_eq(pipe(sync), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    gid_t g = CHILD_GROUP;
    close(sync[1]);
    if (setgroups(1, &g) < 0 || setgid(CHILD_GID) < 0 || setuid(NOBODY) < 0)
      _exit(10);
    p.client = connect_to(lfd);
    (void)!read(sync[0], &c, 1); /* holds the socket until the parent is done */
    _exit(0);
  }
  close(sync[0]);
  accept_into(lfd, &p);
  ck_assert_int_eq(srv_peercred_tcp_owner(SA(p.ours), SA(p.peer), &uid, &ino), 0);
  ck_assert_uint_eq(uid, NOBODY);
  ck_assert_int_eq(srv_peercred_tcp_groups(uid, ino, (uint32_t)pid, &pc), SRV_PEERCRED_PROC);
  ck_assert_uint_eq(pc.gid, CHILD_GID);
  ck_assert_uint_eq(pc.ngroups, 1);
  ck_assert_uint_eq(pc.groups[0], CHILD_GROUP);
  /* Our pid as the hint: we do not hold that socket (and are not nobody). */
  ck_assert_int_eq(srv_peercred_tcp_groups(uid, ino, (uint32_t)getpid(), &pc),
                   SRV_PEERCRED_PASSWD);
  ck_assert_uint_eq(pc.gid, pw->pw_gid);
  for (uint32_t i = 0; i < pc.ngroups; i++)
    ck_assert_uint_ne(pc.groups[i], CHILD_GROUP);
  close(sync[1]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  close(p.accepted);
  close(lfd);
}
END_TEST

START_TEST(unix_peer_is_self) {
  struct srv_peercred pc;
  int sv[2];

  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ck_assert_int_eq(srv_peercred_unix(sv[0], &pc), 0);
  ck_assert_uint_eq(pc.pid, (uint32_t)getpid());
  ck_assert_uint_eq(pc.uid, geteuid());
  ck_assert_uint_eq(pc.gid, getegid());
  if (geteuid() != 0) /* root's groups are not read: root may claim any */
    ck_assert_uint_eq(pc.ngroups, (uint32_t)getgroups(0, NULL));
  close(sv[0]);
  close(sv[1]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("peercred");
  TCase *tc = tcase_create("peercred");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, local_means_a_loopback_end);
  tcase_add_test(tc, owner_of_a_v4_connection_is_self);
  tcase_add_test(tc, owner_of_a_v6_connection_is_self);
  tcase_add_test(tc, no_answer_without_a_held_socket);
  tcase_add_test(tc, groups_from_the_holder_or_the_database);
  tcase_add_test(tc, owner_is_a_child_that_became_nobody);
  tcase_add_test(tc, unix_peer_is_self);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
