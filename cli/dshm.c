/* dshm.c - the operator's command: run a program under the shim, and list, show and remove
 * the networked segments and semaphore sets the way ipcs and ipcrm do for the kernel's
 * (docs/operations.md, "The dshm command").
 *
 *   dshm run [--server ADDR] [--] PROG [ARG...]
 *   dshm ls|ipcs [-m|-s|-a] [--json]
 *   dshm stat [-m [--json]|-s] ID|KEY                   (details: segstat.c)
 *   dshm rm [-m ID] [-M KEY] [-s ID] [-S KEY] ...
 *   dshm status [--metrics [ADDR:]PORT] [--json]        (status.c)
 *
 * Everything but run talks to the server through the shim: the command runs itself again
 * with the library preloaded, and then makes the plain SysV calls (SHM_INFO and SHM_STAT_ANY,
 * SEM_INFO and SEM_STAT_ANY, IPC_STAT, IPC_RMID) that ipcs and ipcrm make, which the shim
 * sends to the server. Only the server's objects (tagged ids) are listed. Output layouts,
 * messages and exit codes are those of util-linux's ipcs and ipcrm. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "kabi.h"
#include "segstat.h"
#include "status.h"

#ifndef DSHM_LIBDIR
#define DSHM_LIBDIR "/usr/local/lib/dshm"
#endif

union semun_ {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *info;
};

static const char *prog = "dshm";

static int usage(FILE *f, int rc) {
  fprintf(f,
          "usage: dshm run [--server ADDR] [--] PROG [ARG...]\n"
          "       dshm ls|ipcs [-m|-s|-a] [--json]\n"
          "       dshm stat [-m [--json]|-s] ID|KEY\n"
          "       dshm rm [-m ID] [-M KEY] [-s ID] [-S KEY] ...\n"
          "       dshm status [--metrics [ADDR:]PORT] [--json]\n"
          "       dshm --help | --version\n"
          "\n"
          "  run    runs PROG under the shim (LD_PRELOAD, kept in front of an existing one;\n"
          "         DSHM_SERVER=ADDR with --server)\n"
          "  ls     the server's segments (-m) and semaphore sets (-s), both by default, in\n"
          "         the layout of ipcs; --json for one JSON object\n"
          "  stat   every field of one segment (-m, the default) or set (-s), as ipcs -i;\n"
          "         for a segment then the hosts and processes attached and its pages'\n"
          "         states; --json for one JSON object\n"
          "  rm     removes segments and sets by id or key, as ipcrm\n"
          "  status the server's health and figures, from its metrics endpoint\n"
          "         (dshm-server --metrics; DSHM_METRICS)\n"
          "\n"
          "The server is DSHM_SERVER (default 127.0.0.1:8080); the library is\n"
          "DSHM_PRELOAD_LIB if set, else %s/libdshm_preload.so. See dshm(1).\n",
          DSHM_LIBDIR);
  return rc;
}

static const char *lib_path(void) {
  const char *l = getenv("DSHM_PRELOAD_LIB");
  static char def[PATH_MAX];

  if (l != NULL && *l)
    return l;
  snprintf(def, sizeof def, "%s/libdshm_preload.so", DSHM_LIBDIR);
  return def;
}

/* LD_PRELOAD with the library in front (once). 0, or -1 (said why). */
static int set_preload(void) {
  const char *lib = lib_path(), *old = getenv("LD_PRELOAD");
  char *v;

  if (access(lib, R_OK) != 0) {
    fprintf(stderr, "%s: %s: %s\n", prog, lib, strerror(errno));
    return -1;
  }
  if (old == NULL || !*old)
    return setenv("LD_PRELOAD", lib, 1);
  if (strstr(old, lib) != NULL)
    return 0;
  v = malloc(strlen(lib) + strlen(old) + 2);
  if (v == NULL)
    return -1;
  sprintf(v, "%s:%s", lib, old);
  setenv("LD_PRELOAD", v, 1);
  free(v);
  return 0;
}

/* 1 if the shim's shmget is the one this process calls. */
static int shimmed(void) {
  Dl_info info;
  void *f = dlsym(RTLD_DEFAULT, "shmget");

  return f != NULL && dladdr(f, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, "libdshm_preload") != NULL;
}

/* Runs this command again under the shim (exec: does not return), unless it already is. */
static int ensure_shimmed(char **argv) {
  if (shimmed())
    return 0;
  if (getenv("DSHM_CLI_AGAIN") != NULL) {
    fprintf(stderr, "%s: the shim did not load (%s)\n", prog, lib_path());
    return -1;
  }
  if (set_preload() < 0)
    return -1;
  setenv("DSHM_CLI_AGAIN", "1", 1);
  execv("/proc/self/exe", argv);
  fprintf(stderr, "%s: exec: %s\n", prog, strerror(errno));
  return -1;
}

