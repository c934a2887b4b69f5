/*
 * mcp-sandboxd-bridge: runs first inside a sandbox whose run has a domain
 * allow-list (issue 14), before the run's seccomp filter applies.
 *
 *   mcp-sandboxd-bridge CHANNEL_FD SECCOMP_FD COMMAND [ARG...]
 *
 * Opens the run's proxy listeners on 127.0.0.1:3128 (HTTP) and 127.0.0.1:1080
 * (SOCKS5) in the sandbox's own network namespace, hands them to the server
 * over CHANNEL_FD (the run's private socketpair, SCM_RIGHTS) and closes its
 * copies: the server accepts and relays, so no process of the run holds them.
 * Then it installs the seccomp filter read from SECCOMP_FD and execs COMMAND.
 * Any failure exits 126 before the command runs (fails closed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints why and exits 126 (the shell's "cannot execute"). */
static void die(const char *what)
{
    fprintf(stderr, "sandbox: egress bridge: %s: %s\n", what, strerror(errno));
    exit(126);
}

/* A listening TCP socket on 127.0.0.1:port. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0)
        die("cannot listen on the proxy port");
    return fd;
}

/* Sends both listeners to the server in one message. */
static void send_listeners(int chan, int http, int socks)
{
    int fds[2] = {http, socks};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(fds))];
    } cm;
    memset(&cm, 0, sizeof(cm));
    char byte = 'L';
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(h), fds, sizeof(fds));
    if (sendmsg(chan, &msg, MSG_NOSIGNAL) != 1)
        die("cannot hand the listeners to the server");
}

/* Installs the compiled filter (BPF program bytes) from fd. */
static void apply_seccomp(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
        st.st_size > 1 << 20)
        die("bad seccomp filter");
    struct sock_filter *f = malloc((size_t)st.st_size);
    if (f == NULL || pread(fd, f, (size_t)st.st_size, 0) != st.st_size)
        die("cannot read the seccomp filter");
    struct sock_fprog prog = {(unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter)), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        die("cannot install the seccomp filter");
    free(f);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mcp-sandboxd-bridge CHANNEL_FD SECCOMP_FD COMMAND [ARG...]\n");
        return 126;
    }
    int chan = atoi(argv[1]), sfd = atoi(argv[2]);
    if (chan < 3 || sfd < 3)
        return 126;
    int http = listen_on(3128), socks = listen_on(1080);
    send_listeners(chan, http, socks);
    close(http);
    close(socks);
    close(chan);
    apply_seccomp(sfd);
    execv(argv[3], argv + 3);
    die("cannot run the command");
    return 126;
}
