// Caps the size of any MQTT packet before aedes buffers it. aedes (via
// mqtt-packet) accumulates a whole packet in memory before parsing it, and it
// does so for CONNECT too, i.e. before authentication: without this guard an
// anonymous peer could make the gateway hold a 256 MB packet (the MQTT 3.1.1
// maximum, §2.2.3). The guard reads only the fixed header (type byte and the
// 1-4 byte Remaining Length varint) and passes bytes through unchanged.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export class PacketTooLarge extends Error {
  constructor(readonly size: number, readonly limit: number) {
    super(`MQTT packet of ${size} bytes exceeds the ${limit} byte limit`);
  }
}

/** Tracks MQTT framing across arbitrary chunk boundaries. */
export class FrameMeter {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly limit: number) {}

  /** Throws PacketTooLarge as soon as a header announces an oversize packet. */
  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const b = chunk[i++]!;
        this.length += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (this.length > this.limit) throw new PacketTooLarge(this.length, this.limit);
        if ((b & 0x80) === 0 || this.lengthBytes === 4) {
          this.remaining = this.length;
          this.state = this.remaining === 0 ? 'type' : 'body';
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'type';
      }
    }
  }
}

/** Wraps a socket in a duplex that destroys the connection on an oversize packet. */
export function guardPacketSize(socket: Socket, limit: number, onTooLarge: (err: PacketTooLarge) => void): Duplex {
  const meter = new FrameMeter(limit);
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      meter.feed(chunk);
    } catch (err) {
      onTooLarge(err as PacketTooLarge);
      socket.destroy();
      duplex.destroy();
      return;
    }
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.on('close', () => duplex.destroy());
  // aedes logs the peer address from the connection object
  Object.defineProperty(duplex, 'remoteAddress', { get: () => socket.remoteAddress });
  return duplex;
}
