/* SPDX-License-Identifier: MIT */
/* One probe on the health loop: non-blocking connect, optional TLS over memory BIOs, HTTP/1.1 GET. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "gslb/core.h"
#include "internal.h"

/* A write request that owns its bytes (TLS records come out of the BIO in pieces). */
typedef struct out_req {
	uv_write_t req;
	char data[];
} out_req_t;

static void probe_end(health_target_t *t, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

uint32_t health_tls_reverify_ms = 5 * 60 * 1000;

static void sess_put(SSL_SESSION **s)
{
	if (*s) {
		SSL_SESSION_free(*s);
		*s = NULL;
	}
}

void health_probe_forget(health_target_t *t)
{
	sess_put(&t->sess);
	sess_put(&t->sess_new);
}

/*
 * The probe ended: a success keeps the newest session for the next probe; a
 * failure of any kind forgets them all, so the next probe verifies afresh.
 */
static void sess_settle(health_target_t *t, bool ok)
{
	if (!ok) {
		health_probe_forget(t);
		return;
	}
	/*
	 * We close without a close_notify (the connection has served its
	 * purpose); SSL_free would take that for a broken connection and mark
	 * the session unresumable.
	 */
	if (t->ssl)
		SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if (t->sess_new) {
		sess_put(&t->sess);
		t->sess = t->sess_new;
		t->sess_new = NULL;
	}
}

static void tcp_close_cb(uv_handle_t *h)
{
	health_target_t *t = h->data;

	t->tcp_open = false;
	health_target_handle_closed(t);
}

/* Release the connection; the target's handles stay valid until tcp_close_cb. */
static void probe_release(health_target_t *t)
{
	t->probing = false;
	if (t->ssl) {
		SSL_free(t->ssl);
		t->ssl = NULL;
	}
	sess_put(&t->sess_new);
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp))
		uv_close((uv_handle_t *)&t->tcp, tcp_close_cb);
}

static void probe_end(health_target_t *t, bool ok, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	if (!t->probing)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	double ms = (double)(uv_hrtime() - t->start_ns) / 1e6;
	if (t->check.type == HEALTH_HTTPS)
		sess_settle(t, ok);
	probe_release(t);
	health_loop_report(t, ok, ms, reason);
}

void health_probe_abort(health_target_t *t)
{
	if (t->probing || t->tcp_open)
		probe_release(t);
}

void health_probe_timeout(health_target_t *t)
{
	probe_end(t, false, "timeout after %u ms", (unsigned)t->check.timeout_ms);
}

static void write_cb(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or the timeout */
	free(req->data);
}

static int send_bytes(health_target_t *t, const void *data, size_t len)
{
	out_req_t *w = gslb_malloc(sizeof(*w) + len);
	memcpy(w->data, data, len);
	w->req.data = w;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	int rc = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, write_cb);
	if (rc < 0)
		free(w);
	return rc;
}

/* Send whatever OpenSSL queued in the write BIO. */
static int tls_flush(health_target_t *t)
{
	BIO *wbio = SSL_get_wbio(t->ssl);
	char *tmp = health_loop_rbuf(t->hl);

	for (;;) {
		int n = BIO_read(wbio, tmp, HEALTH_READ_BUF);
		if (n <= 0)
			return 0;
		int rc = send_bytes(t, tmp, (size_t)n);
		if (rc < 0)
			return rc;
	}
}

static const char *verify_reason(long vr)
{
	/* OpenSSL says "hostname mismatch"; users read "host name". */
	if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		return "host name mismatch";
	return X509_verify_cert_error_string(vr);
}

static void tls_fail(health_target_t *t)
{
	long vr = SSL_get_verify_result(t->ssl);
	if (!t->check.insecure && vr != X509_V_OK) {
		probe_end(t, false, "TLS: %s", verify_reason(vr));
		return;
	}
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	probe_end(t, false, "TLS: handshake failed%s%s%s", why ? " (" : "", why ? why : "",
		  why ? ")" : "");
}

/* ---- the HTTP response ---- */

/* The value of header name (given with its colon) in the header block, without OWS; NULL if absent. */
static const char *header_value(const char *h, size_t len, const char *name, size_t *vlen)
{
	const char *p = h, *end = h + len;
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) >= nlen && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

