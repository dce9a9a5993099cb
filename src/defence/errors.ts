// The one error class of the defence modules, in its own file so that every module can throw it without
// importing the MRU list.

import { CodedError } from "../base/errors.ts";

/** A bad option or buffer handed to the defence structures: a bug or a bad configuration. */
export class DefenceError extends CodedError<"ERR_DEFENCE_OPTION" | "ERR_DEFENCE_BUFFER"> {}
