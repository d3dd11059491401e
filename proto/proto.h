/* proto.h - the dshm wire format: frame header, opcodes, messages, limits, error codes.
 *
 * Pure: no I/O, no globals, no allocation. Every field is written and read with explicit
 * big-endian helpers, never by copying a struct. docs/protocol.md is the prose version of
 * this file and must be kept in step with it.
 */
#ifndef DSHM_PROTO_H
#define DSHM_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAGIC        0x44534D31u /* "DSM1" */
#define PROTO_VERSION      8u
#define PROTO_HDR_SIZE     20u
#define PROTO_PAGE_SIZE    4096u
#define PROTO_PAGE_SHIFT   12u
#define PROTO_MAX_RUN      256u   /* pages in one message: 1 MiB of data */
#define PROTO_MAX_GROUPS   64u    /* supplementary groups claimed in HELLO */
#define PROTO_MAX_NAME     64u    /* client host/program name in HELLO */
#define PROTO_SMALL_MAX    1024u  /* payload cap for every message that carries no pages */
#define PROTO_NONCE_SIZE   32u    /* CHALLENGE / AUTH nonces */
#define PROTO_MAC_SIZE     32u    /* AUTH proofs */
#define PROTO_AUTH_ALG     1u     /* HMAC-SHA-512-256 keyed with BLAKE2b-256(token) */

/* SysV semaphores: the largest set a SETALL/GETALL carries and the most operations in one
 * SEMOP (the server's --semmsl and --semopm are capped by them). */
#define PROTO_SEMMSL_MAX   32000u
#define PROTO_SEMOPM_MAX   4096u
#define PROTO_SEMOP_SIZE   6u     /* one operation: num u16, op i16, flg i16 */
#define PROTO_SEMOP_TIMEOUT 0x1u  /* proto_semop.flags: semtimedop with a timeout */
#define PROTO_SEMCTL_MAX_PAYLOAD (256u + 2u * PROTO_SEMMSL_MAX)
#define PROTO_SEMOP_MAX_PAYLOAD  (64u + PROTO_SEMOP_SIZE * PROTO_SEMOPM_MAX)

/* SEG_INFO (dshm stat): what one reply lists, at most PROTO_SEGINFO_MAX_ENTRIES entries of
 * one kind (docs/protocol.md, "Segment details"). */
#define PROTO_SEGINFO_HOSTS 1u     /* the hosts that have the segment attached */
#define PROTO_SEGINFO_PAGES 2u     /* runs of pages in the same state */
#define PROTO_SEGINFO_PROCS 3u     /* the processes of one host that have it attached */
#define PROTO_SEGINFO_MAX_ENTRIES 256u
#define PROTO_SEGINFO_HOLDERS 4u   /* holders named in a page run (nholders counts them all) */
#define PROTO_SEGHOST_SIZE  84u    /* tag u64, node u32, nrw u32, nro u32, name[64] */
#define PROTO_SEGRUN_SIZE   28u    /* first, count u32, mode, flags u8, nholders u16, 4 u32 */
#define PROTO_SEGPROC_SIZE  12u    /* pid, nrw, nro u32 */
#define PROTO_SEGINFO_MAX_PAYLOAD (16u + PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGHOST_SIZE)
#define PROTO_SEGRUN_GHOST  0x1u   /* owned by a host not back since the server restarted */
#define PROTO_SEGRUN_BUSY   0x2u   /* a transaction is in progress on these pages */
#define PROTO_SEGRUN_KNOWN  0x3u
#define PROTO_NO_NODE       0xffffffffu /* an unused holder slot */

/* Page-run payload: 16-byte run header, 16 bytes per page entry, then the data blocks. */
#define PROTO_RUN_HDR      16u
#define PROTO_RUN_ENTRY    16u
#define PROTO_RUN_MAX_PAYLOAD \
  (PROTO_RUN_HDR + PROTO_MAX_RUN * (PROTO_RUN_ENTRY + PROTO_PAGE_SIZE))
#define PROTO_MAX_PAYLOAD  PROTO_RUN_MAX_PAYLOAD
#define PROTO_MAX_FRAME    (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)

/* Header flags. */
#define PROTO_F_REPLY      0x0001u /* a reply to the request with the same id */
#define PROTO_F_KNOWN      0x0001u /* all flags this version understands */

/* Page modes (proto_run.mode). */
#define PROTO_MODE_INVALID   0u
#define PROTO_MODE_SHARED    1u
#define PROTO_MODE_EXCLUSIVE 2u

