/* counter.c - plain SysV program: adds to a shared counter with atomic increments. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv) {
  key_t key = argc > 1 ? (key_t)strtol(argv[1], NULL, 0) : 0x0c01;
  long n = argc > 2 ? atol(argv[2]) : 10000;
  int id = shmget(key, sizeof(long), IPC_CREAT | 0666);
  long *counter;

  if (id < 0) {
    perror("counter: shmget");
    return 1;
  }
  counter = shmat(id, NULL, 0);
  if (counter == (void *)-1) {
    perror("counter: shmat");
    return 1;
  }
  if (n == 0) {
    printf("counter: total is %ld\n", __atomic_load_n(counter, __ATOMIC_SEQ_CST));
  } else {
    for (long i = 0; i < n; i++)
      __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
    printf("counter (pid %d): added %ld\n", (int)getpid(), n);
  }
  return shmdt(counter) == 0 ? 0 : 1;
}
