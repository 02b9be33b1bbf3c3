/** Development default of SSE_DEMO_USERS; set your own in any shared environment. */
export const DEV_DEMO_USERS = 'alice:alice-token,bob:bob-token';

export interface DemoUser {
  name: string;
  token: string;
}

/**
 * The demo users of `/notifications`, from SSE_DEMO_USERS (`name:token,name:token`). A name is
 * letters, digits, `.`, `_` or `-`; a token is at least 8 characters without `,`.
 */
export function demoUsers(value: string = process.env.SSE_DEMO_USERS || DEV_DEMO_USERS): DemoUser[] {
  const users: DemoUser[] = [];
  for (const [i, entry] of value.split(',').entries()) {
    const colon = entry.indexOf(':');
    const name = colon === -1 ? '' : entry.slice(0, colon).trim();
    const token = colon === -1 ? '' : entry.slice(colon + 1).trim();
    // the message points at the entry by its place: it never repeats a token
    if (!/^[\w.-]{1,64}$/.test(name) || token.length < 8) {
      throw new Error(
        `SSE_DEMO_USERS must be name:token pairs separated by commas (a name of letters, digits, '.', '_' or '-', a token of 8 characters or more), for example ${DEV_DEMO_USERS}; entry ${i + 1} is not.`,
      );
    }
    if (users.some((u) => u.name === name || u.token === token)) throw new Error(`SSE_DEMO_USERS names and tokens must be unique; entry ${i + 1} repeats one.`);
    users.push({ name, token });
  }
  return users;
}
