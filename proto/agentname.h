/* agentname.h - the name of a host's agent for a server and token setting (DIR/NAME.sock,
 * NAME.pid, NAME.log): the library derives it to find the agent (preload/config.c), a
 * socket-activated agent to check that its unit's instance is that name (agent/activate.c).
 * One function, so that the two cannot drift apart. Pure. */
#ifndef DSHM_AGENTNAME_H
#define DSHM_AGENTNAME_H

#include <stddef.h>

/* The server the library and the agent's --print-name use when DSHM_SERVER is unset. */
#define DSHM_DEFAULT_SERVER "127.0.0.1:8080"

/* "agent-" and the server spec with every character but letters, digits, '.' and '-' made
 * '_' (100 characters at most), then "-tXXXXXXXX", a digest of the token setting, when
 * token (DSHM_TOKEN) is set or token_file (DSHM_TOKEN_FILE) is non-empty: processes that
 * would prove different tokens must not share an agent. */
void dshm_agent_name(const char *spec, const char *token, const char *token_file, char *out,
                     size_t cap);

#endif
