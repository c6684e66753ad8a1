import { describe, expect, it } from "vitest";
import { LogSink } from "../test/helpers/app.js";
import { coreLogger, createLogger, scrubString } from "./logging.js";

const TOKEN = "hvs.AbCdEfGhIjKlMnOpQrStUvWx";
const SHARE = "a1".repeat(33);
const B64 = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

describe("logging", () => {
  it("redacts secret fields by name at any of three levels", () => {
    const sink = new LogSink();
    const log = createLogger({ level: "debug", destination: sink });
    log.debug(
      {
        token: "plain-token",
        body: { data: { password: "pw" } },
        req: { headers: { "x-vault-token": "hdr" } },
      },
      "x",
    );
    log.info({ a: { b: { pin: "1234" } } }, "y");
    const text = sink.text();
    for (const s of ["plain-token", '"pw"', "hdr", "1234"]) expect(text).not.toContain(s);
    expect(text).toContain("[REDACTED]");
  });

  it("scrubs token-, share- and key-shaped strings in messages and values", () => {
    const sink = new LogSink();
    const log = createLogger({ level: "debug", destination: sink });
    log.warn({ detail: `bad share ${SHARE}` }, `token ${TOKEN} refused`);
    log.error({ err: new Error(`decrypt of ${B64} failed`) }, "boom");
    const text = sink.text();
    for (const s of [TOKEN, SHARE, B64]) expect(text).not.toContain(s);
    expect(text).toContain("refused");
  });

  it("leaves ordinary text alone", () => {
    expect(scrubString("secret/data/app/config written")).toBe("secret/data/app/config written");
    expect(scrubString("logical/550e8400-e29b-41d4-a716-446655440000/metadata")).toContain("550e8400");
  });

  it("adapts to the core logger interface", () => {
    const sink = new LogSink();
    coreLogger(createLogger({ level: "debug", destination: sink })).info("unsealed", { seal: "shamir" });
    expect(JSON.parse(sink.lines[0] as string)).toMatchObject({ msg: "unsealed", seal: "shamir", level: 30 });
  });
});