/*
 * The Content-Length of the header block (RFC 9110 8.6): -1 when there is
 * none, -2 when it is malformed.  The value is 1*DIGIT; a recipient must
 * guard against overflow, so a length beyond 2^62 is malformed too.  Several
 * fields, or a comma-separated list, are one length only when every value is
 * the same (RFC 9112 6.3: anything else is an unrecoverable framing error).
 */
static int64_t find_content_length(const char *h, size_t len)
{
	const char *p = h, *end = h + len;
	int64_t cl = -1;
	size_t n;

	for (;;) {
		const char *v = header_value(p, (size_t)(end - p), "Content-Length:", &n);
		if (!v)
			return cl;
		const char *ve = v + n;
		p = ve;
		/* Each list element: OWS 1*DIGIT OWS, between commas. */
		for (const char *e = v; e <= ve; e++) {
			while (e < ve && (*e == ' ' || *e == '\t'))
				e++;
			int64_t x = 0;
			const char *d = e;
			while (e < ve && *e >= '0' && *e <= '9') {
				if (x > ((int64_t)1 << 62) / 10)
					return -2;
				x = x * 10 + (*e++ - '0');
			}
			if (e == d)
				return -2;
			while (e < ve && (*e == ' ' || *e == '\t'))
				e++;
			if (e < ve && *e != ',')
				return -2;
			if (cl >= 0 && x != cl)
				return -2;
			cl = x;
		}
	}
}

/* RFC 9112 6.1: chunked is the final transfer coding of the list, if there. */
static bool find_chunked(const char *h, size_t len)
{
	size_t n;
	const char *v = header_value(h, len, "Transfer-Encoding:", &n);

	if (!v)
		return false;
	const char *last = v;
	for (const char *p = v; p < v + n; p++)
		if (*p == ',')
			last = p + 1;
	while (last < v + n && (*last == ' ' || *last == '\t'))
		last++;
	return (size_t)(v + n - last) == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* ---- chunked transfer-coding (RFC 9112 7.1), decoded into buf as it streams in ---- */

enum {
	CK_SIZE0,   /* the first digit of a chunk-size */
	CK_SIZE,    /* more digits */
	CK_EXT,	    /* chunk extensions, skipped */
	CK_SIZE_LF, /* the LF that ends the chunk-size line */
	CK_DATA,
	CK_DATA_CR, /* the CRLF after the chunk data */
	CK_DATA_LF,
	CK_TRAILER0, /* the start of a trailer line, or the empty line that ends the body */
	CK_TRAILER,
	CK_END_LF,
	CK_DONE,
	CK_BAD,
};

#define CHUNK_LINE_MAX 4096 /* a chunk-size line or trailer line longer than this is refused */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Append n bytes at p to the response buffer, as far as limit (what is
 * beyond is not looked at); p may lie in buf, behind the write point.
 */
static void buf_append(health_target_t *t, const char *p, size_t n, size_t limit)
{
	if (t->len + n > limit)
		n = limit > t->len ? limit - t->len : 0;
	if (!n)
		return;
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + n)
			cap *= 2;
		t->buf = gslb_realloc(t->buf, cap);
		t->cap = cap;
	}
	memmove(t->buf + t->len, p, n);
	t->len += n;
}

/* Append decoded body bytes, as far as match looks. */
static void body_put(health_target_t *t, const char *p, size_t n)
{
	buf_append(t, p, n, t->hdr_end + HEALTH_BODY_MAX);
}

