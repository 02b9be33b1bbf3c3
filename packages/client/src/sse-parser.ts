/** What a parser reports. */
export interface SseParserSink {
  /** An event was dispatched: its type (`message` when none was given), its data and the last event id. */
  event(type: string, data: string, lastEventId: string): void;
  /** The stream set the reconnection time (`retry:`), in milliseconds. */
  retry(ms: number): void;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/**
 * The event stream interpretation of the HTML standard (§9.2.6), fed decoded text in chunks of
 * any size: lines end with CRLF, LF or CR (a CRLF split across two chunks counts once), a
 * leading BOM is dropped, comments are skipped, an `id` containing NUL is ignored, `retry`
 * counts only when it is all ASCII digits, an event with no data is not dispatched, and what is
 * left unterminated at the end of the stream is discarded.
 *
 * The last event id persists from event to event (an event without `id:` keeps the previous
 * one) and is committed at each blank line, as the standard's "last event ID string" is.
 */
export class SseParser {
  /** The id a reconnect resumes after. */
  lastEventId: string;
  private idBuffer: string;
  private line = '';
  private data = '';
  private type = '';
  private started = false;
  private afterCR = false;

  constructor(
    private readonly sink: SseParserSink,
    lastEventId = '',
  ) {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Parses the next chunk of the stream. */
  push(chunk: string): void {
    let start = 0;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.afterCR && chunk.length > 0) {
      this.afterCR = false;
      if (chunk.charCodeAt(start) === LF) start++;
    }
    for (let i = start; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      const line = this.line === '' ? chunk.slice(start, i) : this.line + chunk.slice(start, i);
      this.line = '';
      if (c === CR) {
        if (i + 1 === chunk.length) this.afterCR = true;
        else if (chunk.charCodeAt(i + 1) === LF) i++;
      }
      start = i + 1;
      this.field(line);
    }
    if (start < chunk.length) this.line += chunk.slice(start);
  }

  /** The stream ended: an event not yet terminated by a blank line is dropped, as the standard says. */
  end(): void {
    this.line = '';
    this.data = '';
    this.type = '';
  }

  private field(line: string): void {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === COLON) return;
    const colon = line.indexOf(':');
    let name = line;
    let value = '';
    if (colon !== -1) {
      name = line.slice(0, colon);
      value = line.slice(line.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1);
    }
    switch (name) {
      case 'event':
        this.type = value;
        return;
      case 'data':
        this.data += value + '\n';
        return;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        return;
      case 'retry':
        if (/^\d+$/.test(value)) this.sink.retry(Number(value));
        return;
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    if (this.data === '') {
      this.type = '';
      return;
    }
    const data = this.data.slice(0, -1);
    const type = this.type || 'message';
    this.data = '';
    this.type = '';
    this.sink.event(type, data, this.lastEventId);
  }
}
