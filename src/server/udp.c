/* SPDX-License-Identifier: MIT */
/* The UDP fast path: recvmmsg a batch (blocking), answer each query from the snapshot, sendmmsg it. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu/system.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "dnstap.h"
#include "internal.h"

/* Both pktinfo structures fit; in6_pktinfo is the larger. */
#define UDP_CTL_SIZE CMSG_SPACE(sizeof(struct in6_pktinfo))

typedef union udp_ctl {
	struct cmsghdr align;
	uint8_t buf[UDP_CTL_SIZE];
} udp_ctl_t;

/*
 * A worker's UDP buffers, allocated once at start: zero allocations per
 * query.  Slot i's query is in[i], its answer out[i].  The big byte arrays
 * are malloc'ed separately; pages no query touches are never made resident.
 */
struct udp_batch {
	struct mmsghdr rmsg[UDP_BATCH];
	struct mmsghdr smsg[UDP_BATCH];
	struct iovec riov[UDP_BATCH];
	struct iovec siov[UDP_BATCH];
	struct sockaddr_storage peer[UDP_BATCH];
	udp_ctl_t rctl[UDP_BATCH];
	udp_ctl_t sctl[UDP_BATCH];
	uint8_t *in;	 /* UDP_BATCH * DNS_MSG_MAX */
	uint8_t *out;	 /* UDP_BATCH * DNS_MSG_MAX */
	tap_end_t local; /* --dnstap: the --listen address, once */
};

/* Whether l is 0.0.0.0 or :: (replies must then name their source address). */
static bool listen_is_wildcard(const server_listen_t *l)
{
	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

/*
 * Never let ICMP "fragmentation needed" / "packet too big" messages shrink
 * the size we send at: they are not authenticated, and a forged one makes
 * the kernel fragment our answers, which is how off-path cache poisoning by
 * spoofed fragments works (RFC 9715).  Answers are at most 1,232 bytes, so
 * they fit the interface MTU; the kernel then never fragments them itself.
 * IP_PMTUDISC_OMIT (Linux >= 3.15) also leaves DF clear, so a router with a
 * smaller MTU may still fragment on the path rather than drop; older kernels
 * get IP_PMTUDISC_DONT.  A refusal is not fatal: answers still go out.
 */
static void udp_pmtu_ignore(int fd, int family)
{
	bool v4 = family == AF_INET;
	int level = v4 ? IPPROTO_IP : IPPROTO_IPV6, opt = v4 ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER;
	int omit = v4 ? IP_PMTUDISC_OMIT : IPV6_PMTUDISC_OMIT;
	int dont = v4 ? IP_PMTUDISC_DONT : IPV6_PMTUDISC_DONT;

	if (setsockopt(fd, level, opt, &omit, sizeof(omit)) < 0)
		(void)setsockopt(fd, level, opt, &dont, sizeof(dont));
}

int server_udp_open(const server_listen_t *l)
{
	int fd = server_socket_bind(l, SOCK_DGRAM, true);
	if (fd < 0)
		return fd;
	udp_pmtu_ignore(fd, l->addr.ss_family);
	if (!listen_is_wildcard(l))
		return fd;
	/*
	 * A socket bound to a wildcard address would answer from whatever
	 * address routing picks; resolvers drop answers from an address they
	 * did not ask.  Learn each query's destination and send from it.
	 */
	int one = 1, ret;
	if (l->addr.ss_family == AF_INET)
		ret = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	else
		ret = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	if (ret < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int server_udp_init(worker_t *w, int fd, const server_listen_t *l)
{
	w->udp.fd = fd;
	w->udp.pktinfo = listen_is_wildcard(l);
	/* The thread blocks in recvmmsg(); sends stay MSG_DONTWAIT. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;

	struct udp_batch *b = gslb_calloc(1, sizeof(*b));
	server_dnstap_end((const struct sockaddr *)&l->addr, &b->local);
	b->in = gslb_malloc((size_t)UDP_BATCH * DNS_MSG_MAX);
	b->out = gslb_malloc((size_t)UDP_BATCH * DNS_MSG_MAX);
	for (size_t i = 0; i < UDP_BATCH; i++) {
		b->riov[i].iov_base = b->in + i * DNS_MSG_MAX;
		b->riov[i].iov_len = DNS_MSG_MAX;
		struct msghdr *m = &b->rmsg[i].msg_hdr;
		m->msg_name = &b->peer[i];
		m->msg_iov = &b->riov[i];
		m->msg_iovlen = 1;
		m->msg_control = b->rctl[i].buf;
	}
	w->batch = b;
	return 0;
}

/* Reply from the address the query was sent to (wildcard sockets only). */
static void reply_source_set(const struct msghdr *in, struct msghdr *out, udp_ctl_t *ctl)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR((struct msghdr *)in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			/* The route decides the interface; the source is the query's destination. */
			pi.ipi_spec_dst = pi.ipi_addr;
			pi.ipi_ifindex = 0;
			out->msg_control = ctl->buf;
			out->msg_controllen = CMSG_SPACE(sizeof(pi));
			struct cmsghdr *o = CMSG_FIRSTHDR(out);
			o->cmsg_level = IPPROTO_IP;
			o->cmsg_type = IP_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(o), &pi, sizeof(pi));
			return;
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			/* Keep the interface index: link-local destinations need it. */
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->msg_control = ctl->buf;
			out->msg_controllen = CMSG_SPACE(sizeof(pi));
			struct cmsghdr *o = CMSG_FIRSTHDR(out);
			o->cmsg_level = IPPROTO_IPV6;
			o->cmsg_type = IPV6_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(o), &pi, sizeof(pi));
			return;
		}
	}
}

