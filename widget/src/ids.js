// Client message ids (protocol §7.4: unique across the visitor's tabs).

/** 12 random bytes in base 36: about 24 characters, well under the 64 allowed. */
export function randomId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(36).padStart(2, "0")).join("");
}
