/** What the HCL and the JSON parser share: the token cursor, the nesting limit and number values. */

import { HclParseError } from "./errors.js";
import { describeToken, Lexer, type Token, type TokenType } from "./lexer.js";
import type { HclPosition } from "./tree.js";

/** Integers past 2^53 lose digits as numbers; HSM slot ids are such integers. */
export function numberValue(raw: string, json: boolean, file: string, pos: HclPosition): number {
  const neg = raw.startsWith("-");
  const body = neg ? raw.slice(1) : raw;
  if (!json && /^0[xX]/.test(body)) return (neg ? -1 : 1) * Number.parseInt(body.slice(2), 16);
  if (!json && /^0[0-9]+$/.test(body)) {
    // HCL1 reads integers with Go's ParseInt(s, 0, 64): a leading 0 means octal.
    if (/[89]/.test(body)) {
      throw new HclParseError(
        "syntax",
        file,
        pos,
        `invalid number ${raw}: a leading 0 means octal (digits 0-7)`,
      );
    }
    return (neg ? -1 : 1) * Number.parseInt(body, 8);
  }
  return Number(raw);
}

/** Deeper nesting than any config needs; the limit keeps hostile input from exhausting the stack. */
export const HCL_MAX_DEPTH = 100;

/**
 * A parser's view of the tokens: one token of lookahead, read when the previous one is taken (so
 * a lexical error surfaces exactly when the parser reaches it), and the nesting depth.
 */
export abstract class TokenStream {
  readonly #lex: Lexer;
  protected readonly file: string;
  protected tok: Token;
  #depth = 0;

  constructor(src: string, file: string, json: boolean) {
    this.#lex = new Lexer(src, file, json);
    this.file = file;
    this.tok = this.#lex.next();
  }

  protected fail(t: Token, expected: string): never {
    throw new HclParseError("syntax", this.file, t.pos, `expected ${expected}, found ${describeToken(t)}`);
  }

  protected nest<T>(at: Token, fn: () => T): T {
    if (++this.#depth > HCL_MAX_DEPTH) {
      throw new HclParseError("syntax", this.file, at.pos, `nesting deeper than ${HCL_MAX_DEPTH} levels`);
    }
    try {
      return fn();
    } finally {
      this.#depth--;
    }
  }

  /** The current token's type (a method, so TypeScript does not narrow it across take()). */
  protected peek(): TokenType {
    return this.tok.type;
  }

  protected take(): Token {
    const t = this.tok;
    this.tok = this.#lex.next();
    return t;
  }

  protected expect(type: TokenType, expected: string): Token {
    if (this.peek() !== type) this.fail(this.tok, expected);
    return this.take();
  }
}
