/* libvnet internals: files written whole (key files, the pinned controller key). */
#ifndef VNET_FILE_INT_H
#define VNET_FILE_INT_H

/* fsync the directory holding @path, so that a file just linked or renamed there survives a
 * crash. Best effort: failures are ignored (the file itself was fsynced already). */
void vnet__fsync_dir_of(const char *path);

#endif
