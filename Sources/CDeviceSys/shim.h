/*
 * shim.h — the project's one C module: libudev, libsodium's ChaCha20-Poly1305
 * (the frames' AEAD, used without allocating: Sources/DeviceKit/Protocol/
 * FrameAEAD.swift) and the Linux ioctls that Swift cannot import because
 * their request codes are function-like macros (_IOC/_IOR/_IOW).
 *
 * What Swift already sees through this header, so nothing here wraps it:
 *   - every libudev function (udev_new, udev_unref, udev_enumerate_*, ...);
 *   - plain integer #defines, including simple aliases and sums:
 *     EV_SYN, EV_KEY, EV_MAX, EV_CNT, SYN_REPORT, SYN_DROPPED, KEY_MAX,
 *     KEY_CNT, TIOCM_CTS, TIOCM_DSR, TIOCM_CD (= TIOCM_CAR), TIOCM_RI
 *     (= TIOCM_RNG), TIOCM_RTS, TIOCM_DTR, TIOCMGET, TIOCMIWAIT, TIOCGICOUNT;
 *   - the structs input_event, input_id and serial_icounter_struct;
 *   - getauxval and AT_PHDR/AT_PHNUM (sys/auxv.h), for where the executable
 *     was loaded (Sources/DeviceKit/Device/System/OwnExecutable.swift).
 *
 * recvmmsg(2) and sendmmsg(2), which Glibc declares only under _GNU_SOURCE
 * (so Swift's Glibc module lacks them and struct mmsghdr), are reached
 * through syscall(2) with a struct of the same layout: the batched UDP
 * socket of the centre and the load tool
 * (Sources/DeviceKit/Support/BatchedDatagramSocket.swift).
 *
 * Every wrapper returns what ioctl(2) returned: >= 0 on success (for the
 * string and bitmap requests, the number of bytes the kernel copied), -1 with
 * errno set on failure. A length too large for the 14-bit size field of an
 * _IOC request, or an event type above EV_MAX, fails with EINVAL instead of
 * silently encoding a different request.
 *
 * struct input_event layouts (decoded in Swift; this header only reports the
 * size of the one this build uses):
 *   - 64-bit longs (x86_64, aarch64, ...): struct timeval of two 8-byte longs,
 *     then __u16 type, __u16 code, __s32 value: 24 bytes, type at offset 16.
 *   - 32-bit longs with 32-bit time_t: timeval of two 4-byte longs, then
 *     type/code/value: 16 bytes, type at offset 8.
 *   - 32-bit longs with 64-bit time_t (__USE_TIME_BITS64): the header swaps
 *     the timeval for __kernel_ulong_t __sec and __usec. __kernel_ulong_t is
 *     still 4 bytes there, so the record is again 16 bytes, type at offset 8;
 *     only the seconds are unsigned (good until 2106). (On x32, whose
 *     __kernel_ulong_t is 8 bytes, the same branch gives 24 bytes.)
 */
#ifndef CDEVICESYS_SHIM_H
#define CDEVICESYS_SHIM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <linux/input.h>
#include <linux/serial.h>
#include <libudev.h>
#include <sodium.h>

/* --- evdev (/dev/input/event*) --------------------------------------- */

/* Request lengths must fit the _IOC size field; otherwise fail with EINVAL. */
static inline int cdevicesys_ioc_length_ok(size_t len) {
    if (len > _IOC_SIZEMASK) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}

/* EVIOCGVERSION: the evdev protocol version (EV_VERSION). */
static inline int cdevicesys_eviocgversion(int fd, int *version) {
    return ioctl(fd, EVIOCGVERSION, version);
}

/* EVIOCGID: bus type, vendor, product and version of the device. */
static inline int cdevicesys_eviocgid(int fd, struct input_id *id) {
    return ioctl(fd, EVIOCGID, id);
}

/* EVIOCGNAME(len): the device name. Not NUL-terminated when truncated. */
static inline int cdevicesys_eviocgname(int fd, char *buf, size_t len) {
    if (!cdevicesys_ioc_length_ok(len)) return -1;
    return ioctl(fd, EVIOCGNAME(len), buf);
}

/* EVIOCGPHYS(len): the physical location; ENOENT if the device has none. */
static inline int cdevicesys_eviocgphys(int fd, char *buf, size_t len) {
    if (!cdevicesys_ioc_length_ok(len)) return -1;
    return ioctl(fd, EVIOCGPHYS(len), buf);
}

/* EVIOCGUNIQ(len): the unique identifier; ENOENT if the device has none. */
static inline int cdevicesys_eviocguniq(int fd, char *buf, size_t len) {
    if (!cdevicesys_ioc_length_ok(len)) return -1;
    return ioctl(fd, EVIOCGUNIQ(len), buf);
}

/* EVIOCGBIT(ev, len): the codes supported for event type ev, as a bitmap of
 * unsigned longs; ev == 0 gives the supported event types themselves. */
static inline int cdevicesys_eviocgbit(int fd, unsigned int ev, void *bits, size_t len) {
    if (ev > EV_MAX || !cdevicesys_ioc_length_ok(len)) {
        errno = EINVAL;
        return -1;
    }
    return ioctl(fd, EVIOCGBIT(ev, len), bits);
}

/* EVIOCGPROP(len): the device's input properties (INPUT_PROP_POINTER,
 * INPUT_PROP_DIRECT, ...), as a bitmap of unsigned longs. */
