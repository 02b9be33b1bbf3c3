/**
 * A broadcast or send made when the hub cannot carry it: before the app has started (after
 * `readyTimeout`), after the transport failed to start (`cause` holds why), or after the app was
 * closed. The message says which, and what to do.
 *
 * @publicApi
 */
export class SseLifecycleError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SseLifecycleError';
  }
}
