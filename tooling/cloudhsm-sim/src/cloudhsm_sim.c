/*
 * cloudhsm-sim: a PKCS#11 module that behaves like the AWS CloudHSM Client SDK 5 library
 * (libcloudhsm_pkcs11.so) at the PKCS#11 boundary, on top of SoftHSM2.
 *
 * It loads the backend module (SoftHSM; CLOUDHSM_SIM_BACKEND overrides the path), forwards every
 * call through a table of wrappers, and enforces the SDK 5 behaviours that break generic PKCS#11
 * code (AWS "Known issues for the PKCS #11 library", "Supported mechanisms" annotation [1],
 * "Authenticate to the PKCS #11 library"):
 *
 *   - C_OpenSession without CKF_RW_SESSION          -> CKR_FUNCTION_FAILED (no read-only sessions)
 *   - C_Login PIN must be "<CU user>:<password>"     -> otherwise CKR_PIN_INCORRECT; the password
 *                                                       is the backend's user PIN
 *   - CKM_AES_GCM encrypt: the HSM makes the IV      -> the caller passes a zeroed 12-byte pIv
 *                                                       (non-zero or empty -> CKR_MECHANISM_PARAM_INVALID);
 *                                                       the generated IV is written into the
 *                                                       caller's pIv buffer by C_Encrypt
 *   - CKM_AES_GCM is single-part only                -> C_EncryptUpdate/Final, C_DecryptUpdate/Final
 *                                                       -> CKR_MECHANISM_INVALID
 *   - CKM_AES_GCM data over 16 KiB per call          -> CKR_DATA_LEN_RANGE (encrypt) /
 *                                                       CKR_ENCRYPTED_DATA_LEN_RANGE (decrypt)
 *   - duplicate CKA_ID for a new key of one class    -> CKR_ATTRIBUTE_VALUE_INVALID
 *   - CKA_EXTRACTABLE defaults to TRUE for new keys (PKCS#11 default; CloudHSM attribute table)
 *   - 64-bit slot ids: token i (sorted by label, serial) is slot 0x2000000000000001 + i
 *   - C_InitToken, C_InitPIN, C_SetPIN, operation state, C_WaitForSlotEvent: not supported
 *
 * GCM: C_EncryptInit checks the parameters, draws the IV from the backend's RNG and starts the
 * backend operation with it; C_Encrypt writes that IV into the caller's pIv buffer once it
 * succeeded. A refused single-part call, or a multi-part attempt, ends the backend operation, so
 * the session is clean for the next C_*Init (PKCS#11: a failed C_Encrypt terminates the operation).
 *
 * Test control channel (not a CloudHSM feature): C_SeedRandom with a seed that starts with
 * "cloudhsm-sim:" is a command instead of entropy:
 *   "cloudhsm-sim:fail-gcm <n> <rv>"  the next n GCM C_Encrypt/C_Decrypt calls fail with rv
 *                                     (decimal or 0x hex), as a lost HSM connection would
 *   "cloudhsm-sim:drop-sessions"      closes every session in the backend (connection to the
 *                                     cluster lost: handles invalid, login gone)
 *   "cloudhsm-sim:reset"              clears pending faults
 */
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pkcs11.h>

#define EXPORT __attribute__((visibility("default")))

#define SIM_SLOT_BASE 0x2000000000000001UL
#define SIM_GCM_IV_BYTES 12
#define SIM_GCM_MAX_DATA 16384UL
#define SIM_MAX_SLOTS 64
#define SIM_CONTROL_PREFIX "cloudhsm-sim:"

static const char *DEFAULT_BACKEND = "/usr/lib/softhsm/libsofthsm2.so";

static CK_FUNCTION_LIST_PTR B = NULL; /* backend function list */
static void *backend_handle = NULL;
static int sim_initialized = 0;
static int owns_backend_init = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------------------------------
 * Slots: backend slot ids <-> CloudHSM-style 64-bit ids. */

typedef struct {
  CK_SLOT_ID backend;
  char label[33];
  char serial[17];
} slot_entry;

static slot_entry slots[SIM_MAX_SLOTS];
static CK_ULONG slot_count = 0;
/* The backend's slot list the map was built from. */
static CK_SLOT_ID backend_seen[SIM_MAX_SLOTS];
static CK_ULONG backend_seen_count = (CK_ULONG)-1;

static int cmp_slot(const void *a, const void *b) {
  const slot_entry *x = a, *y = b;
  int c = strcmp(x->label, y->label);
  return c != 0 ? c : strcmp(x->serial, y->serial);
}

static void copy_padded(char *dst, const CK_UTF8CHAR *src, size_t n) {
  memcpy(dst, src, n);
  dst[n] = 0;
  for (size_t i = n; i > 0 && dst[i - 1] == ' '; i--) dst[i - 1] = 0;
}