/* NODE flags. */
#define PROTO_NODE_RESUMED 0x1u    /* a returning node has re-registered and written back */
#define PROTO_NODE_KNOWN   0x1u
#define PROTO_NODE_ID      16u     /* bytes of a node id and of a server instance id */
#define PROTO_MAX_REATTACH 65536u  /* attachments of one segment in one REATTACH or INHERIT */

/* SHMCTL SHM_LOCK: what the caller's host says of the caller (the server cannot see it). */
#define PROTO_LOCK_CAP_IPC_LOCK 0x1u           /* mode: CAP_IPC_LOCK in the effective set */
#define PROTO_MEMLOCK_INFINITY  UINT64_MAX     /* memlock: RLIM_INFINITY */

/* Per-page entry flags (proto_page.flags). */
#define PROTO_PAGE_DATA    0x1u    /* a 4096-byte data block for this page follows */

/* X(name, code, max_payload): the one opcode table. The enum, the names and the payload
 * caps (checked on the header before any buffer is sized) all come from it. */
#define PROTO_OPCODES(X)                                   \
  X(HELLO,          1,  PROTO_SMALL_MAX)                   \
  X(CREATE_SEGMENT, 2,  PROTO_SMALL_MAX)                   \
  X(ATTACH_SEGMENT, 3,  PROTO_SMALL_MAX)                   \
  X(DETACH_SEGMENT, 4,  PROTO_SMALL_MAX)                   \
  X(REMOVE_SEGMENT, 5,  PROTO_SMALL_MAX)                   \
  X(READ_DATA,      6,  PROTO_RUN_MAX_PAYLOAD)             \
  X(WRITE_DATA,     7,  PROTO_RUN_MAX_PAYLOAD)             \
  X(SHMCTL,         8,  PROTO_SMALL_MAX)                   \
  X(ACQUIRE,        9,  PROTO_RUN_MAX_PAYLOAD)             \
  X(INVALIDATE,     10, PROTO_SMALL_MAX)                   \
  X(INVALIDATE_ACK, 11, PROTO_SMALL_MAX)                   \
  X(RECALL,         12, PROTO_SMALL_MAX)                   \
  X(RECALL_ACK,     13, PROTO_RUN_MAX_PAYLOAD)             \
  X(PING,           14, PROTO_SMALL_MAX)                   \
  X(GROUPS,         15, PROTO_SMALL_MAX)                   \
  X(CHALLENGE,      16, PROTO_SMALL_MAX)                   \
  X(AUTH,           17, PROTO_SMALL_MAX)                   \
  X(NODE,           18, PROTO_SMALL_MAX)                   \
  X(REATTACH,       19, PROTO_SMALL_MAX)                   \
  X(INHERIT,        20, PROTO_SMALL_MAX)                   \
  X(RAISED,         21, PROTO_SMALL_MAX)                   \
  X(SEMGET,         22, PROTO_SMALL_MAX)                   \
  X(SEMCTL,         23, PROTO_SEMCTL_MAX_PAYLOAD)          \
  X(SEMOP,          24, PROTO_SEMOP_MAX_PAYLOAD)           \
  X(SEM_CANCEL,     25, PROTO_SMALL_MAX)                   \
  X(PROC_EXIT,      26, PROTO_SMALL_MAX)                   \
  X(OWNER_ALIVE,    27, PROTO_SMALL_MAX)                   \
  X(SEG_INFO,       28, PROTO_SEGINFO_MAX_PAYLOAD)

enum proto_op {
#define PROTO__OP_ENUM(name, code, max) PROTO_OP_##name = code,
  PROTO_OPCODES(PROTO__OP_ENUM)
#undef PROTO__OP_ENUM
  PROTO_OP_MAX_ /* one past the highest opcode */
};

/* X(name, code, errno): protocol error codes are stable numbers of our own, so a server on
 * one OS answers a client on another correctly. PROTO_EIO is the fallback both ways. */
