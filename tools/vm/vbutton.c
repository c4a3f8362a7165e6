/*
 * vbutton: a virtual call button for the VM test (tools/vm/run.sh), through the kernel's uinput.
 *
 *   vbutton serve FIFO     creates the button, then runs the commands written to FIFO, one a line:
 *                            "<seq> <command> [argument]", and answers each on standard output with
 *                            "vbutton <seq> <command> ok ..." (or "... error <what>") once it is done.
 *   vbutton stamp          copies standard input to standard output, each line prefixed with the
 *                            CLOCK_MONOTONIC time it was read at ("12.345678 "), so the test can time
 *                            devicesim's log lines against the presses.
 *
 * Commands of serve (times are CLOCK_MONOTONIC seconds, the clock of devicesim's evdev timestamps):
 *   down | up            the key goes down or up: "... at=<t0>,<t1>", t0 before and t1 after the write,
 *                        so the kernel's timestamp of the event lies between them.
 *   press MS             down, MS milliseconds, up: "... down=<t0>,<t1> up=<t2>,<t3>". Held longer than
 *                        the kernel's repeat delay (250 ms), the kernel adds autorepeat events itself.
 *   flood N              the key goes down, then N packets of EV_MSC MSC_SCAN, far more than a reader's
 *                        buffer (64 events) holds when it does not read: the key's press is among the
 *                        events the kernel drops, so only a reader that reads the key state again
 *                        (EVIOCGKEY) after SYN_DROPPED knows the key is down.
 *   destroy | create     unplug (UI_DEV_DESTROY) and plug in again; create answers "... node=/dev/input/eventN".
 *   quit                 destroy and exit.
 *
 * The button: name "DeviceKit VM call button", USB 1d6b:0104 version 0111, EV_KEY KEY_PROG1, EV_MSC
 * MSC_SCAN, EV_REP. Like hardware/udev/71-devicekit.rules, serve keeps the link /dev/input/sos-button
 * pointing at its event node (there is no udevd in the VM).
 *
 * Built by tools/vm/run.sh with gcc -static; it is test equipment, not part of DeviceKit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/uinput.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUTTON_NAME "DeviceKit VM call button"
#define BUTTON_LINK "/dev/input/sos-button"
#define BUTTON_KEY KEY_PROG1

static int uinput = -1;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void say(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

/* Writes events in one write(2), so the kernel sees them as they come from one interrupt. */
static int emit(const struct input_event *events, size_t count) {
    size_t bytes = count * sizeof(struct input_event);
    ssize_t written = write(uinput, events, bytes);
    return written == (ssize_t)bytes ? 0 : -1;
}

static struct input_event event(unsigned short type, unsigned short code, int value) {
    struct input_event e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.code = code;
    e.value = value;
    return e;
}

/* The key to `down`, then SYN_REPORT; t0/t1 bracket the write. */
static int key(int down, double *t0, double *t1) {
    struct input_event events[2] = {event(EV_KEY, BUTTON_KEY, down), event(EV_SYN, SYN_REPORT, 0)};
    *t0 = now();
    int result = emit(events, 2);
    *t1 = now();
    return result;
}

/* The event node of the uinput device: /sys/class/input/<sysname>/eventN. */
static int find_node(char *node, size_t size) {
    char sysname[64] = {0};
    if (ioctl(uinput, UI_GET_SYSNAME(sizeof sysname), sysname) < 0) return -1;
    char dir[128];
    snprintf(dir, sizeof dir, "/sys/class/input/%s", sysname);
    for (int attempt = 0; attempt < 200; attempt++) {  /* evdev binds asynchronously: up to 2 s */
        DIR *d = opendir(dir);
        if (d) {
            struct dirent *entry;
            while ((entry = readdir(d))) {
                if (strncmp(entry->d_name, "event", 5) == 0) {
                    snprintf(node, size, "/dev/input/%s", entry->d_name);
                    closedir(d);
                    struct stat st;
                    if (stat(node, &st) == 0) return 0;
                    d = NULL;
                    break;
                }
            }
            if (d) closedir(d);
        }
        sleep_ms(10);
    }
    errno = ENOENT;
    return -1;
}

