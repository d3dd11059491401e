/* main.c - owns the dshm-server process: configuration, the loop, exit status. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv) {
  struct srv_config cfg;
  struct srv_server srv;
  uv_loop_t loop;
  int rc, err;

  rc = srv_config_parse(&cfg, argc, argv, stdout, stderr);
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  srv_log_verbose = cfg.verbose;
  srv_log_json = cfg.log_json;
  /* A peer that vanishes mid-write must cost an EPIPE, not the server. */
  signal(SIGPIPE, SIG_IGN);

  err = uv_loop_init(&loop);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "uv_loop_init: %s", uv_strerror(err));
    return 1;
  }
  err = srv_server_init(&srv, &loop, &cfg);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "init failed (%s); exiting", strerror(-err));
    uv_loop_close(&loop);
    return 1;
  }
  rc = srv_server_start(&srv) < 0 ? 1 : 0;
  /* Runs until stop has closed every handle (also after a failed start). */
  uv_run(&loop, UV_RUN_DEFAULT);
  if (srv_server_fini(&srv) < 0)
    rc = 1;
  if (uv_loop_close(&loop) != 0)
    srv_log(SRV_LOG_WARN, "loop closed with handles still open");
  dshm_auth_key_wipe(&cfg.key);
  if (rc == 0)
    srv_log(SRV_LOG_INFO, "exited cleanly");
  return rc;
}
