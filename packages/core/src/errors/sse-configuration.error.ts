/** What a rejected option was: its path, the value given and the rule it broke. */
export interface SseConfigurationProblem {
  /** Where the option sits, for example `defaults.heartbeatInterval`. */
  option: string;
  value: unknown;
  /** The rule, for example `an integer from 1 to 86400 (seconds)`. */
  rule: string;
}

/**
 * Thrown at start-up when the module, an endpoint or a transport is configured in a way that
 * cannot work; the message says what to change. An option that broke a rule is named in
 * `option`, with the `value` given and the `rule`.
 *
 * @publicApi
 */
export class SseConfigurationError extends Error {
  readonly option?: string;
  readonly value?: unknown;
  readonly rule?: string;

  constructor(message: string, problem?: SseConfigurationProblem, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SseConfigurationError';
    if (problem !== undefined) {
      this.option = problem.option;
      this.value = problem.value;
      this.rule = problem.rule;
    }
  }
}
