import http from 'node:http';

/** One event as a client parsed it. */
export interface ParsedEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * A client that behaves like `EventSource` across reconnects, on a raw `http.get`: it parses the
 * stream into events, keeps the last event id, and reconnects (when told to) with `Last-Event-ID`.
 * Every event of every session is kept, so a test can check the sequence a user would see.
 */
export class ResumingClient {
  readonly events: ParsedEvent[] = [];
  lastEventId: string | undefined;
  /** Events received in the current session. */
  sessionEvents = 0;
  private request: http.ClientRequest | undefined;

  /** Opens a stream at `url` (with `Last-Event-ID` once the client has one); resolves on the response head. */
  connect(url: string): Promise<void> {
    this.sessionEvents = 0;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId;
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            this.onFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        });
        resolve();
      });
      req.on('error', (err) => {
        if (this.request === req) reject(err);
      });
      this.request = req;
    });
  }

  /** Ends the current session, as a dropped connection would. */
  close(): void {
    const req = this.request;
    this.request = undefined;
    req?.destroy();
  }

  /** The numbers of the events whose data is `<tag>:<n>`, in the order received. */
  numbers(tag: string): number[] {
    const prefix = `${tag}:`;
    const out: number[] = [];
    for (const e of this.events) if (e.data.startsWith(prefix)) out.push(Number(e.data.slice(prefix.length)));
    return out;
  }

  /** How many events of this name the client received. */
  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }

  private onFrame(frame: string): void {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (id !== undefined) this.lastEventId = id;
    if (data.length === 0) return;
    this.events.push({ id, event, data: data.join('\n') });
    this.sessionEvents++;
  }
}

/** What went wrong across clients that should each have had `0..last` of `tag`, once each, in order. */
export interface SequenceReport {
  clients: number;
  /** Clients that got some number again (or after a later one), and how many such events in all. */
  clientsWithRepeats: number;
  repeats: number;
  /** Clients that skipped numbers without an `sse.reset`, and how many numbers they missed. */
  clientsWithGaps: number;
  missing: number;
  /** Clients that did not get through to `last`. */
  incomplete: number;
  resets: number;
  /** The first few problems, to read in a failure. */
  examples: string[];
}

/**
 * Checks every client's sequence of `tag` numbers from the first it received through `last`:
 * each once, in order, with no gap, unless an `sse.reset` told the client it missed some.
 */
export function checkSequences(clients: ResumingClient[], tag: string, last: number): SequenceReport {
  const report: SequenceReport = {
    clients: clients.length,
    clientsWithRepeats: 0,
    repeats: 0,
    clientsWithGaps: 0,
    missing: 0,
    incomplete: 0,
    resets: 0,
    examples: [],
  };
  clients.forEach((client, index) => {
    const numbers = client.numbers(tag);
    const reset = client.count('sse.reset') > 0;
    if (reset) report.resets++;
    let repeats = 0;
    let missing = 0;
    let top = numbers[0] ?? 0;
    for (let i = 1; i < numbers.length; i++) {
      const n = numbers[i];
      if (n <= top) {
        repeats++;
        if (report.examples.length < 5) report.examples.push(`client ${index}: ${n} after ${numbers[i - 1]}`);
        continue;
      }
      if (n > top + 1 && !reset) {
        missing += n - top - 1;
        if (report.examples.length < 5) report.examples.push(`client ${index}: ${top} then ${n}`);
      }
      top = n;
    }
    if (repeats > 0) report.clientsWithRepeats++;
    if (missing > 0) report.clientsWithGaps++;
    report.repeats += repeats;
    report.missing += missing;
    if (top !== last) report.incomplete++;
  });
  return report;
}

/** A report with nothing wrong, to compare with. */
export function cleanReport(clients: number): SequenceReport {
  return { clients, clientsWithRepeats: 0, repeats: 0, clientsWithGaps: 0, missing: 0, incomplete: 0, resets: 0, examples: [] };
}