static int create(char *node, size_t size) {
    uinput = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (uinput < 0) return -1;
    struct uinput_setup setup;
    memset(&setup, 0, sizeof setup);
    setup.id.bustype = BUS_USB;
    setup.id.vendor = 0x1d6b;
    setup.id.product = 0x0104;
    setup.id.version = 0x0111;
    snprintf(setup.name, sizeof setup.name, "%s", BUTTON_NAME);
    if (ioctl(uinput, UI_SET_EVBIT, EV_KEY) < 0 || ioctl(uinput, UI_SET_KEYBIT, BUTTON_KEY) < 0
        || ioctl(uinput, UI_SET_EVBIT, EV_MSC) < 0 || ioctl(uinput, UI_SET_MSCBIT, MSC_SCAN) < 0
        || ioctl(uinput, UI_SET_EVBIT, EV_REP) < 0 || ioctl(uinput, UI_DEV_SETUP, &setup) < 0
        || ioctl(uinput, UI_DEV_CREATE) < 0 || find_node(node, size) < 0) {
        int saved = errno;
        close(uinput);
        uinput = -1;
        errno = saved;
        return -1;
    }
    unlink(BUTTON_LINK);
    if (symlink(node + strlen("/dev/input/"), BUTTON_LINK) < 0) return -1;
    return 0;
}

static void destroy(void) {
    unlink(BUTTON_LINK);
    if (uinput >= 0) {
        ioctl(uinput, UI_DEV_DESTROY);
        close(uinput);
        uinput = -1;
    }
}

static void run(const char *seq, const char *command, long argument) {
    double t0, t1, t2, t3;
    char node[300];
    if (strcmp(command, "create") == 0) {
        if (uinput >= 0) { say("vbutton %s create error already created", seq); return; }
        if (create(node, sizeof node) < 0) { say("vbutton %s create error %s", seq, strerror(errno)); return; }
        say("vbutton %s create ok node=%s at=%.6f", seq, node, now());
        return;
    }
    if (strcmp(command, "destroy") == 0) {
        t0 = now();
        destroy();
        say("vbutton %s destroy ok at=%.6f", seq, t0);
        return;
    }
    if (uinput < 0) { say("vbutton %s %s error no device (create it first)", seq, command); return; }
    if (strcmp(command, "down") == 0 || strcmp(command, "up") == 0) {
        if (key(command[0] == 'd', &t0, &t1) < 0) { say("vbutton %s %s error %s", seq, command, strerror(errno)); return; }
        say("vbutton %s %s ok at=%.6f,%.6f", seq, command, t0, t1);
    } else if (strcmp(command, "press") == 0 && argument >= 0) {
        if (key(1, &t0, &t1) < 0) { say("vbutton %s press error %s", seq, strerror(errno)); return; }
        sleep_ms(argument);
        if (key(0, &t2, &t3) < 0) { say("vbutton %s press error %s", seq, strerror(errno)); return; }
        say("vbutton %s press ok down=%.6f,%.6f up=%.6f,%.6f", seq, t0, t1, t2, t3);
    } else if (strcmp(command, "flood") == 0 && argument > 0) {
        if (key(1, &t0, &t1) < 0) { say("vbutton %s flood error %s", seq, strerror(errno)); return; }
        struct input_event scan[2] = {event(EV_MSC, MSC_SCAN, 0x90001), event(EV_SYN, SYN_REPORT, 0)};
        for (long i = 0; i < argument; i++) {
            if (emit(scan, 2) < 0) { say("vbutton %s flood error %s", seq, strerror(errno)); return; }
        }
        say("vbutton %s flood ok down=%.6f,%.6f events=%ld end=%.6f", seq, t0, t1, 2 + 2 * argument, now());
    } else {
        say("vbutton %s %s error unknown command or bad argument", seq, command);
    }
}

static int serve(const char *fifo) {
    char node[300];
    if (create(node, sizeof node) < 0) {
        say("vbutton 0 create error %s", strerror(errno));
        return 1;
    }
    say("vbutton 0 create ok node=%s at=%.6f", node, now());
    /* Read and write: the FIFO never reports end of file between two writers. */
    FILE *in = fopen(fifo, "r+");
    if (!in) {
        say("vbutton 0 fifo error %s: %s", fifo, strerror(errno));
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, in)) {
        char seq[32], command[32];
        long argument = -1;
        int fields = sscanf(line, "%31s %31s %ld", seq, command, &argument);
        if (fields < 2) continue;
        if (strcmp(command, "quit") == 0) {
            destroy();
            say("vbutton %s quit ok", seq);
            return 0;
        }
        run(seq, command, argument);
    }
    destroy();
    return 0;
}

static int stamp(void) {
    char line[8192];
    while (fgets(line, sizeof line, stdin)) {
        printf("%.6f %s", now(), line);
        if (!strchr(line, '\n')) putchar('\n');
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
    if (argc == 2 && strcmp(argv[1], "stamp") == 0) return stamp();
    fprintf(stderr, "usage: vbutton serve FIFO | vbutton stamp\n");
    return 2;
}