#define PROTO_ERRORS(X)          \
  X(OK,        0,  0)            \
  X(EPERM,     1,  EPERM)        \
  X(ENOENT,    2,  ENOENT)       \
  X(EIO,       3,  EIO)          \
  X(ENOMEM,    4,  ENOMEM)       \
  X(EACCES,    5,  EACCES)       \
  X(EFAULT,    6,  EFAULT)       \
  X(EEXIST,    7,  EEXIST)       \
  X(EINVAL,    8,  EINVAL)       \
  X(ENOSPC,    9,  ENOSPC)       \
  X(EIDRM,     10, EIDRM)        \
  X(EOVERFLOW, 11, EOVERFLOW)    \
  X(EPROTO,    12, EPROTO)       \
  X(ENOSYS,    13, ENOSYS)       \
  X(EBUSY,     14, EBUSY)        \
  X(EAGAIN,    15, EAGAIN)       \
  X(ENFILE,    16, ENFILE)       \
  X(EMFILE,    17, EMFILE)       \
  X(E2BIG,     18, E2BIG)        \
  X(ERANGE,    19, ERANGE)       \
  X(ETIMEDOUT, 20, ETIMEDOUT)    \
  X(EBADMSG,   21, EBADMSG)      \
  X(ENOTCONN,  22, ENOTCONN)    \
  X(EINTR,     23, EINTR)        \
  X(EFBIG,     24, EFBIG)

enum proto_err {
#define PROTO__ERR_ENUM(name, code, e) PROTO_##name = code,
  PROTO_ERRORS(PROTO__ERR_ENUM)
#undef PROTO__ERR_ENUM
};

/* Fixed 20-byte frame header. status is 0 in requests and a proto_err in replies. */
struct proto_hdr {
  uint32_t magic;
  uint8_t version;
  uint8_t opcode;
  uint16_t flags;
  uint32_t reqid;
  int32_t status;
  uint32_t length; /* payload bytes after the header */
};

/* The caller's credentials at the time of the call: sent with every SysV request, so a
 * process that changes uid is checked as its new uid from then on. */
struct proto_cred {
  uint32_t pid;
  uint32_t uid;
  uint32_t gid;
};

struct proto_hello {        /* HELLO request */
  uint32_t pid;
  uint32_t uid;
  uint32_t gid;
  uint32_t ngroups;         /* <= PROTO_MAX_GROUPS */
  uint32_t groups[PROTO_MAX_GROUPS];
  uint32_t name_len;        /* <= PROTO_MAX_NAME, not NUL-terminated on the wire */
  char name[PROTO_MAX_NAME + 1]; /* decode NUL-terminates */
};

struct proto_groups {       /* GROUPS: the caller's supplementary groups changed */
  uint32_t ngroups;         /* <= PROTO_MAX_GROUPS */
  uint32_t groups[PROTO_MAX_GROUPS];
};

/* CHALLENGE (server -> client, after HELLO when the server has a token): prove it. */
struct proto_challenge {
  uint32_t alg;             /* PROTO_AUTH_ALG */
  uint8_t nonce[PROTO_NONCE_SIZE];
};

/* AUTH (client -> server): the answer to CHALLENGE, and the client's own challenge. */
struct proto_auth {
  uint8_t nonce[PROTO_NONCE_SIZE]; /* the client's nonce */
  uint8_t mac[PROTO_MAC_SIZE];     /* the client's proof over both nonces */
};

struct proto_auth_reply {   /* AUTH reply: the server's proof over both nonces */
  uint8_t mac[PROTO_MAC_SIZE];
};

struct proto_hello_reply {
  uint32_t node;            /* the server's id for this connection */
  uint32_t page_size;       /* always PROTO_PAGE_SIZE in version 1 */
  uint32_t max_run;         /* largest run the server accepts */
};

struct proto_node {         /* NODE: the client's persistent identity */
  uint8_t id[PROTO_NODE_ID]; /* random, chosen by the client once per process */
  uint32_t flags;           /* PROTO_NODE_* */
};

struct proto_node_reply {
  uint8_t instance[PROTO_NODE_ID]; /* the server's identity: the same across restarts only
                                    * with --data-dir */
};

struct proto_reattach {     /* REATTACH: a reconnecting node's attachments of one segment */
  struct proto_cred cred;
  int32_t shmid;
  uint32_t nrw;             /* read-write attachments */
  uint32_t nro;             /* SHM_RDONLY attachments; 1 <= nrw + nro <= PROTO_MAX_REATTACH */
};

/* INHERIT: the attachments a forked child inherits of a segment that the caller's
 * connection (the host agent's, on the parent's behalf) has attached. Counted as the kernel
 * counts them at fork: no permission check, lpid is the parent's pid. */
struct proto_inherit {
  struct proto_cred cred;   /* the parent's pid, uid, gid: the caller */
  int32_t shmid;
  uint32_t nrw;             /* read-write attachments the child inherits */
  uint32_t nro;             /* SHM_RDONLY ones; 1 <= nrw + nro <= PROTO_MAX_REATTACH */
  uint32_t child;           /* the child's pid */
};

