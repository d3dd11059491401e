/* waitprobe.c - process-shared waits in a SysV segment, every case their man pages list, one
 * result per line. Run natively (glibc and the kernel are the oracle) and under the shim (the
 * segment networked: preload/mutex.c, robust.c, semt.c, condvar.c) by test_fidelity.c; the
 * outputs must be identical.
 *
 *   waitprobe KEY robust     robust mutexes: owners that exit, are killed or end their thread
 *                            holding one; EOWNERDEAD, consistent, not recoverable
 *   waitprobe KEY mutex      normal, errorcheck and recursive mutexes: a live owner in
 *                            another process, timed locks on both clocks, the errors
 *   waitprobe KEY semt       sem_t: trywait, timed waits, bad deadlines and clocks, EINTR
 *   waitprobe KEY cond       condition variables: timed waits on both clocks, bad deadlines,
 *                            a wait without the mutex
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <semaphore.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case 0:               return "0";
  case EBUSY:           return "EBUSY";
  case EDEADLK:         return "EDEADLK";
  case EINVAL:          return "EINVAL";
  case EPERM:           return "EPERM";
  case ETIMEDOUT:       return "ETIMEDOUT";
  case EOWNERDEAD:      return "EOWNERDEAD";
  case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
  case EAGAIN:          return "EAGAIN";
  case EINTR:           return "EINTR";
  default:              return strerror(e);
  }
}

#define SAY(what, rc) printf("%s %s: %s\n", type_name, what, ename(rc))

static const char *type_name;
static pthread_mutex_t *mx;

static void init(int type) {
  pthread_mutexattr_t a;

  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&a, type);
  if (pthread_mutex_init(mx, &a) != 0) {
    fprintf(stderr, "waitprobe: pthread_mutex_init failed\n");
    exit(1);
  }
  pthread_mutexattr_destroy(&a);
}

/* Now plus ms (negative: gone by) on clock. */
static struct timespec clock_in_ms(clockid_t clock, long ms) {
  struct timespec t;

  clock_gettime(clock, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  } else if (t.tv_nsec < 0) {
    t.tv_sec--;
    t.tv_nsec += 1000000000L;
  }
  return t;
}

static struct timespec in_ms(long ms) {
  return clock_in_ms(CLOCK_REALTIME, ms);
}

/* A child takes the mutex and ends holding it: by _exit, or by SIGKILL. */
static void child_dies_holding(int sig) {
  int st;
  pid_t pid;

  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    if (pthread_mutex_lock(mx) != 0)
      _exit(3);
    if (sig)
      raise(sig);
    _exit(0);
  }
  if (pid < 0 || waitpid(pid, &st, 0) != pid) {
    perror("waitprobe: fork/waitpid");
    exit(1);
  }
  printf("%s child ended %s\n", type_name,
         WIFEXITED(st) ? (WEXITSTATUS(st) == 0 ? "by exit" : "failing")
                       : (WTERMSIG(st) == sig ? "by its signal" : "otherwise"));
}

static void *thread_dies_holding(void *arg) {
  (void)arg;
  return (void *)(long)pthread_mutex_lock(mx);
}

/* A child that holds the mutex until told (a pipe), for the cases of a live owner. */
static pid_t holder(int *release_fd) {
  int up[2], down[2];
  char c;
  pid_t pid;

  if (pipe(up) < 0 || pipe(down) < 0)
    exit(1);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    if (pthread_mutex_lock(mx) != 0)
      _exit(3);
    if (write(up[1], "h", 1) != 1 || read(down[0], &c, 1) != 1)
      _exit(4);
    _exit(pthread_mutex_unlock(mx) == 0 ? 0 : 5);
  }
  close(up[1]);
  close(down[0]);
  if (read(up[0], &c, 1) != 1) {
    fprintf(stderr, "waitprobe: the holder did not take the mutex\n");
    exit(1);
  }
  close(up[0]);
  *release_fd = down[1];
  return pid;
}