/* Rebuilds the slot map from the backend's initialised tokens. Caller holds the lock. */
static CK_RV rebuild_slots(void) {
  CK_ULONG n = 0;
  CK_RV rv = B->C_GetSlotList(CK_TRUE, NULL, &n);
  if (rv != CKR_OK) return rv;
  CK_SLOT_ID *ids = calloc(n ? n : 1, sizeof(CK_SLOT_ID));
  if (ids == NULL) return CKR_HOST_MEMORY;
  rv = B->C_GetSlotList(CK_TRUE, ids, &n);
  if (rv != CKR_OK) {
    free(ids);
    return rv;
  }
  /* Same backend slots as last time: the map stands (tokens are created outside the process). */
  if (n == backend_seen_count && n <= SIM_MAX_SLOTS && memcmp(ids, backend_seen, n * sizeof(CK_SLOT_ID)) == 0) {
    free(ids);
    return CKR_OK;
  }
  backend_seen_count = n <= SIM_MAX_SLOTS ? n : (CK_ULONG)-1;
  if (n <= SIM_MAX_SLOTS) memcpy(backend_seen, ids, n * sizeof(CK_SLOT_ID));
  slot_count = 0;
  for (CK_ULONG i = 0; i < n && slot_count < SIM_MAX_SLOTS; i++) {
    CK_TOKEN_INFO info;
    if (B->C_GetTokenInfo(ids[i], &info) != CKR_OK) continue;
    /* SoftHSM always offers one empty slot for the next token; CloudHSM has no such slot. */
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    slot_entry *e = &slots[slot_count++];
    e->backend = ids[i];
    copy_padded(e->label, info.label, sizeof(info.label));
    copy_padded(e->serial, info.serialNumber, sizeof(info.serialNumber));
  }
  free(ids);
  qsort(slots, slot_count, sizeof(slot_entry), cmp_slot);
  return CKR_OK;
}

