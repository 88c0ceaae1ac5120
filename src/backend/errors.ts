/** An error the backend reported (ErrorResponse), with its SQLSTATE. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string | undefined,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}