/* One byte of framing (everything but chunk data): the next state, or NULL and why it is bad. */
static int chunk_next(health_target_t *t, char c, const char **why)
{
	int h;

	switch (t->ck_state) {
	case CK_SIZE0:
		if ((h = hex_digit(c)) < 0)
			break;
		t->ck_left = (uint64_t)h;
		return CK_SIZE;
	case CK_SIZE:
		if ((h = hex_digit(c)) >= 0) {
			if (t->ck_left >> 56) {
				*why = "chunk-size too large";
				return CK_BAD;
			}
			t->ck_left = t->ck_left << 4 | (uint64_t)h;
			return CK_SIZE;
		}
		if (c == ';' || c == ' ' || c == '\t')
			return CK_EXT;
		if (c == '\r')
			return CK_SIZE_LF;
		if (c == '\n')
			return t->ck_left ? CK_DATA : CK_TRAILER0;
		break;
	case CK_EXT:
		if (c == '\r')
			return CK_SIZE_LF;
		if (c == '\n')
			return t->ck_left ? CK_DATA : CK_TRAILER0;
		return CK_EXT;
	case CK_SIZE_LF:
		if (c == '\n')
			return t->ck_left ? CK_DATA : CK_TRAILER0;
		*why = "CR without LF in a chunk-size line";
		return CK_BAD;
	case CK_DATA_CR:
	case CK_DATA_LF:
		/* A bare LF is taken as the line end, as for chunk-size lines. */
		if (c == '\r' && t->ck_state == CK_DATA_CR)
			return CK_DATA_LF;
		if (c == '\n')
			return CK_SIZE0;
		*why = "no CRLF after chunk data";
		return CK_BAD;
	case CK_TRAILER0:
		if (c == '\r')
			return CK_END_LF;
		return c == '\n' ? CK_DONE : CK_TRAILER;
	case CK_TRAILER:
		return c == '\n' ? CK_TRAILER0 : CK_TRAILER;
	case CK_END_LF:
		if (c == '\n')
			return CK_DONE;
		*why = "CR without LF after the trailer";
		return CK_BAD;
	}
	*why = "chunk-size is not hexadecimal";
	return CK_BAD;
}

static void chunk_byte(health_target_t *t, char c)
{
	const char *why = NULL;
	int next = chunk_next(t, c, &why);

	if (next == CK_BAD) {
		t->ck_state = CK_BAD;
		t->ck_err = why;
		return;
	}
	/* Lines restart at a new state that begins one; a line too long is refused. */
	if (next == CK_SIZE0 || next == CK_TRAILER0 || next == CK_DATA)
		t->ck_line = 0;
	else if (++t->ck_line > CHUNK_LINE_MAX) {
		t->ck_err = next >= CK_TRAILER0 ? "trailer line too long"
						: "chunk-size line too long";
		t->ck_state = CK_BAD;
		return;
	}
	t->ck_state = (uint8_t)next;
}

/* Decode raw message-body bytes: no allocation beyond the body buffer itself. */
static void chunk_feed(health_target_t *t, const char *in, size_t n)
{
	size_t i = 0;

	while (i < n && t->ck_state != CK_DONE && t->ck_state != CK_BAD) {
		if (t->ck_state == CK_DATA) {
			size_t k = n - i < t->ck_left ? n - i : (size_t)t->ck_left;
			body_put(t, in + i, k);
			i += k;
			t->ck_left -= k;
			if (!t->ck_left)
				t->ck_state = CK_DATA_CR;
			continue;
		}
		chunk_byte(t, in[i++]);
	}
}

/* The header block is complete (hdr_end set): false if the probe ended here. */
static bool http_headers(health_target_t *t)
{
	char *eol = memmem(t->buf, t->len, "\r\n", 2);
	const char *h = eol + 2;
	size_t hlen = t->hdr_end - (size_t)(h - t->buf);

	t->status = health_http_status_parse(t->buf, (size_t)(eol - t->buf));
	if (t->status < 0) {
		probe_end(t, false, "malformed HTTP response");
		return false;
	}
	/*
	 * RFC 9112 6.3: a Transfer-Encoding overrides Content-Length (chunked,
	 * or else the body runs to the close); without one, a Content-Length
	 * that is not one valid length makes the framing, so the response,
	 * invalid, whatever the status says.
	 */
	size_t te_len;
	if (!header_value(h, hlen, "Transfer-Encoding:", &te_len)) {
		t->content_length = find_content_length(h, hlen);
		if (t->content_length < -1) {
			probe_end(t, false, "malformed HTTP response (bad Content-Length)");
			return false;
		}
	}
	if (!health_expect_match(&t->check, (unsigned)t->status)) {
		probe_end(t, false, "HTTP %d", t->status);
		return false;
	}
	if (!t->check.match || !*t->check.match) {
		probe_end(t, true, "HTTP %d", t->status);
		return false;
	}
	t->chunked = find_chunked(h, hlen);
	if (!t->chunked)
		return true;
	/* The body bytes read with the headers, decoded in place (never longer than the raw). */
	size_t raw = t->len - t->hdr_end;
	t->len = t->hdr_end;
	t->ck_state = CK_SIZE0;
	t->ck_line = 0;
	chunk_feed(t, t->buf + t->hdr_end, raw);
	return true;
}

