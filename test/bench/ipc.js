// The load generators' side of the runner's IPC: each message from the runner names a command;
// its handler's reply goes back with the message's id.

/** Sends a message to the runner (nothing when this process was not started over IPC). */
export function send(message) {
  process.send?.(message);
}

/**
 * Answers the runner's commands with `handlers[cmd](message)` (which may be async), says it is
 * ready with `ready`, and exits when the runner goes away.
 */
export function serveCommands(handlers, ready = {}) {
  process.on('message', async (message) => {
    const reply = await handlers[message.cmd]?.(message);
    send({ ...reply, id: message.id });
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', ...ready });
}
