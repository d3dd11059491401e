/* seginfo.h - SEG_INFO, the details `dshm stat` shows beyond shmid_ds: which hosts have a
 * segment attached, the state of its pages, and (relayed to a host's agent, owners.c) which
 * of that host's processes have it attached. Owns no state: it reads the connections'
 * attachment records and the segment's directory. */
#ifndef DSHM_SRV_SEGINFO_H
#define DSHM_SRV_SEGINFO_H

#include "conn.h"

/* Pages looked at for one PAGES reply at most: a reply for a huge segment stops there (its
 * next says where to go on), so one request never holds the loop for long. */
#define SRV_SEGINFO_SCAN_MAX (1u << 20)

/* Handler for srv__dispatch: SEG_INFO from a client. Read permission on the segment, as
 * IPC_STAT (EINVAL for no such id, EACCES). */
int srv__seg_info(struct srv_conn *c, struct proto_msg *m, const char **why);

#endif
