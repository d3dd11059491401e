/* reader.c - plain SysV program: attaches an existing segment read-only and prints it. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv) {
  key_t key = argc > 1 ? (key_t)strtol(argv[1], NULL, 0) : 0x0d5e;
  int id = shmget(key, 0, 0);
  const char *p;

  if (id < 0) {
    perror("reader: shmget");
    return 1;
  }
  p = shmat(id, NULL, SHM_RDONLY);
  if (p == (void *)-1) {
    perror("reader: shmat");
    return 1;
  }
  printf("reader (pid %d): read \"%s\"\n", (int)getpid(), p);
  return shmdt(p) == 0 ? 0 : 1;
}