/* Decide what we can from the bytes so far; the probe may end here. */
static void http_check(health_target_t *t, bool eof)
{
	const char *match = t->check.match;

	if (!t->hdr_end) {
		/* buf is NULL until the first bytes come: memmem() wants a buffer. */
		char *e = t->len ? memmem(t->buf, t->len, "\r\n\r\n", 4) : NULL;
		if (!e) {
			if (t->len > HEALTH_HEADERS_MAX) {
				probe_end(t, false, "malformed HTTP response");
			} else if (eof) {
				char *eol = t->len ? memmem(t->buf, t->len, "\r\n", 2) : NULL;
				if (t->len == 0 ||
				    (eol &&
				     health_http_status_parse(t->buf, (size_t)(eol - t->buf)) > 0))
					probe_end(t, false, "connection closed before a response");
				else
					probe_end(t, false, "malformed HTTP response");
			}
			return;
		}
		t->hdr_end = (size_t)(e - t->buf) + 4;
		if (!http_headers(t))
			return;
	}
	size_t blen = t->len - t->hdr_end;
	if (blen > HEALTH_BODY_MAX)
		blen = HEALTH_BODY_MAX;
	/* Bytes beyond the length are no part of the body, however the reads cut them. */
	if (!t->chunked && t->content_length >= 0 && (uint64_t)blen > (uint64_t)t->content_length)
		blen = (size_t)t->content_length;
	/* The string may be found before a malformed part: we stop reading as soon as it is. */
	if (memmem(t->buf + t->hdr_end, blen, match, strlen(match))) {
		probe_end(t, true, "HTTP %d", t->status);
		return;
	}
	bool complete;
	if (t->chunked) {
		if (t->ck_state == CK_BAD) {
			probe_end(t, false, "HTTP: bad chunked encoding (%s)", t->ck_err);
			return;
		}
		if (eof && t->ck_state != CK_DONE && blen < HEALTH_BODY_MAX) {
			probe_end(t, false,
				  "HTTP: bad chunked encoding (the connection closed inside the "
				  "body)");
			return;
		}
		complete = t->ck_state == CK_DONE;
	} else {
		complete = t->content_length >= 0 && blen >= (size_t)t->content_length;
	}
	if (eof || blen >= HEALTH_BODY_MAX || complete)
		probe_end(t, false, "body did not contain \"%s\"", match);
}

void health_http_input(health_target_t *t, const char *data, size_t n)
{
	if (t->hdr_end && t->chunked) {
		chunk_feed(t, data, n);
		http_check(t, false);
		return;
	}
	buf_append(t, data, n, (t->hdr_end ? t->hdr_end : HEALTH_HEADERS_MAX) + HEALTH_BODY_MAX);
	http_check(t, false);
}

void health_http_eof(health_target_t *t)
{
	http_check(t, true);
}

/* ---- TLS over the stream ---- */

/*
 * The handshake is done.  A full one verified the chain now (or, insecure,
 * did not); a resumed one verified nothing, and only stands on the result
 * its session recorded.
 */
static int tls_check_session(health_target_t *t)
{
	if (!SSL_session_reused(t->ssl)) {
		sess_put(&t->sess); /* not taken by the server: this handshake's ones replace it */
		t->verified_ns = t->start_ns;
		t->sess_insecure = t->check.insecure;
		return 0;
	}
	if (!t->check.insecure && SSL_get_verify_result(t->ssl) != X509_V_OK) {
		tls_fail(t);
		return -1;
	}
	return 0;
}

/*
 * The handshake completed (verified, or insecure): keep the notAfter of the
 * leaf certificate it saw, for the expiry metric and warning.  A resumed
 * session carries the certificate of the handshake that made it.
 */
static void tls_note_cert(health_target_t *t)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	X509 *leaf = SSL_get1_peer_certificate(t->ssl);
#else
	X509 *leaf = SSL_get_peer_certificate(t->ssl);