static CK_RV to_backend_slot(CK_SLOT_ID sim, CK_SLOT_ID *out) {
  pthread_mutex_lock(&lock);
  if (slot_count == 0) rebuild_slots();
  CK_RV rv = CKR_SLOT_ID_INVALID;
  if (sim >= SIM_SLOT_BASE && sim - SIM_SLOT_BASE < slot_count) {
    *out = slots[sim - SIM_SLOT_BASE].backend;
    rv = CKR_OK;
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_SLOT_ID to_sim_slot(CK_SLOT_ID backend) {
  CK_SLOT_ID out = backend;
  pthread_mutex_lock(&lock);
  for (int pass = 0; pass < 2; pass++) {
    for (CK_ULONG i = 0; i < slot_count; i++) {
      if (slots[i].backend == backend) {
        out = SIM_SLOT_BASE + i;
        pthread_mutex_unlock(&lock);
        return out;
      }
    }
    if (pass == 0) rebuild_slots();
  }
  pthread_mutex_unlock(&lock);
  return out;
}

/* ---------------------------------------------------------------------------------------------
 * Sessions and the pending single-part GCM request of each. */

enum { OP_NONE = 0, OP_GCM_ENCRYPT = 1, OP_GCM_DECRYPT = 2 };

/* A GCM operation started in the backend, waiting for its single-part call. */
typedef struct {
  int op;
  CK_BYTE_PTR iv_out; /* encrypt: the caller's pIv, written after C_Encrypt */
  CK_BYTE iv[SIM_GCM_IV_BYTES]; /* encrypt: the IV the "HSM" generated */
  CK_ULONG tag_bits;
} gcm_request;

typedef struct {
  CK_SESSION_HANDLE handle;
  CK_SLOT_ID sim_slot;
  gcm_request gcm;
} session_entry;

static session_entry **sessions = NULL;
static size_t session_count = 0, session_cap = 0;

/* Fault injection (control channel). */
static unsigned long fail_gcm_count = 0;
static CK_RV fail_gcm_rv = CKR_OK;

static void clear_request(gcm_request *r) { memset(r, 0, sizeof(*r)); }

/* Caller holds the lock. */
static session_entry *find_session(CK_SESSION_HANDLE h) {
  for (size_t i = 0; i < session_count; i++)
    if (sessions[i]->handle == h) return sessions[i];
  return NULL;
}

static CK_RV add_session(CK_SESSION_HANDLE h, CK_SLOT_ID sim_slot) {
  session_entry *e = calloc(1, sizeof(session_entry));
  if (e == NULL) return CKR_HOST_MEMORY;
  e->handle = h;
  e->sim_slot = sim_slot;
  pthread_mutex_lock(&lock);
  session_entry *old = find_session(h);
  if (old != NULL) {
    /* The backend reused a handle number of a session closed behind our back. */
    clear_request(&old->gcm);
    old->sim_slot = sim_slot;
    free(e);
    pthread_mutex_unlock(&lock);
    return CKR_OK;
  }
  if (session_count == session_cap) {
    size_t cap = session_cap ? session_cap * 2 : 32;
    session_entry **grown = realloc(sessions, cap * sizeof(*sessions));
    if (grown == NULL) {
      pthread_mutex_unlock(&lock);
      free(e);
      return CKR_HOST_MEMORY;
    }
    sessions = grown;
    session_cap = cap;
  }
  sessions[session_count++] = e;
  pthread_mutex_unlock(&lock);
  return CKR_OK;
}

/* Caller holds the lock. slot == 0 removes every session. */
static void remove_sessions(int all, CK_SLOT_ID sim_slot, CK_SESSION_HANDLE h) {
  size_t kept = 0;
  for (size_t i = 0; i < session_count; i++) {
    session_entry *e = sessions[i];
    int drop = all ? (sim_slot == 0 || e->sim_slot == sim_slot) : e->handle == h;
    if (drop) {
      clear_request(&e->gcm);
      free(e);
    } else {
      sessions[kept++] = e;
    }
  }
  session_count = kept;
}

/* ---------------------------------------------------------------------------------------------
 * Library */

static CK_RV load_backend(void) {
  if (B != NULL) return CKR_OK;
  const char *path = getenv("CLOUDHSM_SIM_BACKEND");
  if (path == NULL || *path == 0) path = DEFAULT_BACKEND;
  backend_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (backend_handle == NULL) {
    fprintf(stderr, "cloudhsm-sim: cannot load the backend PKCS#11 module %s: %s\n", path, dlerror());
    return CKR_GENERAL_ERROR;
  }
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(backend_handle, "C_GetFunctionList");
  if (get == NULL || get(&B) != CKR_OK || B == NULL) {
    fprintf(stderr, "cloudhsm-sim: %s has no usable C_GetFunctionList\n", path);
    B = NULL;
    return CKR_GENERAL_ERROR;
  }
  return CKR_OK;
}

#define NEED_INIT()                                   \
  do {                                                \
    if (!sim_initialized) return CKR_CRYPTOKI_NOT_INITIALIZED; \
  } while (0)

static CK_RV sim_Initialize(CK_VOID_PTR args) {
  pthread_mutex_lock(&lock);
  if (sim_initialized) {
    pthread_mutex_unlock(&lock);
    return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  }
  CK_RV rv = load_backend();
  if (rv == CKR_OK) {
    rv = B->C_Initialize(args);
    if (rv == CKR_OK) {
      owns_backend_init = 1;
    } else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      /* Another component of this process uses the backend directly: share it, never finalize it. */
      owns_backend_init = 0;
      rv = CKR_OK;
    }
  }
  if (rv == CKR_OK) {
    sim_initialized = 1;
    slot_count = 0;
    backend_seen_count = (CK_ULONG)-1;
    fail_gcm_count = 0;
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_RV sim_Finalize(CK_VOID_PTR reserved) {
  pthread_mutex_lock(&lock);
  if (!sim_initialized) {
    pthread_mutex_unlock(&lock);
    return CKR_CRYPTOKI_NOT_INITIALIZED;
  }
  remove_sessions(1, 0, 0);
  sim_initialized = 0;
  slot_count = 0;
  backend_seen_count = (CK_ULONG)-1;
  CK_RV rv = owns_backend_init ? B->C_Finalize(reserved) : CKR_OK;
  owns_backend_init = 0;
  pthread_mutex_unlock(&lock);
  return rv;
}

static void pad_copy(CK_UTF8CHAR *dst, size_t n, const char *src) {
  memset(dst, ' ', n);
  size_t len = strlen(src);
  memcpy(dst, src, len < n ? len : n);
}

static CK_RV sim_GetInfo(CK_INFO_PTR info) {
  NEED_INIT();
  CK_RV rv = B->C_GetInfo(info);
  if (rv != CKR_OK) return rv;
  pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "cloudhsm-sim");
  pad_copy(info->libraryDescription, sizeof(info->libraryDescription), "CloudHSM SDK 5 emulation");
  info->cryptokiVersion.major = 2;
  info->cryptokiVersion.minor = 40;
  return CKR_OK;
}

static CK_RV sim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

/* ---------------------------------------------------------------------------------------------
 * Slots and tokens */

static CK_RV sim_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  (void)present; /* every emulated slot holds its (initialised) token */
  NEED_INIT();
  if (count == NULL) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&lock);
  CK_RV rv = rebuild_slots();
  if (rv == CKR_OK) {
    if (list == NULL) {
      *count = slot_count;
    } else if (*count < slot_count) {
      *count = slot_count;
      rv = CKR_BUFFER_TOO_SMALL;
    } else {
      for (CK_ULONG i = 0; i < slot_count; i++) list[i] = SIM_SLOT_BASE + i;
      *count = slot_count;
    }
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_RV sim_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
  NEED_INIT();
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  return rv != CKR_OK ? rv : B->C_GetSlotInfo(b, info);
}

static CK_RV sim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  NEED_INIT();
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  return rv != CKR_OK ? rv : B->C_GetTokenInfo(b, info);
}

