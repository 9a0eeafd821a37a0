/** An input problem the user can fix (missing file, avatar and dataset that do not match, bad argument): exit 2. */
export class EvalInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalInputError';
  }
}
