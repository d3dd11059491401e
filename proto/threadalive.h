/* threadalive.h - whether a thread of this host still lives: the test behind EOWNERDEAD for
 * robust mutexes in segments (preload/robust.c asks it of its own host, agent/upstream.c of
 * its host for other hosts). */
#ifndef DSHM_THREADALIVE_H
#define DSHM_THREADALIVE_H

#include <sys/types.h>

/* 1 if thread tid of process pid exists and has not exited (a zombie has: its robust
 * mutexes are free to take, as the kernel frees them at exit, before the parent reaps), else
 * 0. A thread that cannot be looked at for another reason counts as alive: a lock is never
 * taken from an owner that may live. */
int dshm_thread_alive(pid_t pid, pid_t tid);

#endif