static CK_RV sim_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
  NEED_INIT();
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  return rv != CKR_OK ? rv : B->C_GetMechanismList(b, list, count);
}

static CK_RV sim_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
  NEED_INIT();
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  return rv != CKR_OK ? rv : B->C_GetMechanismInfo(b, type, info);
}

/* User and token management happens in cloudhsm-cli, not through PKCS#11. */
static CK_RV sim_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label) {
  (void)slot, (void)pin, (void)len, (void)label;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV sim_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  (void)h, (void)pin, (void)len;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV sim_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG ol, CK_UTF8CHAR_PTR n, CK_ULONG nl) {
  (void)h, (void)o, (void)ol, (void)n, (void)nl;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---------------------------------------------------------------------------------------------
 * Sessions and login */

static CK_RV sim_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                             CK_SESSION_HANDLE_PTR out) {
  NEED_INIT();
  /* SDK 5: "ReadOnly cannot be created by Hsm1 provider" -> C_OpenSession returns 0x6. */
  if ((flags & CKF_RW_SESSION) == 0) return CKR_FUNCTION_FAILED;
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  if (rv != CKR_OK) return rv;
  rv = B->C_OpenSession(b, flags, app, notify, out);
  if (rv != CKR_OK) return rv;
  rv = add_session(*out, slot);
  if (rv != CKR_OK) B->C_CloseSession(*out);
  return rv;
}

static CK_RV sim_CloseSession(CK_SESSION_HANDLE h) {
  NEED_INIT();
  CK_RV rv = B->C_CloseSession(h);
  pthread_mutex_lock(&lock);
  remove_sessions(0, 0, h);
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_RV sim_CloseAllSessions(CK_SLOT_ID slot) {
  NEED_INIT();
  CK_SLOT_ID b;
  CK_RV rv = to_backend_slot(slot, &b);
  if (rv != CKR_OK) return rv;
  rv = B->C_CloseAllSessions(b);
  pthread_mutex_lock(&lock);
  remove_sessions(1, slot, 0);
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_RV sim_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info) {
  NEED_INIT();
  CK_RV rv = B->C_GetSessionInfo(h, info);
  if (rv == CKR_OK && info != NULL) info->slotID = to_sim_slot(info->slotID);
  return rv;
}

static CK_RV sim_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG_PTR l) {
  (void)h, (void)s, (void)l;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV sim_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG l, CK_OBJECT_HANDLE e,
                                   CK_OBJECT_HANDLE a) {
  (void)h, (void)s, (void)l, (void)e, (void)a;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV sim_Login(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  NEED_INIT();
  /* SDK 5 PIN: "<CU user name>:<password>"; a PIN without both parts cannot authenticate. */
  if (pin == NULL) return CKR_PIN_INCORRECT;
  CK_ULONG colon = 0;
  while (colon < len && pin[colon] != ':') colon++;
  if (colon == 0 || colon >= len - 1) return CKR_PIN_INCORRECT;
  const char *user = getenv("CLOUDHSM_SIM_USER");
  if (user != NULL && *user != 0 && (strlen(user) != colon || memcmp(user, pin, colon) != 0))
    return CKR_PIN_INCORRECT;
  return B->C_Login(h, type, pin + colon + 1, len - colon - 1);
}

static CK_RV sim_Logout(CK_SESSION_HANDLE h) {
  NEED_INIT();
  return B->C_Logout(h);
}

/* ---------------------------------------------------------------------------------------------
 * Objects: CKA_ID must be unique per object class; CKA_EXTRACTABLE defaults to TRUE. */

static CK_ATTRIBUTE_PTR find_attr(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ATTRIBUTE_TYPE type) {
  for (CK_ULONG i = 0; i < n; i++)
    if (t != NULL && t[i].type == type) return &t[i];
  return NULL;
}

static CK_RV check_unique_id(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_CLASS dflt) {
  CK_ATTRIBUTE_PTR id = find_attr(t, n, CKA_ID);
  if (id == NULL || id->pValue == NULL || id->ulValueLen == 0) return CKR_OK;
  CK_OBJECT_CLASS cls = dflt;
  CK_ATTRIBUTE_PTR c = find_attr(t, n, CKA_CLASS);
  if (c != NULL && c->pValue != NULL && c->ulValueLen == sizeof(CK_OBJECT_CLASS))
    memcpy(&cls, c->pValue, sizeof(cls));
  CK_ATTRIBUTE q[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id->pValue, id->ulValueLen}};
  CK_RV rv = B->C_FindObjectsInit(h, q, 2);
  if (rv != CKR_OK) return rv;
  CK_OBJECT_HANDLE found;
  CK_ULONG count = 0;
  rv = B->C_FindObjects(h, &found, 1, &count);
  B->C_FindObjectsFinal(h);
  if (rv != CKR_OK) return rv;
  return count > 0 ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK;
}

