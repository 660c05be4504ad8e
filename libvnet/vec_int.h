/* Growable arrays: the one doubling step that the controller, the agent and the switch table's
 * writer share. Private to the library. */
#ifndef VNET_VEC_INT_H
#define VNET_VEC_INT_H

#include "vnet/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Room for element @n of the array @v (*@cap elements of @size bytes): @v itself while n < *cap,
 * else @v grown to twice *@cap (@first elements to begin with) with *@cap updated. NULL when out
 * of memory; @v is then untouched and still the caller's. */
static inline void *vec_room(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : first;
    if (c < n + 1 || c > SIZE_MAX / size)
        return NULL;
    void *nv = realloc(v, c * size);
    if (nv)
        *cap = c;
    return nv;
}

/* Append the @size bytes at @elem to the array whose pointer is at @vp (a T **), of *@n
 * elements and room for *@cap, growing it as vec_room() does. Returns 0 or VNET_ENOMEM (the
 * array is then untouched). */
static inline int vec_push(void *vp, size_t *n, size_t *cap, size_t size, size_t first,
                           const void *elem)
{
    void *v;
    memcpy(&v, vp, sizeof(v));
    v = vec_room(v, *n, cap, size, first);
    if (!v)
        return VNET_ENOMEM;
    memcpy(vp, &v, sizeof(v));
    memcpy((char *)v + *n * size, elem, size);
    (*n)++;
    return 0;
}

#endif
