/* segstat.h - what `dshm stat` shows of a segment beyond shmid_ds (segstat.c): the hosts
 * that have it attached with their processes, and its pages' states, asked of the server
 * with SEG_INFO through the library the command runs under. */
#ifndef DSHM_CLI_SEGSTAT_H
#define DSHM_CLI_SEGSTAT_H

/* Prints the details of segment shmid: text, or (json) the members "hosts" and "pages" of
 * an object the caller opened, each preceded by a comma. 0, or 1 after a message on stderr
 * (the library cannot be asked, or the server refused). */
int dshm_segstat(int shmid, int json);

#endif