/* A copy of the template with CKA_EXTRACTABLE = TRUE added when the caller left it out. */
static CK_ATTRIBUTE_PTR with_default_extractable(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ULONG *out_n) {
  static CK_BBOOL yes = CK_TRUE;
  *out_n = n;
  if (find_attr(t, n, CKA_EXTRACTABLE) != NULL) return t;
  CK_ATTRIBUTE_PTR copy = malloc((n + 1) * sizeof(CK_ATTRIBUTE));
  if (copy == NULL) return NULL;
  if (n > 0) memcpy(copy, t, n * sizeof(CK_ATTRIBUTE));
  copy[n].type = CKA_EXTRACTABLE;
  copy[n].pValue = &yes;
  copy[n].ulValueLen = sizeof(yes);
  *out_n = n + 1;
  return copy;
}

static CK_RV sim_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o) {
  NEED_INIT();
  CK_RV rv = check_unique_id(h, t, n, CKO_DATA);
  return rv != CKR_OK ? rv : B->C_CreateObject(h, t, n, o);
}

static CK_RV sim_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE src, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                            CK_OBJECT_HANDLE_PTR o) {
  NEED_INIT();
  return B->C_CopyObject(h, src, t, n, o);
}

static CK_RV sim_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o) {
  NEED_INIT();
  return B->C_DestroyObject(h, o);
}

static CK_RV sim_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR s) {
  NEED_INIT();
  return B->C_GetObjectSize(h, o, s);
}

static CK_RV sim_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
  NEED_INIT();
  return B->C_GetAttributeValue(h, o, t, n);
}

static CK_RV sim_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
  NEED_INIT();
  return B->C_SetAttributeValue(h, o, t, n);
}

static CK_RV sim_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
  NEED_INIT();
  return B->C_FindObjectsInit(h, t, n);
}

static CK_RV sim_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n) {
  NEED_INIT();
  return B->C_FindObjects(h, o, max, n);
}

static CK_RV sim_FindObjectsFinal(CK_SESSION_HANDLE h) {
  NEED_INIT();
  return B->C_FindObjectsFinal(h);
}

static CK_RV sim_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                             CK_OBJECT_HANDLE_PTR o) {
  NEED_INIT();
  CK_RV rv = check_unique_id(h, t, n, CKO_SECRET_KEY);
  if (rv != CKR_OK) return rv;
  CK_ULONG n2;
  CK_ATTRIBUTE_PTR t2 = with_default_extractable(t, n, &n2);
  if (t2 == NULL) return CKR_HOST_MEMORY;
  rv = B->C_GenerateKey(h, m, t2, n2, o);
  if (t2 != t) free(t2);
  return rv;
}

static CK_RV sim_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                                 CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR opub,
                                 CK_OBJECT_HANDLE_PTR opriv) {
  NEED_INIT();
  CK_RV rv = check_unique_id(h, pub, npub, CKO_PUBLIC_KEY);
  if (rv == CKR_OK) rv = check_unique_id(h, priv, npriv, CKO_PRIVATE_KEY);
  if (rv != CKR_OK) return rv;
  CK_ULONG n2;
  CK_ATTRIBUTE_PTR priv2 = with_default_extractable(priv, npriv, &n2);
  if (priv2 == NULL) return CKR_HOST_MEMORY;
  rv = B->C_GenerateKeyPair(h, m, pub, npub, priv2, n2, opub, opriv);
  if (priv2 != priv) free(priv2);
  return rv;
}

static CK_RV sim_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE k,
                         CK_BYTE_PTR out, CK_ULONG_PTR len) {
  NEED_INIT();
  return B->C_WrapKey(h, m, wk, k, out, len);
}

static CK_RV sim_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE uk, CK_BYTE_PTR w,
                           CK_ULONG wl, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o) {
  NEED_INIT();
  CK_RV rv = check_unique_id(h, t, n, CKO_SECRET_KEY);
  return rv != CKR_OK ? rv : B->C_UnwrapKey(h, m, uk, w, wl, t, n, o);
}

static CK_RV sim_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR t,
                           CK_ULONG n, CK_OBJECT_HANDLE_PTR o) {
  NEED_INIT();
  CK_RV rv = check_unique_id(h, t, n, CKO_SECRET_KEY);
  return rv != CKR_OK ? rv : B->C_DeriveKey(h, m, base, t, n, o);
}

/* ---------------------------------------------------------------------------------------------
 * AES-GCM, CloudHSM style */

