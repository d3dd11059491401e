/* procexit.c - owns the exit watches of processes with SEM_UNDO adjustments: a pidfd each,
 * polled until the process exits, then PROC_EXIT to the server. */
#include "procexit.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "upstream.h"

struct exitwatch {
  uv_poll_t poll;           /* freed in its close callback */
  TAILQ_ENTRY(exitwatch) link;
  struct agent *ag;
  pid_t pid;
  int fd;
};

int agent_exit_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec always */
#else
  (void)pid;
  return -1;
#endif
}

static void on_closed(uv_handle_t *h) {
  struct exitwatch *w = h->data;

  close(w->fd);
  free(w);
}

static void end(struct exitwatch *w) {
  TAILQ_REMOVE(&w->ag->exitwatches, w, link);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void send_exit(struct agent *ag, pid_t pid) {
  struct proto_msg m;

  memset(&m, 0, sizeof m);
  m.h.opcode = PROTO_OP_PROC_EXIT;
  m.u.proc_exit.pid = (uint32_t)pid;
  if (ag->up_open && !ag->up_reconn)
    (void)agent_up_send(ag, &m);
  AGENT_VLOG("pid %d exited: its SEM_UNDO adjustments apply", (int)pid);
}

static void on_exit_ready(uv_poll_t *h, int status, int events) {
  struct exitwatch *w = h->data;

  (void)status;
  (void)events;
  send_exit(w->ag, w->pid);
  end(w);
}

static int has_exited(int pidfd) {
  struct pollfd pf = {pidfd, POLLIN, 0};
  return poll(&pf, 1, 0) == 1;
}

void agent_exit_reap(struct agent *ag) {
  struct exitwatch *w, *next;

  for (w = TAILQ_FIRST(&ag->exitwatches); w != NULL; w = next) {
    next = TAILQ_NEXT(w, link);
    if (has_exited(w->fd)) {
      send_exit(ag, w->pid);
      end(w);
    }
  }
}

void agent_exit_watch(struct agent *ag, pid_t pid, int pidfd) {
  struct exitwatch *w;

  if (!ag->stopping && has_exited(pidfd)) {
    close(pidfd);
    send_exit(ag, pid);
    return;
  }
  w = calloc(1, sizeof *w);

  if (w == NULL || ag->stopping || uv_poll_init(ag->loop, &w->poll, pidfd) < 0) {
    /* Cannot wait: tell the server now rather than never (an exec'd image loses its
     * adjustments early, which the log says). */
    if (!ag->stopping)
      agent_log("pid %d: cannot watch for its exit; its SEM_UNDO adjustments apply now",
                (int)pid);
    free(w);
    close(pidfd);
    if (!ag->stopping)
      send_exit(ag, pid);
    return;
  }
  w->ag = ag;
  w->pid = pid;
  w->fd = pidfd;
  w->poll.data = w;
  TAILQ_INSERT_TAIL(&ag->exitwatches, w, link);
  uv_poll_start(&w->poll, UV_READABLE, on_exit_ready);
}

void agent_exit_close_all(struct agent *ag) {
  struct exitwatch *w;

  while ((w = TAILQ_FIRST(&ag->exitwatches)) != NULL)
    end(w);
}
