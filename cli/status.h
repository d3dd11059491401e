/* status.h - `dshm status` (status.c): the server's figures from its metrics endpoint. */
#ifndef DSHM_CLI_STATUS_H
#define DSHM_CLI_STATUS_H

/* Runs `dshm status ARGS...` (argv: the arguments after "status"); the exit status. */
int dshm_status(int argc, char **argv);

#endif
