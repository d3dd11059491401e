/* fault.h - the SIGSEGV handler that drives the page cache, and forwarding of foreign faults. */
#ifndef DSHM_SHIM_FAULT_H
#define DSHM_SHIM_FAULT_H

/* Installs the handler with the real sigaction and records the previous disposition as the
 * application's. Called once from the library's init. 0 or -errno. */
int shim_fault_install(void);

/* 1 once the handler is installed (the sigaction wrappers then virtualize SIGSEGV). */
int shim_fault_installed(void);

#endif /* DSHM_SHIM_FAULT_H */
