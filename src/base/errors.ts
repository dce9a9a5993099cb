/**
 * The base of every error of ours that callers tell apart: a stable `code` (`ERR_...`, or a kiss code where
 * the error is a server's refusal) that tests and callers compare, never the message, which is for people
 * and may be reworded. `name` is the subclass's own name, so a stack trace or a log line says which error
 * it was.
 */
export class CodedError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