static int cmd_run(int argc, char **argv) {
  int i = 0;

  if (i < argc && !strcmp(argv[i], "--server")) {
    if (i + 1 >= argc)
      return usage(stderr, 2);
    setenv("DSHM_SERVER", argv[i + 1], 1);
    i += 2;
  } else if (i < argc && !strncmp(argv[i], "--server=", 9)) {
    setenv("DSHM_SERVER", argv[i] + 9, 1);
    i++;
  }
  if (i < argc && !strcmp(argv[i], "--"))
    i++;
  if (i >= argc)
    return usage(stderr, 2);
  if (set_preload() < 0)
    return 1;
  execvp(argv[i], argv + i);
  fprintf(stderr, "%s: %s: %s\n", prog, argv[i], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

static void owner(char *out, size_t cap, uid_t uid) {
  struct passwd *pw = getpwuid(uid);

  if (pw != NULL)
    snprintf(out, cap, "%-10.10s", pw->pw_name);
  else
    snprintf(out, cap, "%-10u", (unsigned)uid);
}

/* Calls fn for each of the server's segments (id, its shmid_ds). */
static void each_shm(void (*fn)(int, const struct shmid_ds *, void *), void *arg) {
  struct shm_info info;
  int max = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&info);

  for (int i = 0; i <= max; i++) {
    struct shmid_ds ds;
    int id = shmctl(i, SHM_STAT_ANY, &ds);
    if (id >= 0 && (id & DSHM_ID_TAG))
      fn(id, &ds, arg);
  }
}

static void each_sem(void (*fn)(int, const struct semid_ds *, void *), void *arg) {
  struct seminfo info;
  union semun_ u = {.info = &info};
  int max = semctl(0, 0, SEM_INFO, u);

  for (int i = 0; i <= max; i++) {
    struct semid_ds ds;
    int id;
    u.buf = &ds;
    id = semctl(i, 0, SEM_STAT_ANY, u);
    if (id >= 0 && (id & DSHM_ID_TAG))
      fn(id, &ds, arg);
  }
}

static void shm_row(int id, const struct shmid_ds *ds, void *arg) {
  char own[64];
  int *first = arg;

  if (*first < 0) { /* JSON */
    printf("%s\n    {\"key\": %d, \"shmid\": %d, \"uid\": %u, \"gid\": %u, \"cuid\": %u, "
           "\"cgid\": %u, \"perms\": \"%04o\", \"bytes\": %zu, \"nattch\": %lu, \"cpid\": %d, "
           "\"lpid\": %d, \"atime\": %lld, \"dtime\": %lld, \"ctime\": %lld, \"dest\": %s, "
           "\"locked\": %s}",
           *first == -1 ? "" : ",", ds->shm_perm.__key, id, (unsigned)ds->shm_perm.uid,
           (unsigned)ds->shm_perm.gid, (unsigned)ds->shm_perm.cuid, (unsigned)ds->shm_perm.cgid,
           ds->shm_perm.mode & 0777, (size_t)ds->shm_segsz, (unsigned long)ds->shm_nattch,
           (int)ds->shm_cpid, (int)ds->shm_lpid, (long long)ds->shm_atime,
           (long long)ds->shm_dtime, (long long)ds->shm_ctime,
           (ds->shm_perm.mode & SHM_DEST) ? "true" : "false",
           (ds->shm_perm.mode & SHM_LOCKED) ? "true" : "false");
    *first = -2;
    return;
  }
  owner(own, sizeof own, ds->shm_perm.uid);
  printf("0x%08x %-10d %s %-10o %-10zu %-10lu %-6s %-6s\n", (unsigned)ds->shm_perm.__key, id,
         own, ds->shm_perm.mode & 0777, (size_t)ds->shm_segsz, (unsigned long)ds->shm_nattch,
         (ds->shm_perm.mode & SHM_DEST) ? "dest" : " ",
         (ds->shm_perm.mode & SHM_LOCKED) ? "locked" : " ");
}

static void sem_row(int id, const struct semid_ds *ds, void *arg) {
  char own[64];
  int *first = arg;

  if (*first < 0) {
    printf("%s\n    {\"key\": %d, \"semid\": %d, \"uid\": %u, \"gid\": %u, \"cuid\": %u, "
           "\"cgid\": %u, \"perms\": \"%04o\", \"nsems\": %lu, \"otime\": %lld, "
           "\"ctime\": %lld}",
           *first == -1 ? "" : ",", ds->sem_perm.__key, id, (unsigned)ds->sem_perm.uid,
           (unsigned)ds->sem_perm.gid, (unsigned)ds->sem_perm.cuid, (unsigned)ds->sem_perm.cgid,
           ds->sem_perm.mode & 0777, (unsigned long)ds->sem_nsems,
           (long long)ds->sem_otime, (long long)ds->sem_ctime);
    *first = -2;
    return;
  }
  owner(own, sizeof own, ds->sem_perm.uid);
  printf("0x%08x %-10d %s %-10o %-10lu\n", (unsigned)ds->sem_perm.__key, id, own,
         ds->sem_perm.mode & 0777, (unsigned long)ds->sem_nsems);
}

static int cmd_ls(int argc, char **argv) {
  int shm = 0, sem = 0, json = 0, state;

  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--shmems"))
      shm = 1;
    else if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--semaphores"))
      sem = 1;
    else if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all"))
      shm = sem = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else
      return usage(stderr, 2);
  }
  if (!shm && !sem)
    shm = sem = 1;
  if (json) {
    printf("{");
    if (shm) {
      state = -1;
      printf("\n  \"segments\": [");
      each_shm(shm_row, &state);
      printf("%s]%s", state == -2 ? "\n  " : "", sem ? "," : "");
    }
    if (sem) {
      state = -1;
      printf("\n  \"semaphores\": [");
      each_sem(sem_row, &state);
      printf("%s]", state == -2 ? "\n  " : "");
    }
    printf("\n}\n");
    return 0;
  }
  state = 0;
  if (shm) {
    printf("\n------ Shared Memory Segments --------\n");
    printf("%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n", "key", "shmid", "owner", "perms",
           "bytes", "nattch", "status");
    each_shm(shm_row, &state);
    printf("\n");
  }
  if (sem) {
    printf("\n------ Semaphore Arrays --------\n");
    printf("%-10s %-10s %-10s %-10s %-10s\n", "key", "semid", "owner", "perms", "nsems");
    each_sem(sem_row, &state);
    printf("\n");
  }
  return 0;
}

