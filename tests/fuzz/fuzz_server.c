/* fuzz_server.c - libFuzzer target: byte streams from several peers into real server
 * connections (framing, decoding, dispatch, segments, directories, teardown), no sockets.
 *
 * Input: records of [selector u8][length u16 big-endian][length bytes]. The low two bits
 * of the selector pick one of four connections (created on first use); bit 7 closes it
 * after its bytes were fed, so later records open a fresh one; bit 6 of the first selector
 * runs the whole input with a token (--token-file), so the handshake's CHALLENGE/AUTH
 * states are reached (no input can forge a proof). A short last record feeds
 * what is there. After the input every connection is closed and the server torn down: what
 * the teardown misses, LeakSanitizer reports. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "conn.h"
#include "log.h"
#include "server.h"

#define NCONN 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static uv_loop_t loop;
static struct srv_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char *args[] = {"fuzz_server", NULL};

  (void)argc;
  (void)argv;
  if (srv_config_parse(&cfg, 1, args, stdout, stderr) != 0 || uv_loop_init(&loop) != 0)
    abort();
  srv_log_verbose = cfg.verbose; /* DSHM_VERBOSE=1 shows what a seed does */
  /* Small tables, so the fuzzer reaches the limits: ENOSPC, ENOMEM, a full table. */
  cfg.lim.shmmax = 64 * PROTO_PAGE_SIZE;
  cfg.lim.shmall = 256;
  cfg.lim.shmmni = 8;
  cfg.max_conns = NCONN + 1;
  if (dshm_auth_key_from_token(&cfg.key, "fuzz", 4) != 0)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct srv_conn *conn[NCONN] = {0};
  uint32_t node[NCONN] = {0};
  struct srv_server s;
  size_t off = 0;
  int i;

  cfg.auth = size > 0 && (data[0] & 0x40) != 0;
  if (srv_server_init(&s, &loop, &cfg) != 0)
    abort();
  while (size - off >= 3) {
    uint8_t sel = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    int k = sel & (NCONN - 1);

    off += 3;
    if (len > size - off)
      len = size - off;
    /* A closed connection's slot goes NULL in its close callback; the loop ran since. */
    if (conn[k] != NULL && s.conns[node[k]] != conn[k])
      conn[k] = NULL;
    if (conn[k] == NULL && (conn[k] = srv__conn_new_detached(&s)) != NULL)
      node[k] = conn[k]->node;
    if (conn[k] != NULL) {
      srv__conn_feed(conn[k], data + off, len);
      if (sel & 0x80)
        srv__conn_close(conn[k], "fuzz: closed by the input");
    }
    off += len;
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks: the teardown path, mid-stream */
  }
  for (i = 0; i < NCONN; i++)
    if (conn[i] != NULL && s.conns[node[i]] == conn[i])
      srv__conn_close(conn[i], "fuzz: end of input");
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < (int)cfg.max_conns; i++)
    if (s.conns[i] != NULL)
      abort(); /* a connection outlived its close */
  srv_server_fini(&s);
  return 0;
}