static void one_type(int type, const char *name) {
  struct timespec t;
  pthread_t th;
  void *res;
  int rc, fd, st;
  pid_t pid;

  type_name = name;
  init(type);

  /* The owner process exits holding it. */
  child_dies_holding(0);
  SAY("lock after its owner exited", pthread_mutex_lock(mx));
  SAY("trylock by the new owner", pthread_mutex_trylock(mx));
  if (type == PTHREAD_MUTEX_RECURSIVE)
    SAY("unlock of the recursion", pthread_mutex_unlock(mx));
  SAY("unlock without consistent", pthread_mutex_unlock(mx));
  SAY("lock of a not recoverable mutex", pthread_mutex_lock(mx));
  t = in_ms(100);
  SAY("timedlock of a not recoverable mutex", pthread_mutex_timedlock(mx, &t));
  SAY("consistent of a not recoverable mutex", pthread_mutex_consistent(mx));
  /* Last: glibc 2.36's trylock leaves the word taken after ENOTRECOVERABLE (it compares
   * the word it found, 0, with its tid), and unlocking a not recoverable mutex crashes in
   * glibc: neither is looked at further. */
  SAY("trylock of a not recoverable mutex", pthread_mutex_trylock(mx));
  pthread_mutex_destroy(mx);
  init(type);

  /* SIGKILLed holding it; the new owner makes it consistent. */
  child_dies_holding(SIGKILL);
  t = in_ms(10000);
  SAY("timedlock after its owner was killed", pthread_mutex_timedlock(mx, &t));
  SAY("consistent", pthread_mutex_consistent(mx));
  SAY("consistent again", pthread_mutex_consistent(mx));
  SAY("unlock", pthread_mutex_unlock(mx));
  SAY("lock", pthread_mutex_lock(mx));
  SAY("relock by the owner (trylock)", pthread_mutex_trylock(mx));
  if (type == PTHREAD_MUTEX_RECURSIVE)
    SAY("unlock of the recursion", pthread_mutex_unlock(mx));
  SAY("unlock", pthread_mutex_unlock(mx));
  SAY("unlock of an unlocked mutex", pthread_mutex_unlock(mx));
  SAY("consistent of a consistent mutex", pthread_mutex_consistent(mx));

  /* A thread ends holding it while its process lives. */
  rc = pthread_create(&th, NULL, thread_dies_holding, NULL);
  if (rc != 0 || pthread_join(th, &res) != 0) {
    fprintf(stderr, "waitprobe: thread: %s\n", strerror(rc));
    exit(1);
  }
  SAY("the thread's lock", (int)(long)res);
  SAY("lock after its owner thread ended", pthread_mutex_lock(mx));
  SAY("consistent", pthread_mutex_consistent(mx));
  SAY("unlock", pthread_mutex_unlock(mx));

  /* A live owner in another process. */
  pid = holder(&fd);
  SAY("trylock of a held mutex", pthread_mutex_trylock(mx));
  t = in_ms(200);
  SAY("timedlock of a held mutex", pthread_mutex_timedlock(mx, &t));
  t = in_ms(200);
  t.tv_nsec = 1000000000L;
  SAY("timedlock with a bad deadline", pthread_mutex_timedlock(mx, &t));
  SAY("unlock by another process", pthread_mutex_unlock(mx));
  SAY("consistent of a held mutex", pthread_mutex_consistent(mx));
  if (write(fd, "r", 1) != 1 || waitpid(pid, &st, 0) != pid) {
    perror("waitprobe: release");
    exit(1);
  }
  close(fd);
  printf("%s holder ended with %d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  SAY("lock of a released mutex", pthread_mutex_lock(mx));
  SAY("unlock", pthread_mutex_unlock(mx));
  pthread_mutex_destroy(mx);
}

/* Non-robust mutexes: a live owner in another process, and the errors. */
static void plain_type(int type, const char *name) {
  pthread_mutexattr_t a;
  struct timespec t;
  int fd, st, rc;
  pid_t pid;

  type_name = name;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_settype(&a, type);
  if (pthread_mutex_init(mx, &a) != 0) {
    fprintf(stderr, "waitprobe: pthread_mutex_init failed\n");
    exit(1);
  }
  SAY("lock", pthread_mutex_lock(mx));
  SAY("trylock by the owner", pthread_mutex_trylock(mx));
  if (type == PTHREAD_MUTEX_RECURSIVE)
    SAY("unlock of the recursion", pthread_mutex_unlock(mx));
  SAY("unlock", pthread_mutex_unlock(mx));
  if (type != PTHREAD_MUTEX_NORMAL) /* undefined for a normal mutex */
    SAY("unlock of an unlocked mutex", pthread_mutex_unlock(mx));
  t = in_ms(100);
  t.tv_nsec = -1;
  rc = pthread_mutex_timedlock(mx, &t);
  SAY("timedlock of a free mutex with a bad deadline", rc);
  if (rc == 0)
    pthread_mutex_unlock(mx);

  pid = holder(&fd);
  SAY("trylock of a held mutex", pthread_mutex_trylock(mx));
  t = in_ms(200);
  SAY("timedlock of a held mutex", pthread_mutex_timedlock(mx, &t));
  t = in_ms(-100);
  SAY("timedlock with a deadline gone by", pthread_mutex_timedlock(mx, &t));
  t = in_ms(200);
  t.tv_nsec = 1000000000L;
  SAY("timedlock with a bad deadline", pthread_mutex_timedlock(mx, &t));
  t = clock_in_ms(CLOCK_MONOTONIC, 100);
  SAY("clocklock (CLOCK_MONOTONIC) of a held mutex", pthread_mutex_clocklock(mx, CLOCK_MONOTONIC, &t));
  t = in_ms(100);
  SAY("clocklock (CLOCK_REALTIME) of a held mutex", pthread_mutex_clocklock(mx, CLOCK_REALTIME, &t));
  SAY("clocklock with a CPU-time clock", pthread_mutex_clocklock(mx, CLOCK_PROCESS_CPUTIME_ID, &t));
  if (type != PTHREAD_MUTEX_NORMAL)
    SAY("unlock by another process", pthread_mutex_unlock(mx));
  if (write(fd, "r", 1) != 1 || waitpid(pid, &st, 0) != pid) {
    perror("waitprobe: release");
    exit(1);
  }
  close(fd);
  printf("%s holder ended with %d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  t = in_ms(1000);
  SAY("timedlock of a released mutex", pthread_mutex_timedlock(mx, &t));
  SAY("unlock", pthread_mutex_unlock(mx));
  pthread_mutex_destroy(mx);
  pthread_mutexattr_destroy(&a);
}

static volatile sig_atomic_t handled;
static sem_t *post_me; /* the handler posts it (async-signal-safe), if set */
static void on_alarm(int sig) {
  (void)sig;
  handled++;
  if (post_me != NULL)
    sem_post(post_me);
}

/* A handler for SIGALRM, with SA_RESTART or not, and an alarm in ms. */
static void alarm_in(int ms, int restart) {
  struct sigaction sa;
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGALRM, &sa, NULL);
  setitimer(ITIMER_REAL, &it, NULL);
}

static void semt(void) {
  sem_t *s = (sem_t *)(void *)mx;
  struct timespec t;

  type_name = "sem_t";
  if (sem_init(s, 1, 0) != 0) {
    perror("waitprobe: sem_init");
    exit(1);
  }
  SAY("trywait at 0", sem_trywait(s) == 0 ? 0 : errno);
  t = in_ms(150);
  SAY("timedwait at 0", sem_timedwait(s, &t) == 0 ? 0 : errno);
  t = in_ms(-100);
  SAY("timedwait with a deadline gone by", sem_timedwait(s, &t) == 0 ? 0 : errno);
  t = in_ms(100);
  t.tv_nsec = 1000000000L;
  SAY("timedwait with a bad deadline", sem_timedwait(s, &t) == 0 ? 0 : errno);
  t = in_ms(100);
  SAY("clockwait with a CPU-time clock", sem_clockwait(s, CLOCK_PROCESS_CPUTIME_ID, &t) == 0 ? 0 : errno);
  t = clock_in_ms(CLOCK_MONOTONIC, 100);
  SAY("clockwait (CLOCK_MONOTONIC) at 0", sem_clockwait(s, CLOCK_MONOTONIC, &t) == 0 ? 0 : errno);
  alarm_in(100, 0);
  SAY("wait interrupted by a handler", sem_wait(s) == 0 ? 0 : errno);
  /* With SA_RESTART, Linux restarts the futex wait under sem_wait (signal(7) says sem_wait
   * never is): the handler posts, so the wait ends either way, and the answer shows which. */
  post_me = s;
  alarm_in(100, 1);
  SAY("wait interrupted by a handler that posts (SA_RESTART)", sem_wait(s) == 0 ? 0 : errno);
  post_me = NULL;
  alarm_in(100, 0);
  t = in_ms(5000);
  SAY("timedwait interrupted by a handler", sem_timedwait(s, &t) == 0 ? 0 : errno);
  printf("sem_t handlers run: %d\n", (int)handled);
  SAY("post", sem_post(s) == 0 ? 0 : errno);
  t = in_ms(100);
  t.tv_nsec = -1;
  SAY("timedwait at 1 with a bad deadline", sem_timedwait(s, &t) == 0 ? 0 : errno);
  SAY("wait at 0 after it", sem_trywait(s) == 0 ? 0 : errno);
  sem_destroy(s);
}

static void cond(void) {
  struct {
    pthread_mutex_t m, em;
    pthread_cond_t c, mc;
  } *q = (void *)mx;
  pthread_mutexattr_t ma;
  pthread_condattr_t ca;
  struct timespec t;

  type_name = "cond";
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&q->m, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&q->em, &ma);
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&q->c, &ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->mc, &ca);
  SAY("signal without waiters", pthread_cond_signal(&q->c));
  SAY("broadcast without waiters", pthread_cond_broadcast(&q->c));
  pthread_mutex_lock(&q->m);
  t = in_ms(150);
  SAY("timedwait (CLOCK_REALTIME variable)", pthread_cond_timedwait(&q->c, &q->m, &t));
  t = in_ms(-100);
  SAY("timedwait with a deadline gone by", pthread_cond_timedwait(&q->c, &q->m, &t));
  t = in_ms(100);
  t.tv_nsec = 1000000000L;
  SAY("timedwait with a bad deadline", pthread_cond_timedwait(&q->c, &q->m, &t));
  t = clock_in_ms(CLOCK_MONOTONIC, 100);
  SAY("timedwait (CLOCK_MONOTONIC variable)", pthread_cond_timedwait(&q->mc, &q->m, &t));
  t = clock_in_ms(CLOCK_MONOTONIC, 100);
  SAY("clockwait (CLOCK_MONOTONIC)", pthread_cond_clockwait(&q->c, &q->m, CLOCK_MONOTONIC, &t));
  SAY("clockwait with a CPU-time clock",
      pthread_cond_clockwait(&q->c, &q->m, CLOCK_PROCESS_CPUTIME_ID, &t));
  SAY("the mutex is still held (trylock)", pthread_mutex_trylock(&q->m));
  pthread_mutex_unlock(&q->m);
  t = in_ms(100);
  SAY("timedwait without the errorcheck mutex", pthread_cond_timedwait(&q->c, &q->em, &t));
  pthread_cond_destroy(&q->c);
  pthread_cond_destroy(&q->mc);
  pthread_mutex_destroy(&q->m);
  pthread_mutex_destroy(&q->em);
}