/* Send nout prepared answers.  A failed datagram is counted and skipped, never fatal. */
static void batch_send(worker_t *w, unsigned nout)
{
	struct udp_batch *b = w->batch;
	unsigned done = 0;
	while (done < nout) {
		int r = sendmmsg(w->udp.fd, b->smsg + done, nout - done, MSG_DONTWAIT);
		if (r > 0) {
			done += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The socket buffer is full: a DNS server drops rather than queues. */
			w->udp_send_errors += nout - done;
			return;
		}
		/* The error belongs to datagram done (e.g. an unreachable peer): skip it. */
		w->udp_send_errors++;
		done++;
	}
}

/*
 * The address a query was sent to, for the query log: the --listen address, or on a wildcard
 * socket the destination of its IP_PKTINFO / IPV6_PKTINFO (in end), with the --listen port.
 */
static const tap_end_t *query_local(const struct udp_batch *b, bool pktinfo,
				    const struct msghdr *in, tap_end_t *end)
{
	if (!pktinfo)
		return &b->local;
	*end = b->local;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR((struct msghdr *)in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(end->addr, &pi.ipi_addr, 4);
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(end->addr, &pi.ipi6_addr, 16);
		}
	}
	return end;
}

/*
 * --dnstap: log the batch just answered, once its answers are sent (the log never delays
 * them).  The answers are smsg[0 .. nout), in the order of the queries they answer; a query
 * dropped unanswered is logged alone.
 */
static __attribute__((noinline)) void batch_log(worker_t *w, unsigned n, unsigned nout,
						const struct timespec *query_t)
{
	struct udp_batch *b = w->batch;
	tap_ring_t *tap = w->tap;
	bool pktinfo = w->udp.pktinfo;
	struct timespec response_t;
	server_dnstap_now(&response_t);
	uint32_t response_ns = server_dnstap_delay_ns(query_t, &response_t);
	tap_end_t local;

	for (unsigned i = 0, k = 0; i < n; i++) {
		const uint8_t *resp = NULL;
		size_t rlen = 0;
		if (k < nout && b->smsg[k].msg_hdr.msg_name == &b->peer[i]) {
			resp = b->siov[k].iov_base;
			rlen = b->siov[k].iov_len;
			k++;
		}
		server_dnstap_log(tap, QUERY_UDP, (const struct sockaddr *)&b->peer[i],
				  query_local(b, pktinfo, &b->rmsg[i].msg_hdr, &local), query_t,
				  response_ns, b->in + (size_t)i * DNS_MSG_MAX, b->rmsg[i].msg_len,
				  resp, rlen);
	}
}