static inline int cdevicesys_eviocgprop(int fd, void *bits, size_t len) {
    if (!cdevicesys_ioc_length_ok(len)) return -1;
    return ioctl(fd, EVIOCGPROP(len), bits);
}

/* EVIOCGKEY(len): the keys currently held down, as a bitmap of unsigned longs. */
static inline int cdevicesys_eviocgkey(int fd, void *bits, size_t len) {
    if (!cdevicesys_ioc_length_ok(len)) return -1;
    return ioctl(fd, EVIOCGKEY(len), bits);
}

/* EVIOCGRAB: on != 0 grabs the device for this descriptor alone, 0 releases
 * it. EBUSY if someone else holds the grab. */
static inline int cdevicesys_eviocgrab(int fd, int on) {
    return ioctl(fd, EVIOCGRAB, (void *)(uintptr_t)(on != 0));
}

/* EVIOCSCLOCKID: stamp this descriptor's events with clock_id (CLOCK_MONOTONIC
 * instead of the default CLOCK_REALTIME, so wall-clock steps do not show up as
 * long or negative presses). */
static inline int cdevicesys_eviocsclockid(int fd, int clock_id) {
    return ioctl(fd, EVIOCSCLOCKID, &clock_id);
}

/* --- serial modem lines ---------------------------------------------- */

/* TIOCMGET: the TIOCM_* bits of the modem lines. */
static inline int cdevicesys_tiocmget(int fd, int *lines) {
    return ioctl(fd, TIOCMGET, lines);
}

/* TIOCMIWAIT: block until one of the input lines in mask (TIOCM_CTS,
 * TIOCM_DSR, TIOCM_CD, TIOCM_RI) changes. */
static inline int cdevicesys_tiocmiwait(int fd, int mask) {
    return ioctl(fd, TIOCMIWAIT, (unsigned long)(unsigned int)mask);
}

/* TIOCGICOUNT: how many times each input line has changed (and other counts). */
static inline int cdevicesys_tiocgicount(int fd, struct serial_icounter_struct *counts) {
    return ioctl(fd, TIOCGICOUNT, counts);
}

/* --- input_event ------------------------------------------------------ */

/* sizeof(struct input_event) for this build: 24 with 64-bit longs, else 16. */
static inline size_t cdevicesys_input_event_size(void) {
    return sizeof(struct input_event);
}

/* --- batched UDP ------------------------------------------------------ */

/* struct mmsghdr (linux/socket.h), under a name of our own. */
struct cdevicesys_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/* What cdevicesys_receive_batch reports for a datagram longer than its slot. */
#define CDEVICESYS_TRUNCATED 0xFFFFFFFFu

/* Receives up to `count` datagrams without blocking (one recvmmsg): datagram i
 * into the `slot` bytes at data + i * slot, its sender into peers[i] (a
 * sockaddr_in6 holds either family), its length into lengths[i]
 * (CDEVICESYS_TRUNCATED if it did not fit). `headers` and `vectors` are
 * scratch space of `count` entries. Returns the number received, or -1 with
 * errno set (EAGAIN or EWOULDBLOCK: none queued). */
static inline int cdevicesys_receive_batch(
    int fd, struct cdevicesys_mmsghdr *headers, struct iovec *vectors, unsigned char *data, size_t slot,
    struct sockaddr_in6 *peers, uint32_t *lengths, unsigned int count) {
    for (unsigned int i = 0; i < count; i++) {
        vectors[i].iov_base = data + (size_t)i * slot;
        vectors[i].iov_len = slot;
        memset(&headers[i], 0, sizeof headers[i]);
        headers[i].msg_hdr.msg_name = &peers[i];
        headers[i].msg_hdr.msg_namelen = sizeof peers[i];
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    int received = (int)syscall(SYS_recvmmsg, fd, headers, count, MSG_DONTWAIT, NULL);
    for (int i = 0; i < received; i++) {
        lengths[i] = (headers[i].msg_hdr.msg_flags & MSG_TRUNC) ? CDEVICESYS_TRUNCATED : headers[i].msg_len;
    }
    return received;
}

/* Sends `count` datagrams without blocking (one sendmmsg): datagram i is the
 * lengths[i] bytes at data + offsets[i], to peers[i] (AF_INET: a sockaddr_in
 * at the same address; AF_INET6: a sockaddr_in6). `headers` and `vectors` are
 * scratch space of `count` entries. Returns how many were sent (from the
 * first), or -1 with errno set for the first one (EAGAIN or EWOULDBLOCK: the
 * send buffer is full). */
static inline int cdevicesys_send_batch(
    int fd, struct cdevicesys_mmsghdr *headers, struct iovec *vectors, const unsigned char *data,
    const uint32_t *offsets, const uint32_t *lengths, const struct sockaddr_in6 *peers, unsigned int count) {
    for (unsigned int i = 0; i < count; i++) {
        vectors[i].iov_base = (void *)(data + offsets[i]);
        vectors[i].iov_len = lengths[i];
        memset(&headers[i], 0, sizeof headers[i]);
        headers[i].msg_hdr.msg_name = (void *)&peers[i];
        headers[i].msg_hdr.msg_namelen =
            peers[i].sin6_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    return (int)syscall(SYS_sendmmsg, fd, headers, count, MSG_DONTWAIT);
}

#endif /* CDEVICESYS_SHIM_H */
