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
  override readonly name = 'ConflictError';
}

/** A lookup of something that does not exist (e.g. an unknown run id). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}
