// The one error class of the defence modules, in its own file so that every module can throw it without
// importing the MRU list.

/** A bad option or buffer handed to the defence structures: a bug or a bad configuration. */
export class DefenceError extends Error {
  readonly code: "ERR_DEFENCE_OPTION" | "ERR_DEFENCE_BUFFER";
  constructor(code: "ERR_DEFENCE_OPTION" | "ERR_DEFENCE_BUFFER", message: string) {
    super(message);
    this.name = "DefenceError";
    this.code = code;
  }
}