/* Answer n received datagrams and send the answers. */
static void batch_answer(worker_t *w, unsigned n)
{
	struct udp_batch *b = w->batch;
	unsigned nout = 0;
	/* The predictable branch that is all the query log costs when it is off. */
	struct timespec query_t;
	if (unlikely(w->tap != NULL))
		server_dnstap_now(&query_t);

	const query_data_t *snap = server_rcu_enter(w);
	/* The clock is read once for the batch, by the first query that needs it. */
	w->ctx.now_ms = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct msghdr *in = &b->rmsg[i].msg_hdr;
		uint8_t *resp = b->out + (size_t)i * DNS_MSG_MAX;
		size_t len = query_answer(&w->ctx, snap, b->in + (size_t)i * DNS_MSG_MAX,
					  b->rmsg[i].msg_len, resp, QUERY_UDP,
					  (const struct sockaddr *)&b->peer[i]);
		if (!len)
			continue;
		struct msghdr *out = &b->smsg[nout].msg_hdr;
		b->siov[nout].iov_base = resp;
		b->siov[nout].iov_len = len;
		out->msg_name = &b->peer[i];
		out->msg_namelen = in->msg_namelen;
		out->msg_iov = &b->siov[nout];
		out->msg_iovlen = 1;
		out->msg_control = NULL;
		out->msg_controllen = 0;
		out->msg_flags = 0;
		if (w->udp.pktinfo)
			reply_source_set(in, out, &b->sctl[nout]);
		nout++;
	}
	server_rcu_leave();
	if (nout)
		batch_send(w, nout);
	if (unlikely(w->tap != NULL))
		batch_log(w, n, nout, &query_t);
}

/*
 * Block for the first datagram, take whatever else is queued (up to a
 * batch), answer them all, send the answers in one call.  The thread is an
 * RCU reader only while it answers (server_rcu_enter/leave), so a thread
 * waiting here never holds up a grace period.
 */
void server_udp_run(worker_t *w)
{
	struct udp_batch *b = w->batch;
	socklen_t ctl_len = w->udp.pktinfo ? sizeof(b->rctl[0]) : 0;
	int used = UDP_BATCH;

	while (!CMM_LOAD_SHARED(w->stopping)) {
		/* recvmmsg overwrote these in the slots it filled; the rest of rmsg stays as set up. */
		for (int i = 0; i < used; i++) {
			b->rmsg[i].msg_hdr.msg_namelen = sizeof(b->peer[i]);
			b->rmsg[i].msg_hdr.msg_controllen = ctl_len;
			b->rmsg[i].msg_hdr.msg_flags = 0;
		}
		int n = recvmmsg(w->udp.fd, b->rmsg, UDP_BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				w->udp_recv_errors++;
			used = UDP_BATCH; /* what a failed call left behind: not worth knowing */
			continue;
		}
		used = n;
		/* server_udp_wake() ends the wait with an empty read. */
		if (unlikely(CMM_LOAD_SHARED(w->stopping)))
			break;
		batch_answer(w, (unsigned)n);
	}
}

void server_udp_wake(worker_t *w)
{
	/*
	 * On Linux, shutting down the reading side of a UDP socket wakes a
	 * thread blocked in recvmmsg() (it returns at once from then on), even
	 * though the call itself fails with ENOTCONN on an unconnected socket.
	 */
	if (w->udp.fd >= 0)
		(void)shutdown(w->udp.fd, SHUT_RD);
}

void server_udp_deinit(worker_t *w)
{
	if (w->udp.fd >= 0) {
		close(w->udp.fd);
		w->udp.fd = -1;
	}
	if (w->batch) {
		free(w->batch->in);
		free(w->batch->out);
		free(w->batch);
		w->batch = NULL;
	}
}
