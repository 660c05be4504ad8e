#!/usr/bin/env python3
"""Print the BPF programs loaded in the kernel, one "ID NAME" a line, through the bpf(2)
system call (no bpftool needed). Usage: bpf_progs.py"""
import ctypes
import ctypes.util
import os
import sys

NR_BPF = 321  # x86_64
PROG_GET_NEXT_ID, PROG_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD = 11, 13, 15
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def bpf(cmd, attr):
    return libc.syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))


class Attr(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32), ("c", ctypes.c_uint64),
                ("pad", ctypes.c_uint8 * 104)]


class Info(ctypes.Structure):  # struct bpf_prog_info, up to name
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
                ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
                ("name", ctypes.c_char * 16), ("rest", ctypes.c_uint8 * 256)]


def main():
    pid = 0
    while True:
        a = Attr(a=pid)  # start_id
        if bpf(PROG_GET_NEXT_ID, a) < 0:
            break
        pid = a.b  # next_id
        f = Attr(a=pid)
        fd = bpf(PROG_GET_FD_BY_ID, f)
        if fd < 0:
            continue
        info = Info()
        g = Attr(a=fd, b=ctypes.sizeof(info), c=ctypes.addressof(info))  # bpf_fd, info_len, info
        if bpf(OBJ_GET_INFO_BY_FD, g) == 0:
            print(info.id, info.name.decode(errors="replace"))
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
