/*
 * The machine's limit for a UDP server's CPU per datagram, measured beside the centre (issue 19): a minimal
 * echo server as the centre's event loop is built (epoll, recvmmsg of up to 32, one sendmmsg per read), and a
 * client that sends at a fixed rate from many sockets, spread evenly as a fleet's heartbeats are.
 *
 *   gcc -O2 -o /tmp/udp_echo_bench tools/udp_echo_bench.c
 *   /tmp/udp_echo_bench server PORT
 *   /tmp/udp_echo_bench client PORT RATE SECONDS SOCKETS
 *
 * The client prints one JSON line: datagrams sent and echoed, and the CPU time of both processes per datagram
 * (the server's read from /proc/PID/stat, PID given by ECHO_SERVER_PID). 37-byte datagrams, a heartbeat frame's
 * size. tools/load_bench.py's figures are the centre's and the load tool's under the same rate.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define SIZE 37

static int udp_socket(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    int buffer = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); exit(1); }
    return fd;
}

static int server(int port) {
    int fd = udp_socket(port);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    static char data[BATCH][2048];
    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    struct sockaddr_in peers[BATCH];
    for (;;) {
        if (epoll_wait(epoll, &event, 1, -1) < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                vectors[i] = (struct iovec){data[i], sizeof data[i]};
                messages[i].msg_hdr = (struct msghdr){.msg_name = &peers[i], .msg_namelen = sizeof peers[i], .msg_iov = &vectors[i], .msg_iovlen = 1};
            }
            int n = recvmmsg(fd, messages, BATCH, 0, NULL);
            if (n <= 0) break;
            for (int i = 0; i < n; i++) vectors[i].iov_len = messages[i].msg_len;
            sendmmsg(fd, messages, n, 0);
            if (n < BATCH) break;
        }
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double process_cpu(const char *pid) {
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) return -1;
    fclose(f);
    char *p = strrchr(line, ')');
    unsigned long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
    return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

static double own_cpu(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

static int client(int port, double rate, double seconds, int count) {
    int *fds = calloc(count, sizeof *fds);
    int epoll = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        fds[i] = udp_socket(0);
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &event);
    }
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char payload[SIZE] = {0}, reply[2048];
    const char *server_pid = getenv("ECHO_SERVER_PID");
    double server_cpu = server_pid ? process_cpu(server_pid) : -1, cpu = own_cpu();
    long sent = 0, echoed = 0;
    double start = now(), end = start + seconds;
    struct epoll_event events[256];
    while (now() < end) {
        long due = (long)((now() - start) * rate);
        for (; sent < due; sent++)
            sendto(fds[sent % count], payload, SIZE, 0, (struct sockaddr *)&server, sizeof server);
        int n = epoll_wait(epoll, events, 256, 1);
        for (int i = 0; i < n; i++)
            while (recv(events[i].data.fd, reply, sizeof reply, 0) > 0) echoed++;
    }
    double drain = now() + 0.5;
    while (now() < drain) {
        int n = epoll_wait(epoll, events, 256, 10);
        for (int i = 0; i < n; i++)
            while (recv(events[i].data.fd, reply, sizeof reply, 0) > 0) echoed++;
    }
    cpu = own_cpu() - cpu;
    double server_used = server_pid ? process_cpu(server_pid) - server_cpu : -1;
    printf("{\"rate\": %.0f, \"seconds\": %.0f, \"sockets\": %d, \"sent\": %ld, \"echoed\": %ld, "
           "\"client_cpu_us_per_round_trip\": %.2f, \"server_cpu_us_per_datagram\": %.2f}\n",
           rate, seconds, count, sent, echoed, cpu * 1e6 / (echoed ? echoed : 1),
           server_used < 0 ? -1.0 : server_used * 1e6 / (echoed ? echoed : 1));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "server") == 0) return server(atoi(argv[2]));
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return client(atoi(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: %s server PORT | client PORT RATE SECONDS SOCKETS\n", argv[0]);
    return 2;
}
