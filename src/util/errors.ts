/** Base class for conditions a user acts on; the CLI prints the message and exits with code 1. */
export class TicketsweepError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TicketsweepError";
  }
}

/** One problem found in a sweep spec, located in its file. */
export interface SpecIssue {
  /** Field path, e.g. `parameters.lambda.min`. */
  path: string;
  line: number;
  column: number;
  message: string;
}

/** A sweep spec that cannot be used; lists every problem found in the file at once. */
export class SpecError extends TicketsweepError {
  readonly file: string;
  readonly issues: SpecIssue[];
  constructor(file: string, issues: SpecIssue[]) {
    super(
      `${file}: ${issues.length} problem${issues.length === 1 ? "" : "s"} in the sweep spec\n` +
        issues.map((i) => `  ${file}:${i.line}:${i.column} ${i.path || "(root)"}: ${i.message}`).join("\n"),
    );
    this.name = "SpecError";
    this.file = file;
    this.issues = issues;
  }
}

/** The broker cannot be reached or set up. */
export class BrokerError extends TicketsweepError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokerError";
  }
}

/** A dataset file or package is missing or malformed. */
export class DataError extends TicketsweepError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataError";
  }
}