#endif
	struct tm tm;

	if (!leaf)
		return;
	const ASN1_TIME *na = X509_get0_notAfter(leaf);
	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		t->cert_not_after = (int64_t)timegm(&tm);
	X509_free(leaf);
}

/* Resume the target's last session, unless it is too old to trust or not verified enough. */
static void tls_resume(health_target_t *t)
{
	if (!t->sess)
		return;
	uint64_t age_ms = (uv_hrtime() - t->verified_ns) / 1000000;

	if (age_ms >= health_tls_reverify_ms || (t->sess_insecure && !t->check.insecure) ||
	    !SSL_SESSION_is_resumable(t->sess)) {
		sess_put(&t->sess);
		return;
	}
	SSL_set_session(t->ssl, t->sess);
}

/* OpenSSL made a session (TLS 1.3: a ticket, which arrives after the handshake). */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	health_target_t *t = SSL_get_app_data(ssl);

	if (!t || !t->probing)
		return 0;
	sess_put(&t->sess_new);
	t->sess_new = sess;
	return 1; /* the reference is ours */
}

static void tls_pump(health_target_t *t)
{
	char *tmp = health_loop_rbuf(t->hl);

	ERR_clear_error();
	if (!t->hs_done) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int err = SSL_get_error(t->ssl, r);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				if (tls_flush(t) < 0)
					probe_end(t, false, "connection closed before a response");
				return;
			}
			tls_flush(t); /* the alert, if any */
			tls_fail(t);
			return;
		}
		t->hs_done = true;
		if (tls_check_session(t) < 0)
			return;
		tls_note_cert(t);
	}
	if (!t->req_sent) {
		/* The write BIO is a memory BIO: the whole request is accepted at once. */
		if (SSL_write(t->ssl, t->request, (int)t->request_len) <= 0) {
			tls_fail(t);
			return;
		}
		t->req_sent = true;
	}
	if (tls_flush(t) < 0) {
		probe_end(t, false, "connection closed before a response");
		return;
	}
	while (t->probing) {
		int r = SSL_read(t->ssl, tmp, HEALTH_READ_BUF);
		if (r > 0) {
			health_http_input(t, tmp, (size_t)r);
			continue;
		}
		int err = SSL_get_error(t->ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (err == SSL_ERROR_ZERO_RETURN) {
			health_http_eof(t);
			break;
		}
		probe_end(t, false, "TLS: read failed");
		break;
	}
	if (t->probing)
		tls_flush(t);
}

static int tls_begin(health_target_t *t)
{
	const char *host = t->check.host;
	struct in6_addr tmp;
	bool host_is_ip = host && (inet_pton(AF_INET, host, &tmp) == 1 ||
				   inet_pton(AF_INET6, host, &tmp) == 1);

	t->ssl = SSL_new(health_loop_tls(t->hl));
	if (!t->ssl)
		return -ENOMEM;
	SSL_set_app_data(t->ssl, t);
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	if (!rbio || !wbio) {
		BIO_free(rbio);
		BIO_free(wbio);
		return -ENOMEM;
	}
	SSL_set_bio(t->ssl, rbio, wbio);
	SSL_set_connect_state(t->ssl);
	/* RFC 6066 3: SNI carries a host name, never an address literal. */
	if (host && *host && !host_is_ip)
		SSL_set_tlsext_host_name(t->ssl, host);
	if (t->check.insecure) {
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	} else {
		X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
		char a[INET6_ADDRSTRLEN];
		X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (host && *host && !host_is_ip) {
			X509_VERIFY_PARAM_set1_host(p, host, 0);
		} else {
			const void *src =
				t->check.addr.ss_family == AF_INET6
					? (const void *)&(
						  (const struct sockaddr_in6 *)&t->check.addr)
						  ->sin6_addr
					: (const void *)&(
						  (const struct sockaddr_in *)&t->check.addr)
						  ->sin_addr;
			X509_VERIFY_PARAM_set1_ip_asc(
				p, host && *host
					   ? host
					   : inet_ntop(t->check.addr.ss_family, src, a, sizeof(a)));
		}
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
	}
	tls_resume(t);
	return 0;
}

