/*
 * How much memory this process may use: the machine's physical memory, or
 * the limit of its control group when that is lower (systemd's MemoryMax=,
 * a container's limit). The job system sizes its default memory budget
 * from it (jobs.memory_budget = 0). Reads /proc and /sys only; any thread;
 * no state.
 */
#ifndef ITEMVEC_BASE_SYSMEM_H
#define ITEMVEC_BASE_SYSMEM_H

#include <stdint.h>

/* The smallest of: physical memory (sysconf), the cgroup v2 memory.max of
 * the process's cgroup, and the cgroup v1 memory.limit_in_bytes of its
 * memory cgroup (each looked up at its path from /proc/self/cgroup and at
 * the controller's root, as a container mounts it). Limits that are absent,
 * unreadable or "max" are ignored. Returns 0 only when even the physical
 * memory is unknown. */
uint64_t sysmem_limit_bytes(void);

#endif
