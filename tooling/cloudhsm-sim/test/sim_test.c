/*
 * C-level tests of cloudhsm-sim: every emulated CloudHSM SDK 5 behaviour, called the way a C
 * application would (no Node, no pkcs11js in between).
 *
 * Usage: sim-test <path to libcloudhsm-sim.so> <token label> <CU user> <password>
 * The token must exist in the SoftHSM token directory named by SOFTHSM2_CONF (test.sh creates
 * one). Prints one "ok"/"not ok" line per check and a summary; exit status 0 only if all passed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pkcs11.h>

static int passed = 0, failed = 0;
static CK_FUNCTION_LIST_PTR F;

#define CHECK(cond, ...)                   \
  do {                                     \
    if (cond) {                            \
      passed++;                            \
      printf("ok - ");                     \
    } else {                               \
      failed++;                            \
      printf("not ok - ");                 \
    }                                      \
    printf(__VA_ARGS__);                   \
    printf("\n");                          \
  } while (0)

#define CHECK_RV(rv, want, what)                                                                   \
  do {                                                                                             \
    CK_RV got_ = (rv);                                                                             \
    CHECK(got_ == (want), "%s -> 0x%lx (want 0x%lx)", what, (unsigned long)got_, (unsigned long)(want)); \
  } while (0)

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
static CK_KEY_TYPE aes = CKK_AES;
static CK_ULONG key_len = 32;

static CK_RV gen_key(CK_SESSION_HANDLE s, const char *label, const char *id, int set_extractable,
                     CK_OBJECT_HANDLE *key) {
  CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
  CK_ATTRIBUTE t[12] = {
      {CKA_CLASS, &secret, sizeof(secret)},
      {CKA_KEY_TYPE, &aes, sizeof(aes)},
      {CKA_VALUE_LEN, &key_len, sizeof(key_len)},
      {CKA_TOKEN, &no, sizeof(no)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_LABEL, (void *)label, strlen(label)},
      {CKA_ID, (void *)id, strlen(id)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
  };
  CK_ULONG n = set_extractable ? 11 : 10;
  return F->C_GenerateKey(s, &m, t, n, key);
}

static CK_GCM_PARAMS gcm(CK_BYTE *iv, CK_ULONG iv_len, CK_BYTE *aad, CK_ULONG aad_len) {
  CK_GCM_PARAMS p = {iv, iv_len, 0, aad, aad_len, 128};
  return p;
}

static int all_zero(const CK_BYTE *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0) return 0;
  return 1;
}

static int seed(CK_SESSION_HANDLE s, const char *cmd) {
  return (int)F->C_SeedRandom(s, (CK_BYTE_PTR)cmd, strlen(cmd));
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <libcloudhsm-sim.so> <token label> <CU user> <password>\n", argv[0]);
    return 2;
  }
  const char *label = argv[2];
  char pin[256], bad_pin[256];
  snprintf(pin, sizeof(pin), "%s:%s", argv[3], argv[4]);
  snprintf(bad_pin, sizeof(bad_pin), "%s:%s-wrong", argv[3], argv[4]);

  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
  CHECK(get != NULL, "C_GetFunctionList is exported");
  if (get == NULL) return 1;
  CHECK_RV(get(&F), CKR_OK, "C_GetFunctionList");
  CHECK(F->version.major == 2 && F->version.minor == 40, "function list is PKCS#11 v2.40");

  CK_ULONG nslots = 0;
  CHECK_RV(F->C_GetSlotList(CK_TRUE, NULL, &nslots), CKR_CRYPTOKI_NOT_INITIALIZED,
           "C_GetSlotList before C_Initialize");
  CK_C_INITIALIZE_ARGS init = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
  CHECK_RV(F->C_Initialize(&init), CKR_OK, "C_Initialize with CKF_OS_LOCKING_OK");
  CHECK_RV(F->C_Initialize(&init), CKR_CRYPTOKI_ALREADY_INITIALIZED, "second C_Initialize");

  CK_INFO info;
  CHECK_RV(F->C_GetInfo(&info), CKR_OK, "C_GetInfo");
  CHECK(memcmp(info.manufacturerID, "cloudhsm-sim", 12) == 0, "C_GetInfo names cloudhsm-sim");

  /* Slots: 64-bit ids, token found by label, no empty SoftHSM slot. */
  CHECK_RV(F->C_GetSlotList(CK_TRUE, NULL, &nslots), CKR_OK, "C_GetSlotList (count)");
  CK_SLOT_ID slot_ids[8];
  CK_ULONG n = 8;
  CHECK_RV(F->C_GetSlotList(CK_TRUE, slot_ids, &n), CKR_OK, "C_GetSlotList");
  CHECK(n == nslots && n >= 1, "%lu slot(s), only initialised tokens", (unsigned long)n);
  CK_SLOT_ID slot = 0;
  for (CK_ULONG i = 0; i < n; i++) {
    CK_TOKEN_INFO ti;
    if (F->C_GetTokenInfo(slot_ids[i], &ti) == CKR_OK && strncmp((char *)ti.label, label, strlen(label)) == 0)
      slot = slot_ids[i];
  }
  CHECK(slot >= 0x2000000000000001UL, "token \"%s\" is in 64-bit slot %lu (0x%lx)", label, (unsigned long)slot,
        (unsigned long)slot);
  CHECK(slot_ids[0] == 0x2000000000000001UL, "first slot id is 0x2000000000000001 (2305843009213693953)");
  CK_TOKEN_INFO ti;
  CHECK_RV(F->C_GetTokenInfo(12345, &ti), CKR_SLOT_ID_INVALID, "C_GetTokenInfo of an unknown slot");

  /* Sessions: read-only refused. */
  CK_SESSION_HANDLE s = 0, s2 = 0;
  CHECK_RV(F->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_FUNCTION_FAILED,
           "C_OpenSession read-only (CKF_SERIAL_SESSION only)");
  CHECK_RV(F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK,
           "C_OpenSession read-write");
  CK_SESSION_INFO si;
  CHECK_RV(F->C_GetSessionInfo(s, &si), CKR_OK, "C_GetSessionInfo");
  CHECK(si.slotID == slot, "C_GetSessionInfo reports the 64-bit slot id");

  /* Login: "<user>:<password>". */
  CK_UTF8CHAR_PTR pw = (CK_UTF8CHAR_PTR)argv[4];
  CHECK_RV(F->C_Login(s, CKU_USER, pw, strlen(argv[4])), CKR_PIN_INCORRECT, "C_Login with the bare password");
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) ":x", 2), CKR_PIN_INCORRECT, "C_Login \":x\" (no user)");
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "user:", 5), CKR_PIN_INCORRECT,
           "C_Login \"user:\" (no password)");
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)bad_pin, strlen(bad_pin)), CKR_PIN_INCORRECT,
           "C_Login user:wrong-password");
  char other[300];
  snprintf(other, sizeof(other), "another_user:%s", argv[4]);
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)other, strlen(other)), CKR_PIN_INCORRECT,
           "C_Login with the right password for another CU (CLOUDHSM_SIM_USER set)");
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK, "C_Login user:password");

  /* Not offered by SDK 5 over PKCS#11. */
  CHECK_RV(F->C_InitToken(slot, (CK_UTF8CHAR_PTR) "x", 1, (CK_UTF8CHAR_PTR) "x"), CKR_FUNCTION_NOT_SUPPORTED,
           "C_InitToken");
  CHECK_RV(F->C_SetPIN(s, (CK_UTF8CHAR_PTR) "a", 1, (CK_UTF8CHAR_PTR) "b", 1), CKR_FUNCTION_NOT_SUPPORTED,
           "C_SetPIN");

  /* Keys: CKA_EXTRACTABLE defaults to TRUE; CKA_ID unique per class. */
  CK_OBJECT_HANDLE k_default, k_dup, key;
  CHECK_RV(gen_key(s, "k-default", "id-1", 0, &k_default), CKR_OK, "C_GenerateKey without CKA_EXTRACTABLE");
  CK_BBOOL extractable = CK_FALSE;
  CK_ATTRIBUTE q = {CKA_EXTRACTABLE, &extractable, sizeof(extractable)};
  CHECK_RV(F->C_GetAttributeValue(s, k_default, &q, 1), CKR_OK, "C_GetAttributeValue CKA_EXTRACTABLE");
  CHECK(extractable == CK_TRUE, "a key generated without CKA_EXTRACTABLE is extractable (CloudHSM default)");
  CHECK_RV(gen_key(s, "k-dup", "id-1", 1, &k_dup), CKR_ATTRIBUTE_VALUE_INVALID,
           "C_GenerateKey with a CKA_ID another secret key has");
  CHECK_RV(gen_key(s, "k-gcm", "id-2", 1, &key), CKR_OK, "C_GenerateKey with CKA_EXTRACTABLE false, new CKA_ID");
  CHECK_RV(F->C_GetAttributeValue(s, key, &q, 1), CKR_OK, "C_GetAttributeValue CKA_EXTRACTABLE");
  CHECK(extractable == CK_FALSE, "an explicit CKA_EXTRACTABLE false is kept");

  /* AES-GCM: HSM-generated IV. */
  CK_BYTE pt[64], ct[64 + 16], back[64 + 16];
  for (size_t i = 0; i < sizeof(pt); i++) pt[i] = (CK_BYTE)i;
  CK_BYTE aad[] = "bulwark";
  CK_BYTE iv[12] = {0}, iv2[12] = {0}, caller_iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  CK_GCM_PARAMS p = gcm(caller_iv, 12, aad, 7);
  CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_MECHANISM_PARAM_INVALID, "GCM C_EncryptInit with a caller IV");
  p = gcm(iv, 0, aad, 7);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_MECHANISM_PARAM_INVALID, "GCM C_EncryptInit with ulIvLen 0");
  p = gcm(iv, 12, aad, 7);
  p.ulIvBits = 0xdeadbeef;
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_MECHANISM_PARAM_INVALID, "GCM C_EncryptInit with garbage ulIvBits");

  p = gcm(iv, 12, aad, 7);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit with a zeroed 12-byte IV");
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OPERATION_ACTIVE, "second C_EncryptInit while one is pending");
  CK_ULONG out_len = 0;
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), NULL, &out_len), CKR_OK, "GCM C_Encrypt size query");
  CHECK(out_len == sizeof(pt) + 16, "size query answers data + 16-byte tag (%lu)", (unsigned long)out_len);
  CHECK(all_zero(iv, 12), "the IV buffer is still zero before the C_Encrypt that runs");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct, &out_len), CKR_OK, "GCM C_Encrypt");
  CHECK(out_len == sizeof(pt) + 16, "ciphertext || tag is %lu bytes", (unsigned long)out_len);
  CHECK(!all_zero(iv, 12), "the HSM wrote its IV into the caller's pIv buffer");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct, &out_len), CKR_OPERATION_NOT_INITIALIZED,
           "C_Encrypt again: the single-part call ended the operation");

  CK_BYTE ct2[64 + 16];
  p = gcm(iv2, 12, aad, 7);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (second value)");
  out_len = sizeof(ct2);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct2, &out_len), CKR_OK, "GCM C_Encrypt (second value)");
  CHECK(memcmp(iv, iv2, 12) != 0, "two encryptions get two different IVs");

  p = gcm(iv, 12, aad, 7);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit with the HSM's IV");
  CK_ULONG back_len = sizeof(back);
  CHECK_RV(F->C_Decrypt(s, ct, sizeof(ct), back, &back_len), CKR_OK, "GCM C_Decrypt");
  CHECK(back_len == sizeof(pt) && memcmp(back, pt, sizeof(pt)) == 0, "decrypt returns the plaintext");

  CK_BYTE wrong_aad[] = "bulwarK";
  p = gcm(iv, 12, wrong_aad, 7);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit with another AAD");
  back_len = sizeof(back);
  CK_RV rv = F->C_Decrypt(s, ct, sizeof(ct), back, &back_len);
  CHECK(rv != CKR_OK, "GCM C_Decrypt with another AAD fails (0x%lx)", (unsigned long)rv);

  /* Single-part only. */
  p = gcm(iv, 12, NULL, 0);
  memset(iv, 0, sizeof(iv));
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (multi-part attempt)");
  out_len = sizeof(ct);
  CHECK_RV(F->C_EncryptUpdate(s, pt, 16, ct, &out_len), CKR_MECHANISM_INVALID, "GCM C_EncryptUpdate");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct, &out_len), CKR_OPERATION_NOT_INITIALIZED,
           "C_Encrypt after the refused C_EncryptUpdate (operation ended)");
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (final attempt)");
  out_len = sizeof(ct);
  CHECK_RV(F->C_EncryptFinal(s, ct, &out_len), CKR_MECHANISM_INVALID, "GCM C_EncryptFinal");
  p = gcm(iv2, 12, aad, 7);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit (multi-part attempt)");
  back_len = sizeof(back);
  CHECK_RV(F->C_DecryptUpdate(s, ct2, 16, back, &back_len), CKR_MECHANISM_INVALID, "GCM C_DecryptUpdate");
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit after the refused update (session clean)");
  back_len = sizeof(back);
  CHECK_RV(F->C_Decrypt(s, ct2, sizeof(ct2), back, &back_len), CKR_OK, "GCM C_Decrypt (second value)");

  /* At most 16 KiB per GCM call. */
  size_t big = 16384 + 1;
  CK_BYTE *bpt = calloc(big, 1), *bct = calloc(big + 16, 1), *bback = calloc(big + 16, 1);
  memset(iv, 0, sizeof(iv));
  p = gcm(iv, 12, NULL, 0);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (16 KiB)");
  out_len = big + 16;
  CHECK_RV(F->C_Encrypt(s, bpt, 16384, bct, &out_len), CKR_OK, "GCM C_Encrypt of exactly 16384 bytes");
  CK_BYTE iv16[12];
  memcpy(iv16, iv, sizeof(iv16));
  p = gcm(iv16, 12, NULL, 0);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit (16 KiB)");
  back_len = big + 16;
  CHECK_RV(F->C_Decrypt(s, bct, 16384 + 16, bback, &back_len), CKR_OK, "GCM C_Decrypt of 16384 bytes + tag");
  memset(iv, 0, sizeof(iv));
  p = gcm(iv, 12, NULL, 0);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (16 KiB + 1)");
  out_len = big + 16;
  CHECK_RV(F->C_Encrypt(s, bpt, big, bct, &out_len), CKR_DATA_LEN_RANGE, "GCM C_Encrypt of 16385 bytes");
  CHECK(all_zero(iv, 12), "a refused C_Encrypt writes no IV");
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "C_EncryptInit after the refusal (operation ended)");
  CHECK_RV(F->C_EncryptFinal(s, ct, &out_len), CKR_MECHANISM_INVALID, "(cancel it)");
  p = gcm(iv2, 12, NULL, 0);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit (16 KiB + 1)");
  back_len = big + 16;
  CHECK_RV(F->C_Decrypt(s, bct, big + 16, bback, &back_len), CKR_ENCRYPTED_DATA_LEN_RANGE,
           "GCM C_Decrypt of 16385 bytes + tag");
  p = gcm(iv16, 12, NULL, 0);
  CHECK_RV(F->C_DecryptInit(s, &m, key), CKR_OK, "GCM C_DecryptInit after the refusal (operation ended)");
  back_len = big + 16;
  CHECK_RV(F->C_Decrypt(s, bct, 16384 + 16, bback, &back_len), CKR_OK, "GCM C_Decrypt of 16384 bytes again");
  free(bpt), free(bct), free(bback);

  /* Other mechanisms pass through unchanged (AES-CBC-PAD takes the caller's IV). */
  CK_BYTE cbc_iv[16] = {9, 9, 9};
  CK_MECHANISM cbc = {CKM_AES_CBC_PAD, cbc_iv, sizeof(cbc_iv)};
  CHECK_RV(F->C_EncryptInit(s, &cbc, key), CKR_OK, "AES-CBC-PAD C_EncryptInit with a caller IV");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, 32, ct, &out_len), CKR_OK, "AES-CBC-PAD C_Encrypt");
  CHECK(out_len == 48, "AES-CBC-PAD output is padded to 48 bytes");

  /* Control channel: injected transient failures, then a lost connection. */
  CHECK(seed(s, "cloudhsm-sim:fail-gcm 1 0x30") == CKR_OK, "control: fail the next GCM call with CKR_DEVICE_ERROR");
  memset(iv, 0, sizeof(iv));
  p = gcm(iv, 12, NULL, 0);
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (fault)");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct, &out_len), CKR_DEVICE_ERROR, "GCM C_Encrypt fails as injected");
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_OK, "GCM C_EncryptInit (after the fault)");
  out_len = sizeof(ct);
  CHECK_RV(F->C_Encrypt(s, pt, sizeof(pt), ct, &out_len), CKR_OK, "GCM C_Encrypt works again");
  CHECK(seed(s, "cloudhsm-sim:bogus") == CKR_ARGUMENTS_BAD, "control: unknown command refused");
  CK_BYTE entropy[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_RV(F->C_SeedRandom(s, entropy, sizeof(entropy)), CKR_OK, "C_SeedRandom with real entropy is forwarded");

  CHECK_RV(F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2), CKR_OK,
           "C_OpenSession (second session)");
  CHECK(seed(s2, "cloudhsm-sim:drop-sessions") == CKR_OK, "control: drop every session");
  CHECK_RV(F->C_GetSessionInfo(s, &si), CKR_SESSION_HANDLE_INVALID, "the dropped session's handle is invalid");
  memset(iv, 0, sizeof(iv));
  CHECK_RV(F->C_EncryptInit(s, &m, key), CKR_SESSION_HANDLE_INVALID, "GCM C_EncryptInit on a dropped session");
  CHECK_RV(F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK,
           "C_OpenSession after the drop");
  CHECK_RV(F->C_GetSessionInfo(s, &si), CKR_OK, "C_GetSessionInfo (new session)");
  CHECK(si.state == CKS_RW_PUBLIC_SESSION, "the login is gone with the dropped sessions");
  CHECK_RV(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK, "C_Login again");

  CHECK_RV(F->C_CloseAllSessions(slot), CKR_OK, "C_CloseAllSessions");
  CHECK_RV(F->C_Finalize(NULL), CKR_OK, "C_Finalize");
  CHECK_RV(F->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "second C_Finalize");

  printf("cloudhsm-sim C tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