/* An id ("123") or, with a 0x prefix or for -M/-S, a key. 0 or -1. */
static int parse_num(const char *s, long *out) {
  char *end;

  errno = 0;
  *out = strtol(s, &end, 0);
  return errno == 0 && *s && *end == '\0' ? 0 : -1;
}

static void time_line(const char *name, time_t t) {
  printf("%s=%-26.24s\n", name, t ? ctime(&t) : "Not set");
}

static int cmd_stat(int argc, char **argv) {
  int sem = 0, json = 0, id;
  long v;

  for (; argc > 1; argv++, argc--) {
    if (!strcmp(argv[0], "-m") || !strcmp(argv[0], "-s"))
      sem = argv[0][1] == 's';
    else if (!strcmp(argv[0], "--json"))
      json = 1;
    else
      break;
  }
  if (json && sem)
    return usage(stderr, 2);
  if (argc != 1 || parse_num(argv[0], &v) < 0)
    return usage(stderr, 2);
  /* An id as ipcs -i takes it; a key (0x... or one that names no id) through shmget/semget. */
  id = (int)v;
  if (!strncmp(argv[0], "0x", 2) || !strncmp(argv[0], "0X", 2))
    id = sem ? semget((key_t)v, 0, 0) : shmget((key_t)v, 0, 0);
  if (id < 0) {
    fprintf(stderr, "%s: key (%s) not found: %s\n", prog, argv[0], strerror(errno));
    return 1;
  }
  if (!sem) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0) {
      fprintf(stderr, "%s: id %d not found\n", prog, id);
      return 1;
    }
    if (json) {
      int first = -1, rc;
      printf("{\n  \"segment\":");
      shm_row(id, &ds, &first);
      rc = dshm_segstat(id, 1);
      printf("\n}\n");
      return rc;
    }
    printf("\nShared memory Segment shmid=%d\n", id);
    printf("uid=%u\tgid=%u\tcuid=%u\tcgid=%u\n", (unsigned)ds.shm_perm.uid,
           (unsigned)ds.shm_perm.gid, (unsigned)ds.shm_perm.cuid, (unsigned)ds.shm_perm.cgid);
    printf("mode=%#o\taccess_perms=%#o\n", ds.shm_perm.mode, ds.shm_perm.mode & 0777);
    printf("bytes=%zu\tlpid=%d\tcpid=%d\tnattch=%lu\n", (size_t)ds.shm_segsz,
           (int)ds.shm_lpid, (int)ds.shm_cpid, (unsigned long)ds.shm_nattch);
    time_line("att_time", ds.shm_atime);
    time_line("det_time", ds.shm_dtime);
    time_line("change_time", ds.shm_ctime);
    printf("\n");
    /* What ipcs cannot show: the hosts and processes attached, and where the pages are. */
    fflush(stdout);
    return dshm_segstat(id, 0);
  } else {
    struct semid_ds ds;
    union semun_ u = {.buf = &ds};
    if (semctl(id, 0, IPC_STAT, u) < 0) {
      fprintf(stderr, "%s: id %d not found\n", prog, id);
      return 1;
    }
    printf("\nSemaphore Array semid=%d\n", id);
    printf("uid=%u\t gid=%u\t cuid=%u\t cgid=%u\n", (unsigned)ds.sem_perm.uid,
           (unsigned)ds.sem_perm.gid, (unsigned)ds.sem_perm.cuid, (unsigned)ds.sem_perm.cgid);
    printf("mode=%#o, access_perms=%#o\n", ds.sem_perm.mode, ds.sem_perm.mode & 0777);
    printf("nsems = %lu\n", (unsigned long)ds.sem_nsems);
    printf("otime = %-26.24s\n", ds.sem_otime ? ctime(&ds.sem_otime) : "Not set");
    printf("ctime = %-26.24s\n", ds.sem_ctime ? ctime(&ds.sem_ctime) : "Not set");
    printf("%-10s %-10s %-10s %-10s %-10s\n", "semnum", "value", "ncount", "zcount", "pid");
    for (unsigned long n = 0; n < ds.sem_nsems; n++)
      printf("%-10lu %-10d %-10d %-10d %-10d\n", n, semctl(id, (int)n, GETVAL),
             semctl(id, (int)n, GETNCNT), semctl(id, (int)n, GETZCNT),
             semctl(id, (int)n, GETPID));
    printf("\n");
    return 0;
  }
}

