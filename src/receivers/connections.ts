// Connections of one receiver: a limit on how many are open at once (Node closes the ones
// beyond it as they arrive), the open ones for shutdown, and the metrics that account for every
// connection scorecar refused or closed on its own initiative.
import type net from 'node:net';
import type { MetricsRegistry } from '../util/index.ts';

export type Transport = 'grpc' | 'http';

/** Why scorecar closed a connection. */
export type CloseReason = 'handshake_timeout' | 'header_timeout' | 'idle_timeout' | 'request_timeout' | 'discard_limit';

export class Connections {
  readonly sockets = new Set<net.Socket>();
  private readonly transport: Transport;
  private readonly m;

  constructor(server: net.Server, transport: Transport, maxConnections: number, metrics: MetricsRegistry) {
    this.transport = transport;
    this.m = {
      open: metrics.gauge('scorecar_receiver_connections', 'Connections open on the OTLP receivers', ['transport']),
      refused: metrics.counter(
        'scorecar_receiver_connections_refused_total',
        'Connections closed as they arrived because the receiver had maxConnections open',
        ['transport'],
      ),
      closed: metrics.counter(
        'scorecar_receiver_connections_closed_total',
        'Connections scorecar closed on its own initiative, by reason',
        ['transport', 'reason'],
      ),
    };
    server.maxConnections = maxConnections;
    server.on('drop', () => this.m.refused.inc({ transport }));
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      this.m.open.inc({ transport });
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.m.open.inc({ transport }, -1);
      });
    });
  }

  /** Counts a connection scorecar closed (the caller closes it). */
  closed(reason: CloseReason): void {
    this.m.closed.inc({ transport: this.transport, reason });
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}
