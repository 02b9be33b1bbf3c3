import { describe, it, expect } from '@jest/globals';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { ChunkedSocketSink, COPY_LIMIT } from '../../src/http/chunked-socket.sink.js';

/** A socket stand-in that keeps every buffer written to it, in order, as Node hands them over. */
class RecordingSocket extends Writable {
  readonly writes: Buffer[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.writes.push(chunk);
    callback();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: () => void): void {
    for (const { chunk } of chunks) this.writes.push(chunk);
    callback();
  }

  bytes(): string {
    return Buffer.concat(this.writes).toString('latin1');
  }
}

function sink(): { socket: RecordingSocket; sink: ChunkedSocketSink } {
  const socket = new RecordingSocket();
  return { socket, sink: new ChunkedSocketSink(socket as unknown as Socket) };
}

describe('ChunkedSocketSink', () => {
  it('writes each frame as one HTTP chunk: hex size, CRLF, the bytes, CRLF', () => {
    const { socket, sink: s } = sink();
    s.write(Buffer.from('data: hi\n\n'));
    s.write('retry: 3000\n\n');
    expect(socket.bytes()).toBe('a\r\ndata: hi\n\n\r\nd\r\nretry: 3000\n\n\r\n');
  });

  it('frames a broadcast frame once and writes the same bytes to every socket', () => {
    const frame = Buffer.from('id: 1\ndata: x\n\n');
    const a = sink();
    const b = sink();
    a.sink.write(frame);
    b.sink.write(frame);
    expect(a.socket.writes).toHaveLength(1);
    expect(b.socket.writes[0]).toBe(a.socket.writes[0]);
    expect(a.socket.bytes()).toBe('f\r\nid: 1\ndata: x\n\n\r\n');
    // a different frame with the same bytes is framed on its own
    a.sink.write(Buffer.from(frame));
    expect(a.socket.writes[1]).not.toBe(a.socket.writes[0]);
    expect(a.socket.writes[1].equals(a.socket.writes[0])).toBe(true);
  });

  it('writes several queued frames as one chunk', () => {
    const { socket, sink: s } = sink();
    const frames = [Buffer.from('data: a\n\n'), Buffer.from('data: bb\n\n')];
    s.writeAll(frames, 19);
    expect(socket.writes).toHaveLength(1);
    expect(socket.bytes()).toBe('13\r\ndata: a\n\ndata: bb\n\n\r\n');
  });

  it('sends a frame over the copy limit as size line, bytes and CRLF without copying it', () => {
    const { socket, sink: s } = sink();
    const big = Buffer.alloc(COPY_LIMIT + 1, 'x');
    s.write(big);
    expect(socket.writes).toHaveLength(3);
    expect(socket.writes[1]).toBe(big);
    expect(socket.bytes()).toBe(`${(COPY_LIMIT + 1).toString(16)}\r\n${'x'.repeat(COPY_LIMIT + 1)}\r\n`);
  });

  it('writes nothing for an empty frame (an empty chunk would end the body)', () => {
    const { socket, sink: s } = sink();
    s.write(Buffer.alloc(0));
    expect(socket.writes).toHaveLength(0);
  });

  it('ends with the last frame and the terminating zero-size chunk', () => {
    const { socket, sink: s } = sink();
    s.end(Buffer.from('retry: 3500\n\n'));
    expect(socket.bytes()).toBe('d\r\nretry: 3500\n\n\r\n0\r\n\r\n');
    expect(s.writableEnded).toBe(true);
  });
});