/* Checks CK_GCM_PARAMS the way SDK 5 does. `encrypt`: the IV must be all zero (the HSM makes it). */
static CK_RV check_gcm_params(CK_MECHANISM_PTR m, int encrypt) {
  if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_GCM_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
  CK_GCM_PARAMS *p = (CK_GCM_PARAMS *)m->pParameter;
  /* SDK 5: "Expected 'ulIvBits' or 'ulIvLen' to be non-zero" for an empty IV. */
  if (p->pIv == NULL || p->ulIvLen != SIM_GCM_IV_BYTES) return CKR_MECHANISM_PARAM_INVALID;
  /* ulIvBits: 0 (AWS samples) or the IV length in bits; anything else is uninitialised memory. */
  if (p->ulIvBits != 0 && p->ulIvBits != SIM_GCM_IV_BYTES * 8) return CKR_MECHANISM_PARAM_INVALID;
  if (p->ulTagBits < 96 || p->ulTagBits > 128 || p->ulTagBits % 8 != 0) return CKR_MECHANISM_PARAM_INVALID;
  if (p->ulAADLen > 0 && p->pAAD == NULL) return CKR_MECHANISM_PARAM_INVALID;
  if (encrypt) {
    /* SDK 5: "Iv invalid. Reason: Expect IV to be all 0". */
    for (CK_ULONG i = 0; i < p->ulIvLen; i++)
      if (p->pIv[i] != 0) return CKR_MECHANISM_PARAM_INVALID;
  }
  return CKR_OK;
}

/*
 * Ends the backend's operation without a result (a refused single-part call, a multi-part
 * attempt): PKCS#11 says a failed C_Encrypt/C_Decrypt terminates the operation, and SoftHSM
 * finishes a GCM operation with its Final call.
 */
static void end_backend_op(CK_SESSION_HANDLE h, int op) {
  CK_BYTE sink[64];
  CK_ULONG len = sizeof(sink);
  if (op == OP_GCM_ENCRYPT) B->C_EncryptFinal(h, sink, &len);
  else B->C_DecryptFinal(h, sink, &len);
  memset(sink, 0, sizeof(sink));
}

/* Records the started operation; the session must be one the sim opened. */
static CK_RV remember(CK_SESSION_HANDLE h, const gcm_request *r) {
  pthread_mutex_lock(&lock);
  session_entry *s = find_session(h);
  if (s != NULL) s->gcm = *r;
  pthread_mutex_unlock(&lock);
  return s != NULL ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

/* The pending GCM operation of kind `op` on this session, taken out of the table (or op 0). */
static gcm_request take(CK_SESSION_HANDLE h, int op) {
  gcm_request r;
  memset(&r, 0, sizeof(r));
  pthread_mutex_lock(&lock);
  session_entry *s = find_session(h);
  if (s != NULL && s->gcm.op == op) {
    r = s->gcm;
    clear_request(&s->gcm);
  }
  pthread_mutex_unlock(&lock);
  return r;
}

/* Puts an operation back (a size query or a too-small buffer leaves it active). */
static void put_back(CK_SESSION_HANDLE h, const gcm_request *r) { remember(h, r); }

/* An injected fault for this GCM call, if one is pending (control channel). */
static CK_RV take_fault(void) {
  CK_RV rv = CKR_OK;
  pthread_mutex_lock(&lock);
  if (fail_gcm_count > 0) {
    fail_gcm_count--;
    rv = fail_gcm_rv;
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

static CK_RV sim_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  NEED_INIT();
  if (m == NULL || m->mechanism != CKM_AES_GCM) return B->C_EncryptInit(h, m, key);
  CK_RV rv = check_gcm_params(m, 1);
  if (rv != CKR_OK) return rv;
  CK_GCM_PARAMS *p = (CK_GCM_PARAMS *)m->pParameter;
  gcm_request r;
  memset(&r, 0, sizeof(r));
  /* The HSM's IV, from the HSM's RNG; the caller sees it only after the C_Encrypt that uses it. */
  rv = B->C_GenerateRandom(h, r.iv, sizeof(r.iv));
  if (rv != CKR_OK) return rv;
  CK_GCM_PARAMS bp = {r.iv, sizeof(r.iv), sizeof(r.iv) * 8, p->pAAD, p->ulAADLen, p->ulTagBits};
  CK_MECHANISM bm = {CKM_AES_GCM, &bp, sizeof(bp)};
  rv = B->C_EncryptInit(h, &bm, key);
  if (rv != CKR_OK) return rv;
  r.op = OP_GCM_ENCRYPT;
  r.iv_out = p->pIv;
  r.tag_bits = p->ulTagBits;
  rv = remember(h, &r);
  if (rv != CKR_OK) end_backend_op(h, OP_GCM_ENCRYPT);
  return rv;
}

static CK_RV sim_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len) {
  NEED_INIT();
  gcm_request r = take(h, OP_GCM_ENCRYPT);
  if (r.op == OP_NONE) return B->C_Encrypt(h, data, len, out, out_len);
  CK_ULONG need = len + r.tag_bits / 8;
  CK_RV rv = out_len == NULL ? CKR_ARGUMENTS_BAD : take_fault();
  if (rv == CKR_OK && len > SIM_GCM_MAX_DATA) rv = CKR_DATA_LEN_RANGE;
  if (rv != CKR_OK) {
    end_backend_op(h, OP_GCM_ENCRYPT);
    return rv;
  }
  if (out == NULL || *out_len < need) {
    /* Size query or too small a buffer: the operation stays active. */
    *out_len = need;
    put_back(h, &r);
    return out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  rv = B->C_Encrypt(h, data, len, out, out_len);
  if (rv == CKR_OK) memcpy(r.iv_out, r.iv, sizeof(r.iv));
  return rv;
}

/* SDK 5 has no multi-part GCM: the attempt fails and ends the operation (other mechanisms are
 * forwarded). */
#define GCM_SINGLE_PART_ONLY(name, gcm_op, decl, args)           \
  static CK_RV sim_##name decl {                                 \
    NEED_INIT();                                                 \
    if (take(h, gcm_op).op == OP_NONE) return B->C_##name args;  \
    end_backend_op(h, gcm_op);                                   \
    return CKR_MECHANISM_INVALID;                                \
  }

GCM_SINGLE_PART_ONLY(EncryptUpdate, OP_GCM_ENCRYPT,
                     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
                     (h, d, l, o, ol))
GCM_SINGLE_PART_ONLY(EncryptFinal, OP_GCM_ENCRYPT, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
                     (h, o, ol))

static CK_RV sim_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  NEED_INIT();
  if (m == NULL || m->mechanism != CKM_AES_GCM) return B->C_DecryptInit(h, m, key);
  CK_RV rv = check_gcm_params(m, 0);
  if (rv != CKR_OK) return rv;
  CK_GCM_PARAMS *p = (CK_GCM_PARAMS *)m->pParameter;
  CK_GCM_PARAMS bp = {p->pIv, p->ulIvLen, p->ulIvLen * 8, p->pAAD, p->ulAADLen, p->ulTagBits};
  CK_MECHANISM bm = {CKM_AES_GCM, &bp, sizeof(bp)};
  rv = B->C_DecryptInit(h, &bm, key);
  if (rv != CKR_OK) return rv;
  gcm_request r;
  memset(&r, 0, sizeof(r));
  r.op = OP_GCM_DECRYPT;
  r.tag_bits = p->ulTagBits;
  rv = remember(h, &r);
  if (rv != CKR_OK) end_backend_op(h, OP_GCM_DECRYPT);
  return rv;
}