/* ipcrm's messages for a failed removal of what (id or key, as given). */
static void rm_error(int err, const char *kind, const char *what) {
  switch (err) {
  case EACCES:
  case EPERM:
    fprintf(stderr, "%s: permission denied for %s (%s)\n", prog, kind, what);
    break;
  case EINVAL:
  case ENOENT:
    fprintf(stderr, "%s: invalid %s (%s)\n", prog, kind, what);
    break;
  case EIDRM:
    fprintf(stderr, "%s: already removed %s (%s)\n", prog, kind, what);
    break;
  default:
    fprintf(stderr, "%s: failed to remove %s (%s): %s\n", prog, kind, what, strerror(err));
    break;
  }
}

static int cmd_rm(int argc, char **argv) {
  int failed = 0;

  if (argc == 0 || argc % 2 != 0)
    return usage(stderr, 2);
  for (int i = 0; i < argc; i += 2) {
    const char *opt = argv[i], *what = argv[i + 1];
    int by_key = opt[1] == 'M' || opt[1] == 'S', sem = opt[1] == 's' || opt[1] == 'S', id, rc;
    long v;
    if (strlen(opt) != 2 || opt[0] != '-' || !strchr("mMsS", opt[1]))
      return usage(stderr, 2);
    if (parse_num(what, &v) < 0) {
      fprintf(stderr, "%s: failed to parse argument: '%s'\n", prog, what);
      failed = 1;
      continue;
    }
    id = (int)v;
    if (by_key) {
      id = sem ? semget((key_t)v, 0, 0) : shmget((key_t)v, 0, 0);
      if (id < 0) {
        rm_error(errno, "key", what);
        failed = 1;
        continue;
      }
    }
    rc = sem ? semctl(id, 0, IPC_RMID) : shmctl(id, IPC_RMID, NULL);
    if (rc < 0) {
      rm_error(errno, by_key ? "key" : "id", what);
      failed = 1;
    }
  }
  return failed;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : NULL;

  if (cmd == NULL)
    return usage(stderr, 2);
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
    return usage(stdout, 0);
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
    printf("dshm %s\n", DSHM_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "run"))
    return cmd_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "status"))
    return dshm_status(argc - 2, argv + 2);
  if (strcmp(cmd, "ls") && strcmp(cmd, "ipcs") && strcmp(cmd, "stat") && strcmp(cmd, "rm"))
    return usage(stderr, 2);
  if (ensure_shimmed(argv) < 0)
    return 1;
  unsetenv("DSHM_CLI_AGAIN");
  if (!strcmp(cmd, "stat"))
    return cmd_stat(argc - 2, argv + 2);
  if (!strcmp(cmd, "rm"))
    return cmd_rm(argc - 2, argv + 2);
  return cmd_ls(argc - 2, argv + 2);
}