struct proto_create {       /* CREATE_SEGMENT = shmget(key, size, shmflg) */
  struct proto_cred cred;
  int32_t key;
  uint64_t size;
  int32_t shmflg;
  uint32_t huge_err;        /* with SHM_HUGETLB: the proto_err the caller's host gives a new
                             * segment (EINVAL, EPERM, ENOMEM); 0 unchecked (then ENOMEM) */
};

struct proto_create_reply {
  int32_t shmid;
};

struct proto_attach {       /* ATTACH_SEGMENT = shmat's permission check and nattch++ */
  struct proto_cred cred;
  int32_t shmid;
  int32_t shmflg;           /* SHM_RDONLY honoured; others are the shim's business */
};

struct proto_attach_reply {
  int32_t shmid;
  uint64_t segsz;
};

struct proto_segref {       /* DETACH_SEGMENT, REMOVE_SEGMENT: no reply payload */
  struct proto_cred cred;
  int32_t shmid;
};

struct proto_ds {           /* struct shmid64_ds, as the kernel fills it */
  int32_t key;
  uint32_t uid, gid, cuid, cgid, mode, seq;
  uint64_t segsz;
  int64_t atime, dtime, ctime;
  uint32_t cpid, lpid;
  uint64_t nattch;
};

struct proto_info {         /* struct shminfo (IPC_INFO) and struct shm_info (SHM_INFO) */
  uint64_t shmmax, shmmin, shmmni, shmseg, shmall;
  uint64_t used_ids, shm_tot, shm_rss, shm_swp;
};

struct proto_shmctl {       /* SHMCTL */
  struct proto_cred cred;
  int32_t shmid;
  int32_t cmd;              /* Linux command number (IPC_STAT = 2, ...) */
  uint32_t uid, gid, mode;  /* IPC_SET; for SHM_LOCK mode holds PROTO_LOCK_* flags */
  uint64_t memlock;         /* SHM_LOCK: the caller's RLIMIT_MEMLOCK in bytes, or
                             * PROTO_MEMLOCK_INFINITY */
};

struct proto_shmctl_reply {
  int32_t ret;              /* shmctl's return value on success */
  struct proto_ds ds;
  struct proto_info info;
};

/* One page of a run. In requests version is what the sender holds (0 = nothing) and
 * flags has no DATA; in grants, write-backs and recall acks, DATA means data points at
 * PROTO_PAGE_SIZE bytes (into the decoded payload, or the encoder's source). */
struct proto_page {
  uint64_t version;
  uint32_t flags;
  const uint8_t *data;
};

/* READ_DATA, ACQUIRE, WRITE_DATA, RECALL_ACK and the replies of READ_DATA and ACQUIRE. */
struct proto_run {
  int32_t shmid;
  uint32_t first;           /* page index in the segment */
  uint32_t count;           /* 1..PROTO_MAX_RUN */
  uint32_t mode;            /* PROTO_MODE_*: what is asked, granted or kept */
  struct proto_page page[PROTO_MAX_RUN];
};

struct proto_range {        /* INVALIDATE, INVALIDATE_ACK, RECALL */
  int32_t shmid;
  uint32_t first;
  uint32_t count;           /* 1..PROTO_MAX_RUN */
  uint32_t mode;            /* RECALL: the mode the holder keeps (SHARED or INVALID) */
};

struct proto_semget {       /* SEMGET = semget(key, nsems, semflg) */
  struct proto_cred cred;
  int32_t key;
  int32_t nsems;
  int32_t semflg;
};

struct proto_semget_reply {
  int32_t semid;
};

struct proto_semds {        /* struct semid64_ds, as the kernel fills it */
  int32_t key;
  uint32_t uid, gid, cuid, cgid, mode, seq;
  int64_t otime, ctime;
  uint64_t nsems;
};

struct proto_seminfo {      /* struct seminfo (IPC_INFO, SEM_INFO) */
  int32_t semmap, semmni, semmns, semmnu, semmsl, semopm, semume, semusz, semvmx, semaem;
};

/* Semaphore values on the wire: nvals big-endian u16 at vals (into the decoded payload, or
 * the encoder's source): SETALL's in SEMCTL, GETALL's in its reply; nvals 0 otherwise. */
