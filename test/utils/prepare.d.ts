/** Where the browser tests expect Debian's Chromium. */
export const CHROMIUM_PATH: string;
/** Installs Debian's chromium when it is missing and the process may install packages. */
export function ensureChromium(): Promise<void>;
/** Makes sure the machine has what the tests need (redis-server, redis-cli, chromium). */
export function prepareMachine(): Promise<void>;
