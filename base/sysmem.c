/*
 * Memory limit of the process (see sysmem.h): physical memory and cgroup
 * limits, read on every call (cheap, and a limit may change at runtime).
 */
#include "base/sysmem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The decimal number in file path (a cgroup limit), or 0 when absent,
 * unreadable or not a number ("max"). */
static uint64_t read_limit(const char *path)
{
    char buf[64];
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || errno != 0)
        return 0;
    return (uint64_t)v;
}

static uint64_t lower(uint64_t a, uint64_t b)
{
    return b && (!a || b < a) ? b : a;
}

uint64_t sysmem_limit_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t limit = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    limit = lower(limit, read_limit("/sys/fs/cgroup/memory.max"));
    limit = lower(limit, read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512], path[700];
    while (f && fgets(line, sizeof line, f)) {
        /* "0::/system.slice/x.service" (v2) or "4:memory:/path" (v1) */
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c2 = '\0';
        const char *ctrl = c1 + 1, *cg = c2 + 1;
        if (strcmp(line, "0") == 0 && *ctrl == '\0')
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", cg);
        else if (strstr(ctrl, "memory"))
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg);
        else
            continue;
        limit = lower(limit, read_limit(path));
    }
    if (f)
        fclose(f);
    return limit;
}