static CK_RV sim_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len) {
  NEED_INIT();
  gcm_request r = take(h, OP_GCM_DECRYPT);
  if (r.op == OP_NONE) return B->C_Decrypt(h, data, len, out, out_len);
  CK_ULONG tag = r.tag_bits / 8;
  CK_RV rv = out_len == NULL ? CKR_ARGUMENTS_BAD : take_fault();
  if (rv == CKR_OK && (len < tag || len - tag > SIM_GCM_MAX_DATA)) rv = CKR_ENCRYPTED_DATA_LEN_RANGE;
  if (rv != CKR_OK) {
    end_backend_op(h, OP_GCM_DECRYPT);
    return rv;
  }
  /* SoftHSM wants room for the whole input (it decrypts into the buffer before checking the tag). */
  if (out == NULL || *out_len < len) {
    *out_len = len;
    put_back(h, &r);
    return out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  return B->C_Decrypt(h, data, len, out, out_len);
}

GCM_SINGLE_PART_ONLY(DecryptUpdate, OP_GCM_DECRYPT,
                     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
                     (h, d, l, o, ol))
GCM_SINGLE_PART_ONLY(DecryptFinal, OP_GCM_DECRYPT, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
                     (h, o, ol))

/* ---------------------------------------------------------------------------------------------
 * Everything else is forwarded unchanged. */

#define FORWARD(name, decl, args) \
  static CK_RV sim_##name decl {  \
    NEED_INIT();                  \
    return B->C_##name args;      \
  }

FORWARD(DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m), (h, m))
FORWARD(Digest, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FORWARD(DigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FORWARD(DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k), (h, k))
FORWARD(DigestFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FORWARD(SignInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
FORWARD(Sign, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, d, l, o, ol))
FORWARD(SignUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FORWARD(SignFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol), (h, o, ol))
FORWARD(SignRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
FORWARD(SignRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, d, l, o, ol))
FORWARD(VerifyInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
FORWARD(Verify, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR s, CK_ULONG sl), (h, d, l, s, sl))
FORWARD(VerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l), (h, d, l))
FORWARD(VerifyFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl), (h, s, sl))
FORWARD(VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
FORWARD(VerifyRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, s, sl, o, ol))
FORWARD(DigestEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, d, l, o, ol))
FORWARD(DecryptDigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, d, l, o, ol))
FORWARD(SignEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, d, l, o, ol))
FORWARD(DecryptVerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG l, CK_BYTE_PTR o, CK_ULONG_PTR ol),
        (h, d, l, o, ol))
