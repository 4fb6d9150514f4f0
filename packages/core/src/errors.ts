/** An error whose message is meant for the person at the terminal or the API caller. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** Process exit code for the CLI. */
    readonly exitCode = 2,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A request that conflicts with the current state (e.g. a second refresh of the same media). */
export class ConflictError extends Error {
  override readonly name: string = 'ConflictError';
}

/** A run id already taken (a caller's own id reused, or a new id drawn twice in one second). */
export class DuplicateRunIdError extends ConflictError {
  override readonly name = 'DuplicateRunIdError';
}

/** A lookup of something that does not exist (e.g. an unknown run id). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}