struct proto_semctl {       /* SEMCTL = semctl(semid, semnum, cmd, arg) */
  struct proto_cred cred;
  int32_t semid;
  int32_t semnum;
  int32_t cmd;              /* Linux command number, may carry IPC_64 */
  int32_t val;              /* SETVAL */
  uint32_t uid, gid, mode;  /* IPC_SET */
  uint32_t nvals;           /* SETALL: <= PROTO_SEMMSL_MAX */
  const uint8_t *vals;
};

struct proto_semctl_reply {
  int32_t ret;              /* semctl's return value on success */
  struct proto_semds ds;    /* IPC_STAT, SEM_STAT(_ANY) */
  struct proto_seminfo info; /* IPC_INFO, SEM_INFO */
  uint32_t nvals;           /* GETALL */
  const uint8_t *vals;
};

/* SEMOP = semop/semtimedop. nsops operations of PROTO_SEMOP_SIZE bytes at sops (num u16,
 * op i16, flg i16). With PROTO_SEMOP_TIMEOUT, tv_sec/tv_nsec are the caller's relative
 * timeout as given (the server checks it). The reply (status only) may come much later:
 * the server holds a semop that must wait until it is done, times out (EAGAIN), its set
 * is removed (EIDRM) or it is cancelled (EINTR). */
struct proto_semop {
  struct proto_cred cred;
  int32_t semid;
  uint32_t flags;           /* PROTO_SEMOP_* */
  int64_t tv_sec, tv_nsec;
  uint32_t nsops;           /* 1..PROTO_SEMOPM_MAX */
  const uint8_t *sops;
};

/* SEM_CANCEL: the caller of the SEMOP with this reqid (same connection) was interrupted.
 * No reply of its own: the SEMOP's reply says what happened (EINTR if it was still
 * waiting, else its real result). */
struct proto_sem_cancel {
  uint32_t reqid;
};

/* PROC_EXIT (agent -> server): a local process ended; its SEM_UNDO adjustments apply. No
 * reply. */
struct proto_proc_exit {
  uint32_t pid;
};

/* OWNER_ALIVE: does thread tid of process pid on the host whose node tag is tag still live
 * (the owner of a robust mutex, preload/robust.c)? Asked by a process of its agent (tag 0:
 * "which tag is my host's"), by an agent of the server, and relayed by the server to the
 * agent of that host. The reply has the same body: alive 1 or 0 (and the tag). */
struct proto_owner {
  uint64_t tag;
  uint32_t pid, tid;
  uint32_t alive;           /* 0 or 1; 0 in requests */
};

/* SEG_INFO: what `dshm stat` shows beyond shmid_ds, asked with the rights of IPC_STAT (read
 * permission). HOSTS and PAGES are answered by the server from entry (host index) or page
 * first on; PROCS by the agent of the host whose tag is tag (0: the asker's own host),
 * relayed by the server as OWNER_ALIVE is. A reply lists entries [first, next) of total;
 * the asker asks again from next until next == total. */
struct proto_seginfo {
  struct proto_cred cred;
  int32_t shmid;
  uint32_t what;            /* PROTO_SEGINFO_* */
  uint32_t first;
  uint64_t tag;             /* PROCS: the host */
};

struct proto_seginfo_reply {
  uint32_t what;
  uint32_t total;           /* hosts, pages or processes in all */
  uint32_t next;            /* first entry not listed yet; total when this is the last */
  uint32_t n;               /* entries here, <= PROTO_SEGINFO_MAX_ENTRIES */
  const uint8_t *entries;   /* n entries of the kind's size, read and written with
                             * proto_seg{host,run,proc}_{get,put}; checked by proto_decode */
};

struct proto_seghost {
  uint64_t tag;             /* the host's node tag (0: none yet) */
  uint32_t node;            /* the server's number of its connection: page runs name it */
  uint32_t nrw, nro;        /* its attachments */
  char name[PROTO_MAX_NAME + 1]; /* as it said in HELLO, printable */
};

struct proto_segrun {
  uint32_t first, count;    /* pages */
  uint8_t mode;             /* PROTO_MODE_INVALID: at the server only; SHARED: read copies at
                             * the holders; EXCLUSIVE: the one holder may write it */
  uint8_t flags;            /* PROTO_SEGRUN_* */
  uint16_t nholders;        /* hosts that hold a copy */
  uint32_t holder[PROTO_SEGINFO_HOLDERS]; /* the first of them (node), PROTO_NO_NODE after */
};

