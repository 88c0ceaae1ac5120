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

/** The server connection ended (or was found ended) while pgfence's own query ran on it. */
export class BackendClosedError extends Error {
  constructor(message = 'backend connection closed') {
    super(message);
    this.name = 'BackendClosedError';
  }
}