/* ---- the stream ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	health_target_t *t = h->data;
	(void)suggested;
	*buf = uv_buf_init(health_loop_rbuf(t->hl), HEALTH_READ_BUF);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	health_target_t *t = s->data;

	if (!t->probing || nread == 0)
		return;
	if (nread < 0) {
		if (nread != UV_EOF) {
			probe_end(t, false, "%s",
				  nread == UV_ECONNRESET ? "connection reset"
							 : uv_strerror((int)nread));
			return;
		}
		if (t->ssl && !t->hs_done)
			probe_end(t, false, "TLS: connection closed during the handshake");
		else
			health_http_eof(t);
		return;
	}
	if (t->ssl) {
		BIO_write(SSL_get_rbio(t->ssl), buf->base, (int)nread);
		tls_pump(t);
	} else {
		health_http_input(t, buf->base, (size_t)nread);
	}
}

static void connect_cb(uv_connect_t *req, int status)
{
	health_target_t *t = req->data;
	int rc;

	if (!t->probing || status == UV_ECANCELED)
		return;
	if (status < 0) {
		if (status == UV_ECONNREFUSED)
			probe_end(t, false, "connect refused");
		else if (status == UV_ETIMEDOUT)
			probe_end(t, false, "connect timed out");
		else if (status == UV_ENETUNREACH || status == UV_EHOSTUNREACH)
			probe_end(t, false, "no route to host");
		else
			probe_end(t, false, "connect failed: %s", uv_strerror(status));
		return;
	}
	if (t->check.type == HEALTH_TCP) {
		probe_end(t, true, "connected");
		return;
	}
	uv_tcp_nodelay(&t->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb);
	if (rc < 0)
		goto fail;
	if (t->check.type == HEALTH_HTTPS) {
		rc = tls_begin(t);
		if (rc < 0)
			goto fail;
		tls_pump(t);
		return;
	}
	rc = send_bytes(t, t->request, t->request_len);
	if (rc < 0)
		goto fail;
	return;
fail:
	probe_end(t, false, "connect failed: %s", rc < -999 ? gslb_strerror(rc) : uv_strerror(rc));
}

void health_probe_start(health_target_t *t)
{
	uv_loop_t *loop = t->timer.loop;
	int rc;

	t->probing = true;
	t->start_ns = uv_hrtime();
	t->hs_done = t->req_sent = false;
	t->len = t->hdr_end = 0;
	t->status = 0;
	t->content_length = -1;
	t->chunked = false;
	rc = uv_tcp_init(loop, &t->tcp);
	if (rc < 0) {
		probe_end(t, false, "connect failed: %s", uv_strerror(rc));
		return;
	}
	t->tcp.data = t;
	t->tcp_open = true;
	t->nhandles++;
	t->conn.data = t;
	rc = uv_tcp_connect(&t->conn, &t->tcp, (const struct sockaddr *)&t->check.addr, connect_cb);
	if (rc < 0) {
		if (rc == UV_ECONNREFUSED)
			probe_end(t, false, "connect refused");
		else
			probe_end(t, false, "connect failed: %s", uv_strerror(rc));
	}
}

int health_ca_check(const char *ca_file)
{
	SSL_CTX *ctx = health_tls_ctx_new(ca_file);
	if (!ctx)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

SSL_CTX *health_tls_ctx_new(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			 : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		/*
		 * OpenSSL 3 queues a failed fopen() as a system error (its
		 * reason code is the errno, its reason string NULL) followed
		 * by its own errors: the system error, if any, says why.
		 */
		const char *why = "no certificate found", *lib = NULL;
		int sys = 0;
		unsigned long e;
		while ((e = ERR_get_error()) != 0) {
			if (ERR_GET_LIB(e) == ERR_LIB_SYS && ERR_GET_REASON(e) > 0)
				sys = ERR_GET_REASON(e);
			else if (!lib)
				lib = ERR_reason_error_string(e);
		}
		if (sys)
			why = strerror(sys);
		else if (lib)
			why = lib;
		log_err("health: cannot load CA certificates from %s: %s",
			ca_file ? ca_file : "the system store", why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * Each target keeps its own last session (tls_new_session); OpenSSL's
	 * cache, keyed by nothing we control, stays empty.
	 */
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
	return ctx;
}
