import { endianness } from "node:os";
import fc from "fast-check";
import pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import {
  ckrName,
  isPinError,
  isStaleHandle,
  needsReconnect,
  Pkcs11CallError,
  pinRejectedMessage,
  rvOf,
  sessionGone,
  toCallError,
} from "./errors.js";
import { handleToBigInt } from "./handles.js";

describe("PKCS#11 errors", () => {
  it("names return values, and unknown ones by number", () => {
    expect(ckrName(0xa0)).toBe("CKR_PIN_INCORRECT");
    expect(ckrName(0xb3)).toBe("CKR_SESSION_HANDLE_INVALID");
    expect(ckrName(0x7fff_0000)).toBe("CKR_0x7fff0000");
  });

  it("wraps pkcs11js errors with the call the seal made", () => {
    const native = new pkcs11js.Pkcs11Error("CKR_PIN_INCORRECT:160", 0, "");
    const e = toCallError("C_Login", native);
    expect(e).toBeInstanceOf(Pkcs11CallError);
    expect(e.message).toBe("C_Login returned CKR_PIN_INCORRECT (0xa0)");
    expect(e).toMatchObject({ call: "C_Login", rv: 0xa0, ckr: "CKR_PIN_INCORRECT" });
    expect(e.cause).toBe(native);
    expect(toCallError("C_Encrypt", new Error("CKR_DEVICE_ERROR:48")).rv).toBe(0x30);
    const other = toCallError("C_Initialize", new TypeError("bad argument"));
    expect(other.rv).toBeUndefined();
    expect(other.message).toBe("C_Initialize returned native error: bad argument");
    expect(toCallError("C_Sign", e)).toBe(e);
  });

  it("classifies what is reconnected, what is never retried, and which handles are stale", () => {
    const err = (rv: number) => new Pkcs11CallError("C_Encrypt", rv);
    for (const rv of [0xb3, 0xb0, 0x32, 0xe0, 0x30, 0x101])
      expect(needsReconnect(err(rv)), ckrName(rv)).toBe(true);
    for (const rv of [0xa0, 0xa4, 0xa3]) {
      expect(isPinError(err(rv))).toBe(true);
      expect(needsReconnect(err(rv))).toBe(false);
    }
    expect(isStaleHandle(err(0x60))).toBe(true);
    expect(isStaleHandle(err(0x82))).toBe(true);
    expect(sessionGone(err(0xb3))).toBe(true);
    expect(sessionGone(err(0x30))).toBe(false);
    expect(needsReconnect(err(0x5))).toBe(false); // a failed GCM tag check is not an outage
    expect(rvOf(new Error("x"))).toBeUndefined();
  });
});

const LE = endianness() === "LE";

describe("handleToBigInt", () => {
  it("reads native-endian CK_ULONG handles of 8 and 4 bytes without losing bits", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (n) => {
        const b = Buffer.alloc(8);
        if (LE) b.writeBigUInt64LE(n);
        else b.writeBigUInt64BE(n);
        expect(handleToBigInt(b)).toBe(n);
      }),
    );
    const four = Buffer.alloc(4);
    if (LE) four.writeUInt32LE(0x779bb4c5);
    else four.writeUInt32BE(0x779bb4c5);
    expect(handleToBigInt(four)).toBe(0x779bb4c5n);
  });

  it("a locked or expired PIN says the security officer must act; a wrong one says fix pin", () => {
    const call = (name: string, rv: number) =>
      toCallError("C_Login", new pkcs11js.Pkcs11Error(`${name}:${rv}`, 0, ""));
    expect(pinRejectedMessage("vault", call("CKR_PIN_LOCKED", 0xa4))).toMatch(
      /token "vault" has locked the user PIN \(C_Login returned CKR_PIN_LOCKED \(0xa4\)\).*security officer unlock or reset it.*changing pin alone does not help/,
    );
    expect(pinRejectedMessage("vault", call("CKR_PIN_EXPIRED", 0xa3))).toMatch(
      /user PIN has expired.*set a new PIN/,
    );
    expect(pinRejectedMessage("vault", call("CKR_PIN_INCORRECT", 0xa0))).toMatch(
      /rejected the PIN .*no further login attempt was made.*fix pin$/,
    );
  });
});
