/* robprobe.c - robust process-shared mutexes in a SysV segment, every case the man pages of
 * pthread_mutex_lock, pthread_mutex_consistent and pthread_mutexattr_setrobust list, one
 * result per line. Run natively (glibc and the kernel's robust lists are the oracle) and
 * under the shim (the segment networked: preload/robust.c) by test_fidelity.c; the outputs
 * must be identical.
 *
 *   robprobe KEY robust
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
    fprintf(stderr, "robprobe: pthread_mutex_init failed\n");
    exit(1);
  }
  pthread_mutexattr_destroy(&a);
}

static struct timespec in_ms(long ms) {
  struct timespec t;

  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
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
    perror("robprobe: fork/waitpid");
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
    fprintf(stderr, "robprobe: the holder did not take the mutex\n");
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
    fprintf(stderr, "robprobe: thread: %s\n", strerror(rc));
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
    perror("robprobe: release");
    exit(1);
  }
  close(fd);
  printf("%s holder ended with %d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  SAY("lock of a released mutex", pthread_mutex_lock(mx));
  SAY("unlock", pthread_mutex_unlock(mx));
  pthread_mutex_destroy(mx);
}

int main(int argc, char **argv) {
  key_t key;
  int id;

  if (argc != 3 || strcmp(argv[2], "robust") != 0) {
    fprintf(stderr, "usage: robprobe KEY robust\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  key = (key_t)strtol(argv[1], NULL, 0);
  id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0 || (mx = shmat(id, NULL, 0)) == (void *)-1) {
    perror("robprobe: shmget/shmat");
    return 1;
  }
  shmctl(id, IPC_RMID, NULL); /* gone at the last detach, whatever happens */
  one_type(PTHREAD_MUTEX_NORMAL, "normal");
  one_type(PTHREAD_MUTEX_ERRORCHECK, "errorcheck");
  one_type(PTHREAD_MUTEX_RECURSIVE, "recursive");
  printf("done\n");
  return 0;
}
