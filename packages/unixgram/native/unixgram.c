/*
 * @bulwark/unixgram: AF_UNIX SOCK_DGRAM sockets for Node, which node:net and node:dgram do not
 * offer. Node-API only (no V8 or libuv headers), so one build serves every Node line (ABI-stable).
 *
 * Every socket is non-blocking: a send to a receiver whose queue is full fails with EAGAIN at once
 * instead of stalling the event loop; a receive with nothing queued returns null.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK: return "EAGAIN";
#endif
    case ENOBUFS: return "ENOBUFS";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOTCONN: return "ENOTCONN";
    case EPROTOTYPE: return "EPROTOTYPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case EADDRINUSE: return "EADDRINUSE";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EINTR: return "EINTR";
    case ENOTDIR: return "ENOTDIR";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error whose code is the errno's name and whose message says what failed. */
static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(e), errno_name(e));
  napi_throw_error(env, errno_name(e), msg);
  return NULL;
}

static int arg_fd(napi_env env, napi_value v, int *fd) {
  int32_t n;
  if (napi_get_value_int32(env, v, &n) != napi_ok || n < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a socket descriptor (a non-negative integer)");
    return 0;
  }
  *fd = n;
  return 1;
}

/* Fills addr from a JS string path; throws and returns 0 when it is not one or is too long. */
static int arg_path(napi_env env, napi_value v, struct sockaddr_un *addr) {
  size_t len = 0;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return 0;
  }
  if (len == 0 || len >= sizeof addr->sun_path) {
    throw_errno(env, "socket path is empty or longer than the 107 bytes AF_UNIX allows", ENAMETOOLONG);
    return 0;
  }
  napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &len);
  return 1;
}

static int new_socket(napi_env env) {
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) {
    throw_errno(env, "socket(AF_UNIX, SOCK_DGRAM)", errno);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "fcntl(O_NONBLOCK, FD_CLOEXEC)", e);
    return -1;
  }
  return fd;
}

static napi_value make_int(napi_env env, int n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

/* connect(path): a datagram socket whose every send goes to path. Returns its descriptor. */
static napi_value Connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_path(env, argv[0], &addr)) return NULL;
  int fd = new_socket(env);
  if (fd < 0) return NULL;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "connect", e);
  }
  return make_int(env, fd);
}

/* bind(path): a datagram socket receiving at path (the file must not exist yet). */
static napi_value Bind(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_path(env, argv[0], &addr)) return NULL;
  int fd = new_socket(env);
  if (fd < 0) return NULL;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  return make_int(env, fd);
}

/* send(fd, bytes): one datagram to the connected peer, whole or not at all; never blocks. */
static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value ab;
  size_t offset;
  bool is_ta = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !arg_fd(env, argv[0], &fd)) return NULL;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a Uint8Array or Buffer");
    return NULL;
  }
  ssize_t n;
  do {
    n = send(fd, data, length, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "send", errno);
  return make_int(env, (int)n);
}

/* recv(fd, max): the next datagram (a Buffer, cut at max bytes), or null when none is queued. */
static napi_value Recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  uint32_t max;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !arg_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &max) != napi_ok || max == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "max must be a positive integer");
    return NULL;
  }
  char *buf = malloc(max);
  if (buf == NULL) return throw_errno(env, "recv", ENOMEM);
  ssize_t n;
  do {
    n = recv(fd, buf, max, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, "recv", e);
  }
  napi_value out;
  void *copy;
  napi_create_buffer_copy(env, (size_t)n, buf, &copy, &out);
  free(buf);
  return out;
}

/* close(fd). */
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"connect", NULL, Connect, NULL, NULL, NULL, napi_default, NULL},
    {"bind", NULL, Bind, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
    {"recv", NULL, Recv, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