FORWARD(GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG l), (h, o, l))
FORWARD(GetFunctionStatus, (CK_SESSION_HANDLE h), (h))
FORWARD(CancelFunction, (CK_SESSION_HANDLE h), (h))

static CK_RV sim_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved) {
  (void)flags, (void)slot, (void)reserved;
  NEED_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---------------------------------------------------------------------------------------------
 * Test control channel through C_SeedRandom (see the file comment). */

static CK_RV control(const char *cmd) {
  unsigned long n = 0;
  char rv_text[32] = {0};
  if (sscanf(cmd, "fail-gcm %lu %31s", &n, rv_text) == 2) {
    char *end = NULL;
    unsigned long rv = strtoul(rv_text, &end, 0);
    if (end == rv_text || *end != 0) return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    fail_gcm_count = n;
    fail_gcm_rv = (CK_RV)rv;
    pthread_mutex_unlock(&lock);
    return CKR_OK;
  }
  if (strcmp(cmd, "reset") == 0) {
    pthread_mutex_lock(&lock);
    fail_gcm_count = 0;
    pthread_mutex_unlock(&lock);
    return CKR_OK;
  }
  if (strcmp(cmd, "drop-sessions") == 0) {
    pthread_mutex_lock(&lock);
    if (slot_count == 0) rebuild_slots();
    for (CK_ULONG i = 0; i < slot_count; i++) B->C_CloseAllSessions(slots[i].backend);
    remove_sessions(1, 0, 0);
    pthread_mutex_unlock(&lock);
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}

static CK_RV sim_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len) {
  NEED_INIT();
  size_t plen = strlen(SIM_CONTROL_PREFIX);
  if (seed != NULL && len > plen && len < 256 && memcmp(seed, SIM_CONTROL_PREFIX, plen) == 0) {
    char cmd[256];
    memcpy(cmd, seed + plen, len - plen);
    cmd[len - plen] = 0;
    return control(cmd);
  }
  return B->C_SeedRandom(h, seed, len);
}

/* ---------------------------------------------------------------------------------------------
 * Function list */

static CK_FUNCTION_LIST function_list = {
    {2, 40},
    sim_Initialize,
    sim_Finalize,
    sim_GetInfo,
    sim_GetFunctionList,
    sim_GetSlotList,
    sim_GetSlotInfo,
    sim_GetTokenInfo,
    sim_GetMechanismList,
    sim_GetMechanismInfo,
    sim_InitToken,
    sim_InitPIN,
    sim_SetPIN,
    sim_OpenSession,
    sim_CloseSession,
    sim_CloseAllSessions,
    sim_GetSessionInfo,
    sim_GetOperationState,
    sim_SetOperationState,
    sim_Login,
    sim_Logout,
    sim_CreateObject,
    sim_CopyObject,
    sim_DestroyObject,
    sim_GetObjectSize,
    sim_GetAttributeValue,
    sim_SetAttributeValue,
    sim_FindObjectsInit,
    sim_FindObjects,
    sim_FindObjectsFinal,
    sim_EncryptInit,
    sim_Encrypt,
    sim_EncryptUpdate,
    sim_EncryptFinal,
    sim_DecryptInit,
    sim_Decrypt,
    sim_DecryptUpdate,
    sim_DecryptFinal,
    sim_DigestInit,
    sim_Digest,
    sim_DigestUpdate,
    sim_DigestKey,
    sim_DigestFinal,
    sim_SignInit,
    sim_Sign,
    sim_SignUpdate,
    sim_SignFinal,
    sim_SignRecoverInit,
    sim_SignRecover,
    sim_VerifyInit,
    sim_Verify,
    sim_VerifyUpdate,
    sim_VerifyFinal,
    sim_VerifyRecoverInit,
    sim_VerifyRecover,
    sim_DigestEncryptUpdate,
    sim_DecryptDigestUpdate,
    sim_SignEncryptUpdate,
    sim_DecryptVerifyUpdate,
    sim_GenerateKey,
    sim_GenerateKeyPair,
    sim_WrapKey,
    sim_UnwrapKey,
    sim_DeriveKey,
    sim_SeedRandom,
    sim_GenerateRandom,
    sim_GetFunctionStatus,
    sim_CancelFunction,
    sim_WaitForSlotEvent,
};

static CK_RV sim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  if (list == NULL) return CKR_ARGUMENTS_BAD;
  *list = &function_list;
  return CKR_OK;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) { return sim_GetFunctionList(list); }
