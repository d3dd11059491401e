/* writer.c - plain SysV program: creates a segment, writes a message into it, detaches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv) {
  key_t key = argc > 1 ? (key_t)strtol(argv[1], NULL, 0) : 0x0d5e;
  const char *text = argc > 2 ? argv[2] : "hello from another process";
  int id = shmget(key, 4096, IPC_CREAT | 0666);
  char *p;

  if (id < 0) {
    perror("writer: shmget");
    return 1;
  }
  p = shmat(id, NULL, 0);
  if (p == (void *)-1) {
    perror("writer: shmat");
    return 1;
  }
  snprintf(p, 4096, "%s (written by pid %d)", text, (int)getpid());
  printf("writer: wrote \"%s\" into segment key %#x\n", p, (unsigned)key);
  return shmdt(p) == 0 ? 0 : 1;
}