int main(int argc, char **argv) {
  const char *sec = argc == 3 ? argv[2] : "";
  key_t key;
  int id;

  if (strcmp(sec, "robust") && strcmp(sec, "mutex") && strcmp(sec, "semt") &&
      strcmp(sec, "cond")) {
    fprintf(stderr, "usage: waitprobe KEY robust|mutex|semt|cond\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  key = (key_t)strtol(argv[1], NULL, 0);
  id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0 || (mx = shmat(id, NULL, 0)) == (void *)-1) {
    perror("waitprobe: shmget/shmat");
    return 1;
  }
  shmctl(id, IPC_RMID, NULL); /* gone at the last detach, whatever happens */
  if (!strcmp(sec, "robust")) {
    one_type(PTHREAD_MUTEX_NORMAL, "normal");
    one_type(PTHREAD_MUTEX_ERRORCHECK, "errorcheck");
    one_type(PTHREAD_MUTEX_RECURSIVE, "recursive");
  } else if (!strcmp(sec, "mutex")) {
    plain_type(PTHREAD_MUTEX_NORMAL, "normal");
    plain_type(PTHREAD_MUTEX_ERRORCHECK, "errorcheck");
    plain_type(PTHREAD_MUTEX_RECURSIVE, "recursive");
  } else if (!strcmp(sec, "semt")) {
    semt();
  } else {
    cond();
  }
  printf("done\n");
  return 0;
}