struct proto_segproc {
  uint32_t pid;
  uint32_t nrw, nro;        /* its attachments */
};

void proto_seghost_put(uint8_t *e, const struct proto_seghost *h);
void proto_segrun_put(uint8_t *e, const struct proto_segrun *r);
void proto_segproc_put(uint8_t *e, const struct proto_segproc *p);
/* Entry i of a decoded reply (i < n, what matching). */
void proto_seghost_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_seghost *h);
void proto_segrun_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_segrun *run);
void proto_segproc_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_segproc *p);
/* Bytes of one entry of kind what, 0 for an unknown kind. */
size_t proto_seginfo_entry_size(uint32_t what);

struct proto_ping {
  uint64_t cookie;
};

/* A decoded message. Which member of u is valid follows from opcode and PROTO_F_REPLY;
 * a reply with status != 0 carries no payload. */
struct proto_msg {
  struct proto_hdr h;
  union {
    struct proto_hello hello;
    struct proto_hello_reply hello_reply;
    struct proto_groups groups;
    struct proto_challenge challenge;
    struct proto_auth auth;
    struct proto_auth_reply auth_reply;
    struct proto_node node;
    struct proto_node_reply node_reply;
    struct proto_reattach reattach;
    struct proto_inherit inherit;
    struct proto_create create;
    struct proto_create_reply create_reply;
    struct proto_attach attach;
    struct proto_attach_reply attach_reply;
    struct proto_segref segref;
    struct proto_shmctl shmctl;
    struct proto_shmctl_reply shmctl_reply;
    struct proto_run run;
    struct proto_range range;
    struct proto_ping ping;
    struct proto_semget semget;
    struct proto_semget_reply semget_reply;
    struct proto_semctl semctl;
    struct proto_semctl_reply semctl_reply;
    struct proto_semop semop;
    struct proto_sem_cancel sem_cancel;
    struct proto_proc_exit proc_exit;
    struct proto_owner owner;
    struct proto_seginfo seginfo;
    struct proto_seginfo_reply seginfo_reply;
  } u;
};

/* A node's 64-bit tag (NODE): the two halves of its id XORed, never 0. */
uint64_t proto_node_tag(const uint8_t id[PROTO_NODE_ID]);

/* Byte-order helpers: big-endian on the wire. */
void proto_put_u16(uint8_t *p, uint16_t v);
void proto_put_u32(uint8_t *p, uint32_t v);
void proto_put_u64(uint8_t *p, uint64_t v);
uint16_t proto_get_u16(const uint8_t *p);
uint32_t proto_get_u32(const uint8_t *p);
uint64_t proto_get_u64(const uint8_t *p);

/* Framing. Looks at the first len bytes of a stream and returns:
 *   > 0  the size of the complete frame at buf (header + payload), *h filled;
 *   0    need more bytes (*h filled once PROTO_HDR_SIZE bytes are there);
 *   < 0  -EBADMSG bad magic / unknown flags, -EPROTONOSUPPORT other version,
 *        -EOPNOTSUPP unknown opcode, -EMSGSIZE length above the opcode's cap.
 * The header alone decides; nothing is read past len. */
ssize_t proto_frame(const uint8_t *buf, size_t len, struct proto_hdr *h);

/* Decodes the payload of a framed message into m (m->h must already hold the header,
 * as proto_frame fills it). Returns 0 or -EBADMSG: short, long or inconsistent payload,
 * counts beyond the caps or past the payload. Data pointers point into payload. */
int proto_decode(struct proto_msg *m, const uint8_t *payload, size_t len);

/* Encodes m (header fields magic, version and length are filled in here) into buf.
 * Returns the frame size or -ENOBUFS if cap is too small, -EINVAL if m is not a valid
 * message (count out of range, DATA without data...). */
ssize_t proto_encode(uint8_t *buf, size_t cap, struct proto_msg *m);

/* Size the encoding of m would take, or -EINVAL. */
ssize_t proto_encoded_size(const struct proto_msg *m);

/* Writes a bare reply header (no payload) with the given status into buf (>= 20 bytes). */
size_t proto_encode_status(uint8_t *buf, uint8_t opcode, uint32_t reqid, int32_t status);

const char *proto_op_name(unsigned opcode);  /* "READ_DATA", or "?" */
int proto_err_from_errno(int err);           /* errno (either sign) -> PROTO_E* */
int proto_err_to_errno(int code);            /* PROTO_E* -> positive errno */

#endif /* DSHM_PROTO_H */
